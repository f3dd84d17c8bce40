"""credential-pickup: the requester collects the sealed secret; anyone else gets 401/403 and no secret."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from local.dev import DEV_PICKUP_AUTH, mint_dev_token
from local.fcruntime.stack import LocalStack
from shared.pickup import COLLECTED_GRACE_SECONDS, collect, offer
from shared.sealing import generate_keypair, open_sealed
from shared.store import MemoryBackend
from shared.tokens import Claims
from tests.requester.test_end_to_end import auto_approved_request

REQUESTER = "frank@example.com"  # the sample's requester


def pickup_token(sub: str, **claims: Any) -> str:
    return mint_dev_token(sub, entitlements=DEV_PICKUP_AUTH, **claims)


@pytest.fixture(scope="module")
def served():
    with LocalStack() as stack:
        yield stack


@pytest.fixture(scope="module")
def completed(served):
    """A ticket completed through the functions, and the requester's private key."""
    private, public = generate_keypair()
    event = auto_approved_request(public)
    invocation = served.runtime.invoke("user-requested", event)
    reply = invocation.value if isinstance(invocation.value, dict) else json.loads(invocation.value)
    assert reply["status"] == "completed", reply
    return reply, private


def get(served, ticket: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        served.runtime.url("credential-pickup"), params={"ticket": ticket}, headers=headers, timeout=30
    )


def test_the_requester_collects_the_sealed_secret(served, completed) -> None:
    reply, private = completed
    answer = get(served, reply["ticket_id"], pickup_token(REQUESTER))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["credential"] == reply["credential"]
    assert open_sealed(private, body["credential"]["sealed_secret"])
    assert body["available_until"] > time.time() + 6 * 86400
    by_email = get(served, reply["ticket_id"], pickup_token("00u1frank", email="Frank@Example.com"))
    assert by_email.status_code == 200, "the email claim identifies the requester too"


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("not.a.jwt", 401),
        (lambda: mint_dev_token(REQUESTER), 401),  # the token vendor's audience, not the pickup's
        (lambda: pickup_token("mallory@example.com"), 403),
        (lambda: pickup_token("mallory@example.com", email="mallory@example.com"), 403),
    ],
)
def test_anyone_else_is_refused_without_a_secret(served, completed, token, status) -> None:
    reply, _ = completed
    answer = get(served, reply["ticket_id"], token() if callable(token) else token)
    assert answer.status_code == status, answer.text
    assert reply["credential"]["sealed_secret"] not in answer.text
    assert "credential" not in answer.json()


def test_unknown_ticket_is_404_and_a_missing_ticket_400(served) -> None:
    assert get(served, "ITSM-none", pickup_token(REQUESTER)).status_code == 404
    assert get(served, "", pickup_token(REQUESTER)).status_code == 400


def test_the_window_is_bounded_and_collection_is_recorded() -> None:
    backend = MemoryBackend()
    credential = {"kind": "access_key", "access_key_id": "LTAI1", "sealed_secret": "c2VhbGVk" * 10}
    now = 1_000_000.0
    assert offer(
        backend,
        ticket_id="T-1",
        requester=REQUESTER,
        user_name="u",
        credential=credential,
        ttl_seconds=3600,
        now=now,
    )
    assert not offer(
        backend,
        ticket_id="T-1",
        requester=REQUESTER,
        user_name="u",
        credential=credential,
        ttl_seconds=3600,
        now=now,
    ), "a replay offers nothing new"
    claims = Claims(subject=REQUESTER, issuer="i", audience="a", expires_at=0, raw={})
    first = collect(backend, "T-1", claims, now=now + 10)
    assert first.body["collected_at"] == int(now + 10)
    again = collect(backend, "T-1", claims, now=now + 20)
    assert again.body["collected_at"] == int(now + 10), "the first collection is what is recorded"
    with pytest.raises(Exception, match="no sealed secret"):
        collect(backend, "T-1", claims, now=now + 10 + COLLECTED_GRACE_SECONDS + 1)
    assert offer(
        backend,
        ticket_id="T-2",
        requester=REQUESTER,
        user_name="u",
        credential=credential,
        ttl_seconds=60,
        now=now,
    )
    with pytest.raises(Exception, match="no sealed secret"):
        collect(backend, "T-2", claims, now=now + 61)


def test_no_secret_or_private_key_in_the_store_or_the_audit_trail(served, completed) -> None:
    reply, private = completed
    assert get(served, reply["ticket_id"], pickup_token(REQUESTER)).status_code == 200
    secret = open_sealed(private, reply["credential"]["sealed_secret"])
    files = [f for f in served.workdir.rglob("*") if f.is_file()]
    assert any(f.name == "audit.jsonl" for f in files) and any(f.suffix == ".db" for f in files)
    for f in files:
        content = f.read_bytes()
        assert secret.encode() not in content, f"the AccessKey secret is in {f.name}"
        assert private.encode() not in content, f"the private key is in {f.name}"
