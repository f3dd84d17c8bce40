"""Reconcile's age hand-off (`ramflow.key.rotation_due`, handled by key-rotation) names a user and a
key, nothing else: it is acted on only from reconcile's source, for the key the ledger records, once
that key is past its age, and the new secret is sealed to the key the ledger knows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.access_approved.index import handler as access_approved
from local.emulator.core import Emulator
from shared.errors import ValidationFailed
from shared.flows.keys import AGE_SOURCE, age_rotation_event, rotation_due
from shared.models.events import (
    KEY_ROTATION_DUE,
    KEY_ROTATION_REQUESTED,
    CloudEvent,
    KeyRotationDue,
    parse_data,
)
from shared.models.results import AccessKeyReply
from shared.sealing import generate_keypair, open_sealed
from tests.flows.test_keys import USER, keys, make, provisioned_key
from tests.flows.test_offboard_world import World, event

pytest_plugins = ["local.testing"]


@pytest.fixture
def world(emulator, root_clients, cloud_settings) -> tuple[World, str]:
    private, public = generate_keypair()
    w = make(emulator, root_clients, cloud_settings, public, key_rotation=True, key_max_age_days=30)
    return w, private


def _due(old_key_id: str, source: str = AGE_SOURCE) -> tuple[KeyRotationDue, CloudEvent]:
    data = KeyRotationDue(user_name=USER, old_key_id=old_key_id)
    return data, event(KEY_ROTATION_DUE, data.model_dump(mode="json"), source=source)


def test_the_hand_off_carries_only_the_user_and_the_key() -> None:
    handed = age_rotation_event(USER, "LTAI5tOld")
    assert handed.type == KEY_ROTATION_DUE and handed.source == AGE_SOURCE
    assert handed.data == {"user_name": USER, "old_key_id": "LTAI5tOld"}
    _, attacker = generate_keypair()
    forged = handed.model_copy(update={"data": {**handed.data, "delivery_public_key": attacker}})
    with pytest.raises(ValidationFailed) as refused:
        parse_data(forged)
    assert any(e["field"].endswith("delivery_public_key") for e in refused.value.errors)


def test_a_due_key_is_rotated_and_sealed_to_the_holder_the_ledger_knows(world) -> None:
    w, private = world
    old_id = provisioned_key(w, private).credentials.access_key_id
    w.clock.advance(timedelta(days=31))
    result = rotation_due(*_due(old_id), w.runtime())
    assert result.status == "completed" and isinstance(result.credential, AccessKeyReply)
    assert open_sealed(private, result.credential.sealed_secret)
    assert set(keys(w)) == {old_id, result.credential.access_key_id}


def test_from_any_other_source_it_is_refused_without_a_cloud_call(world, emulator: Emulator) -> None:
    w, private = world
    old_id = provisioned_key(w, private).credentials.access_key_id
    w.clock.advance(timedelta(days=31))
    before = emulator.recorder.last_seq
    result = rotation_due(*_due(old_id, source="tests.example.com"), w.runtime())
    assert result.status == "rejected" and result.errors[0].field == "source"
    assert emulator.recorder.since(before) == []
    assert w.runtime().store.ledger.get_rotation(USER) is None


def test_a_key_not_yet_due_or_not_the_recorded_one_is_not_rotated(world) -> None:
    w, private = world
    old_id = provisioned_key(w, private).credentials.access_key_id
    early = rotation_due(*_due(old_id), w.runtime())
    assert early.status == "rejected" and "not due" in early.errors[0].reason
    w.clock.advance(timedelta(days=31))
    other = rotation_due(*_due("LTAI5tSomeOtherKey"), w.runtime())
    assert other.status == "rejected" and other.errors[0].field == "data.old_key_id"
    assert set(keys(w)) == {old_id}
    assert w.runtime().store.ledger.get_rotation(USER) is None


def test_access_approved_no_longer_handles_rotation(world, monkeypatch: pytest.MonkeyPatch) -> None:
    w, private = world
    provisioned_key(w, private)
    monkeypatch.setenv("RAMFLOW_STORE", w.settings.store)
    monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", str(w.settings.cloud_endpoint))
    ev = event(KEY_ROTATION_REQUESTED, {"user_name": USER, "requested_by": "sec@example.com"})
    before = set(keys(w))
    reply = access_approved(ev.model_dump_json(by_alias=True).encode(), None)
    assert isinstance(reply, dict) and reply["status"] == "rejected", reply
    assert set(keys(w)) == before
