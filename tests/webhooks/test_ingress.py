"""The webhook ingress end to end: signed deliveries → handler → provisioning flows → emulator.

Every delivery is signed with the `standardwebhooks` library. "No effect" is checked where it
would show: the emulator's call recorder and the state store.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.sealing import generate_keypair, open_sealed
from shared.store import open_store
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, STRANGER_SECRET, Deliver, encode, sample, sign

APPROVER = "dave@example.com"


@pytest.fixture
def resource_group(root_clients: CloudClients) -> str:
    request = rm_models.CreateResourceGroupRequest(name="payments", display_name="Payments")
    return root_clients.resource_manager.create_resource_group(request).body.resource_group.id


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_keypair()


def request_event(public_key: str, resource_group: str) -> dict[str, Any]:
    event = sample("user-requested-console.json", delivery_public_key=public_key)
    event["data"]["grants"][0]["resource_group"] = resource_group
    return event


def approval_event(ticket_id: str = "ITSM-1042") -> dict[str, Any]:
    return sample("access-approved.json", ticket_id=ticket_id, approvers=[APPROVER])


def stored_keys(env: Path) -> list[str]:
    if not (env / "state.db").exists():
        return []
    store = open_store(f"sqlite:///{env}/state.db")
    try:
        return [key for key, _ in store.scan("")]
    finally:
        store.close()


def audit_lines(env: Path) -> list[dict[str, Any]]:
    path = env / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_signed_request_and_approval_provision_the_user(
    deliver: Deliver, emulator: Emulator, resource_group: str, keys: tuple[str, str]
) -> None:
    private, public = keys
    body = encode(request_event(public, resource_group))

    requested = deliver(body, sign(NEW_SECRET, "msg_request_1042", body))

    assert requested["statusCode"] == 202
    assert requested["json"]["status"] == "pending_approval"
    assert "alice.kafka" not in emulator.account.ram.users

    body = encode(approval_event())
    approved = deliver(body, sign(OLD_SECRET, "msg_approve_1042", body))  # the secret being rotated out

    assert approved["statusCode"] == 200, approved["json"]
    reply = approved["json"]
    assert reply["status"] == "completed"
    assert reply["credential"]["logon_principal"] == "alice.kafka@ramflow-demo.onaliyun.com"
    assert "alice.kafka" in emulator.account.ram.users
    password = open_sealed(private, reply["credential"]["sealed_password"])
    assert emulator.account.ram.users["alice.kafka"].login_profile.verify_password(password)
    assert password not in approved["body"]


def test_a_replayed_delivery_returns_the_first_reply_and_has_no_second_effect(
    deliver: Deliver, emulator: Emulator, resource_group: str, keys: tuple[str, str], ingress_env: Path
) -> None:
    _, public = keys
    body = encode(request_event(public, resource_group))
    deliver(body, sign(NEW_SECRET, "msg_request", body))
    approval = encode(approval_event())
    first = deliver(approval, sign(NEW_SECRET, "msg_approval", approval))
    assert first["statusCode"] == 200
    calls, stored = emulator.recorder.last_seq, stored_keys(ingress_env)

    # A sender retries with the same webhook-id, re-signed with a new timestamp (and maybe the other secret).
    again = deliver(approval, sign(OLD_SECRET, "msg_approval", approval, at=time.time() + 60))
    third = deliver(approval, sign(NEW_SECRET, "msg_approval", approval))

    assert again["statusCode"] == third["statusCode"] == 200
    assert again["json"] == third["json"] == first["json"], "a replay gets the first reply, same secret"
    assert emulator.recorder.since(calls) == [], "a replay makes no cloud call"
    assert stored_keys(ingress_env) == stored, "a replay stores nothing new"
    assert len(emulator.account.ram.users["alice.kafka"].access_keys) == 0
    assert emulator.account.ram.users["alice.kafka"].login_profile is not None


def test_the_same_webhook_id_with_another_body_is_rejected(
    deliver: Deliver, emulator: Emulator, resource_group: str, keys: tuple[str, str], ingress_env: Path
) -> None:
    _, public = keys
    body = encode(request_event(public, resource_group))
    assert deliver(body, sign(NEW_SECRET, "msg_1", body))["statusCode"] == 202
    calls, stored = emulator.recorder.last_seq, stored_keys(ingress_env)

    other = encode(approval_event())
    reply = deliver(other, sign(NEW_SECRET, "msg_1", other))

    assert reply["statusCode"] == 400
    assert reply["json"]["errors"][0]["field"] == "id"
    assert emulator.recorder.since(calls) == []
    assert stored_keys(ingress_env) == stored


def _unsigned(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


REFUSALS = {
    "missing webhook-id": (lambda b: _unsigned(sign(NEW_SECRET, "m1", b), "webhook-id"), "webhook-id"),
    "missing webhook-timestamp": (
        lambda b: _unsigned(sign(NEW_SECRET, "m1", b), "webhook-timestamp"),
        "webhook-timestamp",
    ),
    "missing webhook-signature": (
        lambda b: _unsigned(sign(NEW_SECRET, "m1", b), "webhook-signature"),
        "webhook-signature",
    ),
    "no headers at all": (lambda b: {}, "webhook-id"),
    "malformed id": (lambda b: {**sign(NEW_SECRET, "m1", b), "webhook-id": "two words"}, "webhook-id"),
    "malformed timestamp": (
        lambda b: {**sign(NEW_SECRET, "m1", b), "webhook-timestamp": "soon"},
        "webhook-timestamp",
    ),
    "malformed signature": (
        lambda b: {**sign(NEW_SECRET, "m1", b), "webhook-signature": "v1"},
        "webhook-signature",
    ),
    "expired": (lambda b: sign(NEW_SECRET, "m1", b, at=time.time() - 6 * 60), "webhook-timestamp"),
    "future": (lambda b: sign(NEW_SECRET, "m1", b, at=time.time() + 6 * 60), "webhook-timestamp"),
    "wrong secret": (lambda b: sign(STRANGER_SECRET, "m1", b), "webhook-signature"),
    "body changed after signing": (
        lambda b: sign(NEW_SECRET, "m1", b.replace(b"ITSM-1042", b"ITSM-9999")),
        "webhook-signature",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_every_bad_signature_is_a_401_with_a_reason_and_no_effect(
    case: str,
    deliver: Deliver,
    emulator: Emulator,
    ingress_env: Path,
    keys: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = encode(request_event(keys[1], "rg-aek2xl5qw"))
    make_headers, field = REFUSALS[case]

    reply = deliver(body, make_headers(body))

    assert reply["statusCode"] == 401, reply["json"]
    assert reply["json"]["status"] == "rejected"
    assert reply["json"]["errors"][0]["field"] == field
    assert reply["json"]["errors"][0]["reason"]
    assert emulator.recorder.calls == [], "no cloud call before the signature verifies"
    assert stored_keys(ingress_env) == [], "nothing stored before the signature verifies"
    refused = [line for line in audit_lines(ingress_env) if line["action"] == "webhook.refused"]
    assert len(refused) == 1 and refused[0]["outcome"] == "rejected"
    everything = reply["body"] + caplog.text + json.dumps(audit_lines(ingress_env))
    for secret in (NEW_SECRET, OLD_SECRET, STRANGER_SECRET):
        assert secret[6:] not in everything


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("GET", 405, "method"),
        ("text/plain", 415, "content-type"),
        ("no content type", 415, "content-type"),
        ("too large", 413, "body"),
        ("not JSON", 400, "event"),
        ("a batch", 400, "body"),
        ("unknown type", 400, "type"),
        ("not a CloudEvent", 400, "specversion"),
        ("invalid data", 400, "data.user.logon_name"),
    ],
)
def test_malformed_deliveries_are_refused_without_effect(
    case: str,
    status: int,
    field: str,
    deliver: Deliver,
    emulator: Emulator,
    ingress_env: Path,
    keys: tuple[str, str],
) -> None:
    event = request_event(keys[1], "rg-aek2xl5qw")
    options: dict[str, Any] = {}
    body = encode(event)
    if case == "GET":
        options["method"] = "GET"
    elif case == "text/plain":
        options["content_type"] = "text/plain"
    elif case == "no content type":
        options["content_type"] = None
    elif case == "too large":
        event["data"]["justification"] = "x" * (300 * 1024)
        body = encode(event)
    elif case == "not JSON":
        body = b"{not json"
    elif case == "a batch":
        body = encode([event])  # type: ignore[arg-type]
    elif case == "unknown type":
        body = encode({**event, "type": "com.example.user.created"})
    elif case == "not a CloudEvent":
        body = encode({k: v for k, v in event.items() if k != "specversion"})
    elif case == "invalid data":
        event["data"]["user"]["logon_name"] = "not a valid name!"
        body = encode(event)

    reply = deliver(body, sign(NEW_SECRET, f"msg_{case.replace(' ', '_')}", body), **options)

    assert reply["statusCode"] == status, reply["json"]
    assert reply["json"]["status"] == "rejected"
    assert reply["json"]["errors"][0]["field"] == field
    assert emulator.recorder.calls == []
    assert [key for key in stored_keys(ingress_env) if not key.startswith("idem/")] == []
    assert all(not key.startswith("idem/") for key in stored_keys(ingress_env)), (
        "a rejected delivery leaves no idempotency record: a corrected one may use the id"
    )


def test_a_delivery_that_another_invocation_is_running_answers_409_so_the_sender_retries(
    deliver: Deliver, emulator: Emulator, ingress_env: Path, keys: tuple[str, str]
) -> None:
    from shared.models.events import parse_events
    from shared.store.idempotency import IdempotencyStore

    body = encode(request_event(keys[1], "rg-aek2xl5qw"))
    (event,) = parse_events(body)
    store = open_store(f"sqlite:///{ingress_env}/state.db")
    key = f"webhook:{event.source} msg_busy"
    IdempotencyStore(store).begin(key, event.fingerprint, "someone-else", time.time() + 300)
    store.close()

    reply = deliver(body, sign(NEW_SECRET, "msg_busy", body))

    # Not 2xx: if the other attempt fails, only the sender's retry can still deliver the event.
    assert reply["statusCode"] == 409
    assert reply["headers"]["Retry-After"]
    assert reply["json"]["status"] == "in_progress"
    assert emulator.recorder.calls == []


def test_a_cloud_failure_is_a_503_and_the_senders_retry_finishes_the_job(
    deliver: Deliver,
    emulator: Emulator,
    resource_group: str,
    keys: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAMFLOW_MAX_ATTEMPTS", "1")
    body = encode(request_event(keys[1], resource_group))
    assert deliver(body, sign(NEW_SECRET, "msg_req", body))["statusCode"] == 202
    approval = encode(approval_event())
    emulator.faults.fail_nth_call(1, when="before", actions={"CreateUser"})

    failed = deliver(approval, sign(NEW_SECRET, "msg_appr", approval))

    assert failed["statusCode"] == 503, failed["json"]
    assert failed["headers"]["Retry-After"]
    assert failed["json"]["status"] == "failed"
    assert "alice.kafka" not in emulator.account.ram.users

    retried = deliver(approval, sign(NEW_SECRET, "msg_appr", approval))

    assert retried["statusCode"] == 200, retried["json"]
    assert retried["json"]["status"] == "completed"
    assert "alice.kafka" in emulator.account.ram.users


def test_without_a_configured_secret_every_delivery_is_refused(
    deliver: Deliver, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, keys: tuple[str, str]
) -> None:
    monkeypatch.delenv("RAMFLOW_WEBHOOK_SECRET")
    body = encode(request_event(keys[1], "rg-aek2xl5qw"))

    reply = deliver(body, sign(NEW_SECRET, "msg_1", body))

    assert reply["statusCode"] == 500
    assert reply["json"]["errors"] == [{"field": "config", "reason": "the webhook ingress is misconfigured"}]
    assert emulator.recorder.calls == []


def test_two_senders_may_use_the_same_webhook_id(
    deliver: Deliver, emulator: Emulator, keys: tuple[str, str], resource_group: str
) -> None:
    """Ids are the sender's own numbering: the ticket system's evt_1 is not the HR tool's evt_1."""
    first = request_event(keys[1], resource_group)
    second = sample(
        "user-requested-console.json",
        delivery_public_key=keys[1],
        ticket_id="ITSM-2042",
        user={"logon_name": "bob.kafka", "owner": "bob@example.com"},
    )
    second["source"] = "other-itsm.example.com"
    second["data"]["grants"][0]["resource_group"] = resource_group
    one = deliver(encode(first), sign(NEW_SECRET, "evt_1", encode(first)))
    two = deliver(encode(second), sign(NEW_SECRET, "evt_1", encode(second)))
    assert (one["statusCode"], two["statusCode"]) == (202, 202)
    assert two["json"]["ticket_id"] == "ITSM-2042"
