"""credential-pickup under hostile input: every answer is a refusal with a reason, never a 5xx or a secret."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.credential_pickup.index import handler
from local.dev import DEV_PICKUP_AUTH, mint_dev_token
from shared.fc import FcContext, FcFunction
from shared.pickup import offer
from shared.store import StateStore

SEALED = "c2VhbGVkLWNpcGhlcnRleHQ" * 4


@pytest.fixture
def pickup_env(tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")
    monkeypatch.setenv("RAMFLOW_PICKUP_AUTH", str(DEV_PICKUP_AUTH))
    monkeypatch.setenv("RAMFLOW_STORE", store)
    with StateStore.from_url(store) as state:
        offer(
            state.backend,
            ticket_id="T-1",
            requester="frank@example.com",
            user_name="u",
            credential={"kind": "access_key", "access_key_id": "LTAI1", "sealed_secret": SEALED},
            ttl_seconds=3600,
        )
    return store


def request(method: str, query: dict, headers: dict) -> dict:
    return {
        "version": "v1",
        "rawPath": "/",
        "headers": headers,
        "queryParameters": query,
        "body": "",
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": method, "sourceIp": "10.0.0.9"}},
    }


text = st.text(max_size=60)
tokens = st.one_of(
    text,
    st.just(mint_dev_token("mallory@example.com", entitlements=DEV_PICKUP_AUTH)),
    st.just(mint_dev_token("frank@example.com")),  # the token vendor's audience
    st.builds(
        lambda t: t[:-4] + "AAAA", st.just(mint_dev_token("frank@example.com", entitlements=DEV_PICKUP_AUTH))
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "get"]),
    ticket=st.one_of(st.just("T-1"), text),
    authorization=st.one_of(
        st.none(), text, tokens.map(lambda t: f"Bearer {t}"), tokens.map(lambda t: f"Basic {t}")
    ),
)
def test_no_hostile_request_gets_the_secret_or_a_5xx(pickup_env, method, ticket, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = handler(
        json.dumps(request(method, {"ticket": ticket}, headers)), FcContext(FcFunction("credential-pickup"))
    )
    assert reply["statusCode"] in {400, 401, 403, 404, 405}, reply
    assert SEALED not in reply["body"]
    assert json.loads(reply["body"])["Message"]


def test_garbage_events_are_400(pickup_env) -> None:
    for raw in (b"", b"not json", b"[1,2]", json.dumps({"headers": "x"}).encode()):
        reply = handler(raw, FcContext(FcFunction("credential-pickup")))
        assert reply["statusCode"] in {400, 401, 405}, (raw, reply)
