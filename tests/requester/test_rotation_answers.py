"""Every rotation request gets an answer on its route; the new key's sealed secret travels once.

Two requests about the same open rotation, from the same ticket system: the first request's result
carries the sealed secret, the second's the same states and ids without it; a replay of either
adds nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from shared.delivery.outbox import Outbox
from shared.flows import FLOWS
from shared.handler import process_event
from shared.models.events import KEY_ROTATION_REQUESTED, CloudEvent, KeyRotationRequested
from shared.outcomes import record_outcome
from shared.runtime import Runtime
from shared.sealing import generate_keypair, open_sealed
from tests.flows.test_keys import USER, make, provisioned_key

pytest_plugins = ["local.testing"]

SOURCE = "itsm.example.com"


def rotation_request(reason: str) -> CloudEvent:
    return CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": SOURCE,
            "type": KEY_ROTATION_REQUESTED,
            "data": {"user_name": USER, "requested_by": "sec@example.com", "reason": reason},
        }
    )


def routed_world(emulator, root_clients, cloud_settings, tmp_path: Path) -> tuple[Runtime, str]:
    """A provisioned programmatic user; results of SOURCE's requests go to an EventBridge bus."""
    destinations = tmp_path / "destinations.yaml"
    route = {"name": "itsm", "source": SOURCE, "eventbridge": {"bus": "results"}}
    destinations.write_text(json.dumps({"routes": [route]}))
    private, public = generate_keypair()
    world = make(emulator, root_clients, cloud_settings, public, destinations_path=destinations)
    provisioned_key(world, private)
    return world.runtime(), private


def test_a_second_request_for_the_same_rotation_is_answered_without_the_secret(
    emulator, root_clients, cloud_settings, tmp_path: Path
) -> None:
    rt, private = routed_world(emulator, root_clients, cloud_settings, tmp_path)
    first, second = rotation_request("leaked"), rotation_request("asked again")

    def deliver(event: CloudEvent):
        return process_event(event, FLOWS, rt, owner=uuid.uuid4().hex, lease_until=time.time() + 60)

    a = deliver(first)
    b = deliver(second)
    deliver(first)  # a replay: the stored reply, no new message
    deliver(second)

    assert a.credential is not None and b.credential is not None
    assert b.credential.access_key_id == a.credential.access_key_id  # the same rotation, one new key
    outbox = Outbox(rt.store.backend)
    results = [r.event for r, _ in outbox.all() if r.kind == "result"]
    assert sorted(e["requestid"] for e in results) == sorted([first.id, second.id])
    with_secret = [e for e in results if e["data"].get("credential")]
    (carrier,) = with_secret
    assert carrier["requestid"] == first.id
    assert open_sealed(private, carrier["data"]["credential"]["sealed_secret"])
    (answer,) = [e for e in results if e["requestid"] == second.id]
    assert answer["data"]["status"] == "completed" and answer["id"] != carrier["id"]
    assert answer["data"]["plan"]["rotation"]["new_key_id"] == a.credential.access_key_id
    assert "sealed_secret" not in json.dumps(answer)
    assert answer["data"]["actions"][-1] == f"the new key's secret went once, in message {carrier['id']}"


@pytest.mark.parametrize("replays", [1, 3])
def test_the_first_request_replayed_gets_no_second_answer(
    emulator, root_clients, cloud_settings, tmp_path: Path, replays: int
) -> None:
    """A crash between queueing and completing replays the same request: it is not a later one."""
    rt, private = routed_world(emulator, root_clients, cloud_settings, tmp_path)
    event = rotation_request("leaked")
    result = FLOWS[KEY_ROTATION_REQUESTED](KeyRotationRequested.model_validate(event.data), event, rt)
    for _ in range(replays):
        record_outcome(rt, event, "key-of-the-request", result)
    results = [r for r, _ in Outbox(rt.store.backend).all() if r.kind == "result"]
    assert len(results) == 1 and results[0].event["data"]["credential"]
