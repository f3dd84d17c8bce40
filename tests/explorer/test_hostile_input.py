"""Hostile input at every entry point (hypothesis): never an unhandled error, and input that is
refused never reaches the cloud (no call at all when it is malformed, no write ever).

Entry points: the five event functions (one event or an EventBridge list, as bytes or parsed), the
webhook ingress (HTTP-trigger events, unsigned and signed), and the token vendor (HTTP requests).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.inprocess import IN_PROCESS_ENDPOINT, mock_cloud
from local.invoke import invoke
from local.testing import emulator_for_tests
from shared.fc import FcContext, FcFunction
from shared.handler import FlowFailed
from shared.models.events import DATA_MODELS
from tests.webhooks.conftest import NEW_SECRET, http_event, sign

EVENT_FUNCTIONS = ["user-requested", "access-approved", "access-revoked", "user-offboarded"]
READS = ("Get", "List")
HOSTILE = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            " ",
            "a" * 300,
            "../../etc",
            "*",
            "acs:ram::*:*",
            "\x00",
            "${jndi:x}",
            "rg-",
            "alice@",
            "P-1D",
            "💥",
        ]
    ),
)


def data_for(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the payload's own field names and hostile values (so validation is what refuses)."""
    fields = list(DATA_MODELS[event_type].model_fields)
    return st.dictionaries(
        st.sampled_from(fields), st.one_of(hostile_text, json_values), max_size=len(fields)
    )


def envelope(event_type: str, data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "fuzz.example.com",
        "type": event_type,
        "data": data,
    }


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    folder = tmp_path_factory.mktemp("hostile")
    env = {
        "RAMFLOW_CLOUD_ENDPOINT": IN_PROCESS_ENDPOINT,
        "RAMFLOW_STORE": f"sqlite:///{folder}/state.db",
        "RAMFLOW_AUDIT_PATH": str(folder / "audit.jsonl"),
        "RAMFLOW_WEBHOOK_SECRET": NEW_SECRET,
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with mock_cloud(emulator_for_tests()) as emulator:
            yield emulator


@contextmanager
def calls(emulator: Emulator) -> Iterator[list[str]]:
    """The actions that reached the cloud inside the block."""
    seen: list[str] = []
    start = len(emulator.recorder.calls)
    yield seen
    seen += [c.action for c in emulator.recorder.calls[start:]]


def run_event_function(function: str, raw: bytes | Any) -> Any:
    try:
        return invoke(function, raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    except FlowFailed as failed:  # raised on purpose: FC delivers the event again
        return failed.result.to_json()


@HOSTILE
@given(function=st.sampled_from(EVENT_FUNCTIONS), raw=st.one_of(st.binary(max_size=200), json_values))
def test_garbage_to_an_event_function_is_refused_without_a_cloud_call(
    cloud: Emulator, function: str, raw: Any
) -> None:
    with calls(cloud) as made:
        reply = run_event_function(function, raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    assert isinstance(reply, dict | list)
    for one in reply if isinstance(reply, list) else [reply]:
        assert one["status"] == "rejected"
    assert made == []


@HOSTILE
@given(data=st.data())
def test_hostile_payloads_of_every_event_type_never_write_when_refused(
    cloud: Emulator, data: st.DataObject
) -> None:
    function = data.draw(st.sampled_from(EVENT_FUNCTIONS + ["user-offboarded"]))
    event_type = {
        "user-requested": "ramflow.user.requested",
        "access-approved": "ramflow.access.approved",
        "access-revoked": "ramflow.access.revoked",
        "user-offboarded": data.draw(st.sampled_from(["ramflow.user.offboarded", "ramflow.user.rehired"])),
    }[function]
    payload = data.draw(data_for(event_type))
    as_list = data.draw(st.booleans())
    event = envelope(event_type, payload)
    with calls(cloud) as made:
        reply = run_event_function(function, [event] if as_list else event)
    assert isinstance(reply, dict)
    assert reply["status"] in {"rejected", "completed", "pending_request", "in_progress", "failed", "partial"}
    if reply["status"] == "rejected":
        assert [a for a in made if not a.startswith(READS)] == [], "a refused event wrote to the cloud"
        assert reply["errors"] and all(e["field"] and e["reason"] for e in reply["errors"])


@HOSTILE
@given(
    body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "x-other"]),
        hostile_text,
        max_size=5,
    ),
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
)
def test_unsigned_deliveries_to_the_ingress_are_refused_without_a_cloud_call(
    cloud: Emulator, body: bytes, headers: dict[str, str], method: str
) -> None:
    with calls(cloud) as made:
        reply = invoke(
            "webhook-ingress",
            http_event(body, headers, method=method),
            FcContext(FcFunction("webhook-ingress")),
        )
    assert reply["statusCode"] in {400, 401, 405, 413, 415}
    assert json.loads(reply["body"])["status"] == "rejected"
    assert made == []


@HOSTILE
@given(data=st.data())
def test_signed_hostile_deliveries_are_answered_never_crash_and_never_write_when_refused(
    cloud: Emulator, data: st.DataObject
) -> None:
    event_type = data.draw(st.sampled_from(sorted(DATA_MODELS) + ["ramflow.unknown", ""]))
    payload = data.draw(data_for(event_type)) if event_type in DATA_MODELS else data.draw(json_values)
    document = data.draw(st.sampled_from(["event", "list", "garbage"]))
    event = envelope(event_type, payload)
    body = {
        "event": json.dumps(event).encode(),
        "list": json.dumps([event]).encode(),
        "garbage": data.draw(st.binary(max_size=100)),
    }[document]
    webhook_id = f"msg_{uuid.uuid4().hex}"
    with calls(cloud) as made:
        reply = invoke(
            "webhook-ingress",
            http_event(body, sign(NEW_SECRET, webhook_id, body) if _text(body) else {}),
            FcContext(FcFunction("webhook-ingress")),
        )
    assert reply["statusCode"] != 500, reply["body"]
    result = json.loads(reply["body"])
    if result["status"] == "rejected":
        assert [a for a in made if not a.startswith(READS)] == []


def _text(body: bytes) -> bool:
    try:
        body.decode()
        return True
    except UnicodeDecodeError:
        return False


@HOSTILE
@given(
    query=st.dictionaries(st.sampled_from(["role", "token", "duration", "x"]), hostile_text, max_size=4),
    authorization=st.one_of(st.none(), hostile_text, hostile_text.map(lambda t: f"Bearer {t}")),
    method=st.sampled_from(["GET", "POST", "PUT"]),
)
def test_the_token_vendor_refuses_hostile_requests_without_a_cloud_call(
    cloud: Emulator, query: dict[str, str], authorization: str | None, method: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    event = json.loads(http_event(b"", headers, method=method))
    event["queryParameters"] = query
    with calls(cloud) as made:
        reply = invoke("token-vendor", json.dumps(event).encode(), FcContext(FcFunction("token-vendor")))
    assert reply["statusCode"] in {400, 401, 403, 405, 500}
    if reply["statusCode"] == 500:  # no JWKS configured here: a configuration error, said as such
        assert "config" in reply["body"]
    assert made == []
