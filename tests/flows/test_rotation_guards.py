"""A rotation never makes a key for a user who may no longer hold one: the create step re-reads the
user's status and the leaver record under the owner's and the user's locks, and offboarding and a
revocation that disables the user cancel the open rotation."""

from __future__ import annotations

import logging

import pytest

from shared.flows import FLOWS
from shared.flows.keys import resume, rotation_intent_ticket
from shared.flows.offboard import offboard_event
from shared.flows.revoke import revoke_event
from shared.models.events import (
    ACCESS_REVOKED,
    KEY_ROTATION_REQUESTED,
    AccessRevoked,
    KeyRotationRequested,
    UserOffboarded,
)
from shared.sealing import generate_keypair
from shared.store.records import RotationRecord
from tests.flows.test_keys import OWNER, USER, keys, make, provisioned_key
from tests.flows.test_offboard_world import World, event, offboarded

pytest_plugins = ["local.testing"]


@pytest.fixture
def world(emulator, root_clients, cloud_settings) -> tuple[World, str]:
    private, public = generate_keypair()
    return make(emulator, root_clients, cloud_settings, public), private


def _request() -> tuple[KeyRotationRequested, object]:
    data = KeyRotationRequested(user_name=USER, requested_by="sec@example.com")
    return data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json"))


def _stuck_in_creating(world: World, emulator) -> RotationRecord:
    """A rotation whose CreateAccessKey failed: the record says `creating`, the intent is written."""
    data, ev = _request()
    emulator.faults.fail_nth_call(1, when="before", actions={"CreateAccessKey"})
    with pytest.raises(Exception):  # noqa: B017 - the failure FC retries, whatever its class
        FLOWS[KEY_ROTATION_REQUESTED](data, ev, world.runtime(max_attempts=1))
    emulator.faults.clear()
    rotation = world.runtime().store.ledger.get_rotation(USER)
    assert rotation is not None and rotation.state == "creating"
    return rotation


def _active(world: World) -> list[str]:
    return [k for k, status in keys(world).items() if status == "Active"]


def test_offboarding_cancels_an_unfinished_rotation_and_a_retry_makes_no_key(world, emulator, caplog) -> None:
    w, private = world
    provisioned_key(w, private)
    _stuck_in_creating(w, emulator)
    rt = w.runtime()
    caplog.set_level(logging.INFO)
    offboard_event(
        UserOffboarded.model_validate({"owner": OWNER, "hr_event_id": "WD-9", "grace": "P7D"}),
        offboarded(owner=OWNER),
        rt,
    )
    rotation = rt.store.ledger.get_rotation(USER)
    assert rotation is not None and rotation.state == "cancelled" and not rotation.open
    assert rt.store.ledger.get_intent(f"access_key/{USER}") is None
    assert "key.rotation_cancelled" in caplog.text

    data, ev = _request()  # FC delivers the failed rotation event again
    retried = FLOWS[KEY_ROTATION_REQUESTED](data, ev, w.runtime())
    assert retried.status == "rejected" and retried.credential is None
    assert _active(w) == [] and len(keys(w)) == 1


def test_the_create_step_cancels_when_the_user_is_no_longer_active(world, emulator) -> None:
    w, private = world
    provisioned_key(w, private)
    rotation = _stuck_in_creating(w, emulator)
    rt = w.runtime()
    rt.store.ledger.update_user(USER, lambda u: setattr(u, "status", "disabled"))
    before = set(keys(w))
    resumed = resume(rt, USER)
    assert resumed is not None and resumed.state == "cancelled"
    assert set(keys(w)) == before == {rotation.old_key_id}
    assert rt.store.ledger.get_intent(f"access_key/{USER}") is None


def test_the_create_step_cancels_when_the_owner_has_left(world, emulator) -> None:
    w, private = world
    provisioned_key(w, private)
    _stuck_in_creating(w, emulator)
    rt = w.runtime()
    rt.store.ledger.record_leaver(OWNER, left_at=rt.clock(), hr_event_id="WD-10", source="hr.example.com")
    resumed = resume(rt, USER)
    assert resumed is not None and resumed.state == "cancelled"
    assert len(keys(w)) == 1
    data, ev = _request()
    refused = FLOWS[KEY_ROTATION_REQUESTED](data, ev, w.runtime())
    assert refused.status == "rejected" and "left" in refused.errors[0].reason


def test_a_revocation_that_disables_the_user_cancels_its_rotation(world, emulator) -> None:
    w, private = world
    provisioned_key(w, private)
    rotation = _stuck_in_creating(w, emulator)
    rt = w.runtime()
    (ticket,) = rt.store.ledger.get_user(USER).tickets
    revoke_event(AccessRevoked(ticket_id=ticket, reason="moved team"), event(ACCESS_REVOKED, {}), rt)
    cancelled = rt.store.ledger.get_rotation(USER)
    assert cancelled is not None and cancelled.state == "cancelled"
    intent = rt.store.ledger.get_intent(f"access_key/{USER}")
    assert intent is None or intent.ticket_id != rotation_intent_ticket(USER)
    data, ev = _request()
    assert FLOWS[KEY_ROTATION_REQUESTED](data, ev, w.runtime()).status == "rejected"
    assert set(keys(w)) == {rotation.old_key_id} and _active(w) == []
