"""`cause: age` on a rotation request is reconcile's word: from any other sender it is refused, and
never with a delivery key; who asked and from where are always in the audit trail."""

from __future__ import annotations

import json
import logging

import pytest

from shared.flows import FLOWS
from shared.flows.keys import AGE_SOURCE
from shared.models.events import KEY_ROTATION_REQUESTED, KeyRotationRequested
from shared.sealing import generate_keypair
from tests.flows.test_keys import USER, keys, make, provisioned_key
from tests.flows.test_offboard_world import World, event

pytest_plugins = ["local.testing"]


@pytest.fixture
def world(emulator, root_clients, cloud_settings) -> tuple[World, str]:
    private, public = generate_keypair()
    w = make(emulator, root_clients, cloud_settings, public)
    provisioned_key(w, private)
    return w, private


def _audited(caplog: pytest.LogCaptureFixture, action: str) -> list[dict]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ramflow.audit"]
    return [line for line in lines if line["action"] == action]


def test_age_from_another_source_with_an_attackers_key_is_refused_and_audited(world, caplog) -> None:
    w, _ = world
    caplog.set_level(logging.INFO, logger="ramflow.audit")
    _, attacker = generate_keypair()
    data = KeyRotationRequested(
        user_name=USER, requested_by="mallory@example.com", cause="age", delivery_public_key=attacker
    )
    before = dict(keys(w))
    result = FLOWS[KEY_ROTATION_REQUESTED](
        data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json"), source="evil"), w.runtime()
    )
    assert result.status == "rejected" and result.errors[0].field == "data.cause"
    assert result.credential is None and keys(w) == before
    (line,) = _audited(caplog, "key.rotation_requested")
    assert line["actor"] == "mallory@example.com" and line["details"]["source"] == "evil"


def test_age_from_reconciles_source_takes_no_delivery_key(world) -> None:
    w, _ = world
    _, other = generate_keypair()
    data = KeyRotationRequested(
        user_name=USER, requested_by="reconcile@example.com", cause="age", delivery_public_key=other
    )
    before = dict(keys(w))
    result = FLOWS[KEY_ROTATION_REQUESTED](
        data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json"), source=AGE_SOURCE), w.runtime()
    )
    assert result.status == "rejected" and result.errors[0].field == "data.delivery_public_key"
    assert keys(w) == before


def test_a_request_audits_who_asked_and_from_where(world, caplog) -> None:
    w, _ = world
    caplog.set_level(logging.INFO, logger="ramflow.audit")
    data = KeyRotationRequested(user_name=USER, requested_by="sec@example.com", reason="leaked")
    result = FLOWS[KEY_ROTATION_REQUESTED](
        data,
        event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json"), source="itsm.example.com"),
        w.runtime(),
    )
    assert result.status == "completed"
    (started,) = _audited(caplog, "key.rotation_started")
    assert started["actor"] == "sec@example.com" and started["details"]["source"] == "itsm.example.com"
