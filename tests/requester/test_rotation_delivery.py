"""A rotated key's secret reaches its owner through the result delivery, as a provisioned one does.

Through the local FC runtime (`ramflow serve`'s stack), each function under its own role with the
emulator's policy enforcement on (nothing is refused): reconcile
finds the key past its age and, since its role cannot create keys, hands the rotation to
key-rotation (an async InvokeFunction of a `ramflow.key.rotation_due` event); that
function's result goes to the route of `ramflow.reconcile` — a local Standard Webhooks receiver —
and waits at credential-pickup for the requester. The emulator's clock is advanced through the
overlap, the deactivation and the deletion; the secret arrives exactly once and opens with the
requester's private key. And the hold, when the old key is still used after the new one arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from local.emulator.enforcement import enforce
from local.fcruntime.stack import LocalStack
from local.receiver import Arrival, WebhookReceiver
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.sealing import generate_keypair, open_sealed
from shared.store import StateStore
from shared.webhooks import new_secret
from tests.requester.test_end_to_end import auto_approved_request
from tests.requester.test_pickup import REQUESTER, pickup_token

SECRET_ENV = "RAMFLOW_ROTATION_TEST_SECRET"
USER = "orders-etl"
DAY = 86400.0


class Rotation:
    """The stack, the receiver, the requester's key pair and the user's first key."""

    def __init__(self, stack: LocalStack, receiver: WebhookReceiver, private: str, first: dict[str, Any]):
        self.stack, self.receiver, self.private = stack, receiver, private
        assert stack.runtime is not None and stack.emulator is not None
        self.runtime, self.emulator = stack.runtime, stack.emulator
        self.old_id = first["credential"]["access_key_id"]
        self.old = self.clients(self.old_id, open_sealed(private, first["credential"]["sealed_secret"]))

    def clients(self, key_id: str, secret: str) -> CloudClients:
        return CloudClients(
            Settings(cloud_endpoint=self.stack.cloud_endpoint), CloudCredentials(key_id, secret)
        )

    def advance(self, days: float) -> None:
        self.emulator.advance(days * DAY)

    def reconcile(self) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.emulator.clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        invocation = self.runtime.invoke("reconcile", {"triggerTime": now, "triggerName": "every-15-minutes"})
        assert not invocation.failed, invocation.error_message
        value = invocation.value
        return value if isinstance(value, dict) else json.loads(value)

    def keys(self) -> dict[str, str]:
        return {k.access_key_id: k.status for k in self.emulator.account.ram.users[USER].access_keys.values()}

    def rotation(self) -> Any:
        """The rotation record, from the functions' own store (the runtime's environment names it)."""
        return StateStore.from_url(Settings.from_env().store).ledger.get_rotation(USER)

    def secrets_arrived(self) -> list[Arrival]:
        return [a for a in self.receiver.arrivals if (a.event.get("data") or {}).get("credential")]

    def wait_for_secret(self, timeout: float = 30.0) -> Arrival:
        """The one arrival carrying a credential (results and notices share the receiver)."""
        deadline = time.monotonic() + timeout
        while not self.secrets_arrived() and time.monotonic() < deadline:
            time.sleep(0.1)
        (arrival,) = self.secrets_arrived()
        return arrival

    def notices(self, kind: str) -> list[Arrival]:
        return [a for a in self.receiver.arrivals if a.event["type"] == f"ramflow.notice.{kind}"]


@pytest.fixture
def rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rotation]:
    secret = new_secret()
    with WebhookReceiver(secret) as receiver:
        destinations = tmp_path / "destinations.yaml"
        route = {"name": "owners", "source": "ramflow.reconcile", "webhook": {"url": receiver.url}}
        route["webhook"]["secret_env"] = SECRET_ENV  # type: ignore[index]
        notices = {"webhook": {"url": receiver.url, "secret_env": SECRET_ENV}}
        destinations.write_text(
            json.dumps({"routes": [route], "notifications": notices, "retry_schedule": [1] * 10})
        )
        for name, value in {
            SECRET_ENV: secret,
            "RAMFLOW_DESTINATIONS": str(destinations),
            "RAMFLOW_KEY_ROTATION": "true",
            "RAMFLOW_KEY_MAX_AGE_DAYS": "30",
            "RAMFLOW_KEY_ROTATION_OVERLAP": "P7D",
            "RAMFLOW_KEY_ROTATION_DELETE_AFTER": "P7D",
        }.items():
            monkeypatch.setenv(name, value)
        with LocalStack(workdir=tmp_path) as stack:
            assert stack.runtime is not None and stack.emulator is not None
            enforcer = enforce(stack.emulator)  # every function holds only its role's rendered policy
            private, public = generate_keypair()
            request = auto_approved_request(public)
            request["data"]["duration"] = "P90D"
            invocation = stack.runtime.invoke("user-requested", request)
            first = invocation.value if isinstance(invocation.value, dict) else json.loads(invocation.value)
            assert first["status"] == "completed", first
            yield Rotation(stack, receiver, private, first)
            assert [(d.caller, d.action) for d in enforcer.denied()] == [], "no role was refused a call"
            used = {d.action for d in enforcer.allowed(f"acs:ram::{stack.config.account.id}:assumed-role/")}
            assert {"ram:CreateAccessKey", "fc:InvokeFunction"} <= used, (
                "key-rotation made it, reconcile asked"
            )


def wait_for_state(life: Rotation, state: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = life.rotation()
        if found is not None and found.state == state:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the rotation did not reach {state}: {life.rotation()}")


def test_age_rotation_delivers_the_new_secret_once_through_the_overlap_deactivation_and_deletion(
    rotation: Rotation,
) -> None:
    life = rotation
    life.old.sts.get_caller_identity()
    life.advance(29)
    assert life.reconcile()["plan"]["rotations_handed_off"] == {}, "not yet of age"

    life.advance(2)
    handed = life.reconcile()["plan"]["rotations_handed_off"]
    assert handed == {USER: "handed to key-rotation"}, "reconcile may not create keys: key-rotation does"
    delivered = wait_for_state(life, "delivered")
    arrival = life.wait_for_secret()
    assert life.receiver.refused == 0, "verified with standardwebhooks"
    assert arrival.event["type"] == "ramflow.result.completed"
    assert arrival.event["requestsource"] == "ramflow.reconcile"
    credential = arrival.event["data"]["credential"]
    assert credential["access_key_id"] == delivered.new_key_id
    secret = open_sealed(life.private, credential["sealed_secret"])
    assert secret not in arrival.body.decode(), "ciphertext only on the wire"
    new = life.clients(delivered.new_key_id, secret)
    assert new.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")
    assert life.keys() == {life.old_id: "Active", delivered.new_key_id: "Active"}, "the overlap: both work"

    # the requester can also collect it at credential-pickup, under the rotation's reference
    answer = requests.get(
        life.runtime.url("credential-pickup"),
        params={"ticket": f"rotation:{USER}:{life.old_id}"},
        headers={"Authorization": f"Bearer {pickup_token(REQUESTER)}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["credential"] == credential

    life.advance(6)
    assert life.reconcile()["plan"]["rotations"][USER]["state"] == "delivered"
    life.advance(1.05)
    assert life.reconcile()["plan"]["rotations"][USER]["state"] == "deactivated"
    assert life.keys() == {life.old_id: "Inactive", delivered.new_key_id: "Active"}
    with pytest.raises(Exception):  # noqa: B017 - the SDK's ClientException: the old key is refused
        life.old.sts.get_caller_identity()

    life.advance(7.05)
    done = life.reconcile()
    assert done["plan"]["rotations"][USER]["state"] == "completed", done
    assert life.keys() == {delivered.new_key_id: "Active"}, "exactly one key, the new one"
    assert new.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")
    life.reconcile()
    time.sleep(1.5)  # several delivery passes: a second copy would have arrived by now
    assert [a.event["data"]["credential"]["access_key_id"] for a in life.secrets_arrived()] == [
        delivered.new_key_id
    ], "the secret arrived exactly once"
    (told,) = life.notices("key_rotated")  # the owner hears of it once, with no secret in the notice
    assert told.event["data"]["user_name"] == USER and told.event["data"]["recipients"] == [
        "frank@example.com"
    ]
    assert "sealed_secret" not in told.body.decode()


def test_the_old_key_still_in_use_after_the_delivery_holds_the_rotation(rotation: Rotation) -> None:
    life = rotation
    life.advance(31)
    life.reconcile()
    delivered = wait_for_state(life, "delivered")
    arrival = life.wait_for_secret()
    life.advance(3)
    life.old.sts.get_caller_identity()  # the application still signs with the old key
    life.advance(5)
    held = life.reconcile()
    rotation_shown = held["plan"]["rotations"][USER]
    assert rotation_shown["state"] == "held" and life.old_id in rotation_shown["hold_reason"]
    assert any("key rotation held" in str(h) for h in held["needs_human"])
    assert life.keys() == {life.old_id: "Active", delivered.new_key_id: "Active"}, "nothing breaks"

    life.advance(10)  # held means held: nothing happens without a person, and nothing is sent again
    assert life.reconcile()["plan"]["rotations"][USER]["state"] == "held"
    assert life.keys() == {life.old_id: "Active", delivered.new_key_id: "Active"}
    time.sleep(1.5)
    assert [a.webhook_id for a in life.secrets_arrived()] == [arrival.webhook_id]
    assert len(life.notices("rotation_held")) == 1, "the owner is told once, however many passes find it held"


def test_a_crash_after_create_access_key_is_finished_by_key_rotation_on_the_next_pass(
    rotation: Rotation,
) -> None:
    """The handed-off rotation dies right after CreateAccessKey (its reply lost, its secret with it).
    The next reconcile pass does not touch the half-made rotation itself (its role may not create keys;
    the enforcement would refuse it): it asks key-rotation again, whose replay deletes the key nobody
    recorded and makes one whose secret is delivered — once."""
    life = rotation
    life.advance(31)
    life.emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})
    life.reconcile()
    creating = wait_for_state(life, "creating")
    deadline = time.monotonic() + 30
    while len(life.keys()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    (lost,) = set(life.keys()) - {life.old_id}  # made, never recorded: nobody has its secret
    time.sleep(0.5)  # the failed attempt's result and lease are settled
    assert life.secrets_arrived() == []
    assert life.reconcile()["plan"]["rotations_handed_off"] == {USER: "handed to key-rotation"}
    delivered = wait_for_state(life, "delivered")
    assert creating.old_key_id == delivered.old_key_id == life.old_id
    assert delivered.new_key_id != lost and set(life.keys()) == {life.old_id, delivered.new_key_id}
    credential = life.wait_for_secret().event["data"]["credential"]
    assert credential["access_key_id"] == delivered.new_key_id
    new = life.clients(delivered.new_key_id, open_sealed(life.private, credential["sealed_secret"]))
    assert new.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")
    life.advance(7.05)
    life.reconcile()
    life.advance(7.05)
    assert life.reconcile()["plan"]["rotations"][USER]["state"] == "completed"
    assert life.keys() == {delivered.new_key_id: "Active"}
    assert len(life.secrets_arrived()) == 1
