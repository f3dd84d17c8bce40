"""HTTP triggers: the FC 3.0 event in, the `{statusCode, headers, isBase64Encoded, body}` reply out."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import fc2
import requests

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "fc3" / "http-trigger-event.json"  # see its README


def test_event_has_the_fc3_shape(endpoint: str) -> None:
    reply = requests.post(
        f"{endpoint}/probe/some/path?x=1&y=two",
        data="plain text body",
        headers={"Content-Type": "text/plain", "X-Custom": "abc"},
        timeout=10,
    )

    assert reply.status_code == 201  # the handler's statusCode
    assert reply.headers["X-Probe"] == "yes"  # … and its headers
    event = reply.json()["event"]
    reference = json.loads(REFERENCE.read_text())
    assert set(event) == set(reference)
    assert set(event["requestContext"]) == set(reference["requestContext"])
    assert set(event["requestContext"]["http"]) == set(reference["requestContext"]["http"])
    assert event["version"] == "v1"
    assert event["rawPath"] == "/some/path"
    assert event["queryParameters"] == {"x": "1", "y": "two"}
    assert event["body"] == "plain text body" and event["isBase64Encoded"] is False
    assert event["headers"]["X-Custom"] == "abc"
    http = event["requestContext"]["http"]
    assert (
        http["method"] == "POST"
        and http["path"] == "/some/path?x=1&y=two"
        and http["sourceIp"] == "127.0.0.1"
    )
    assert event["requestContext"]["accountId"] == "5123456789012345"
    assert event["requestContext"]["requestId"] == reply.headers["X-Fc-Request-Id"]


def test_binary_bodies_arrive_base64_encoded(endpoint: str) -> None:
    blob = bytes(range(256))
    event = requests.post(f"{endpoint}/probe/", data=blob, timeout=10).json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == blob


def test_trigger_methods_are_enforced(endpoint: str) -> None:
    assert requests.delete(f"{endpoint}/probe/", timeout=10).status_code == 405


def test_functions_without_an_http_trigger_or_code_are_404(endpoint: str) -> None:
    for name in ("sleepy", "ghost", "nope"):
        assert requests.get(f"{endpoint}/{name}/", timeout=10).status_code == 404


def test_a_failing_handler_is_a_502_without_a_stack_trace(endpoint: str) -> None:
    reply = requests.get(f"{endpoint}/boom/", timeout=10)
    assert reply.status_code == 502
    assert reply.headers["X-Fc-Error-Type"] == "UnhandledInvocationError"
    assert "Traceback" not in reply.text and 'File "' not in reply.text


def test_fc2_do_http_request_reaches_the_trigger(endpoint: str) -> None:
    client = fc2.Client(
        endpoint=endpoint, accessKeyID=DEFAULT_ROOT_KEY_ID, accessKeySecret=DEFAULT_ROOT_KEY_SECRET
    )
    reply = client.do_http_request("GET", "ramflow", "probe", "/via/proxy", params={"q": "1"})
    assert reply.status_code == 201
    event = reply.json()["event"]
    assert event["rawPath"] == "/via/proxy" and event["queryParameters"] == {"q": "1"}


def test_proxy_requests_must_be_signed(endpoint: str) -> None:
    client = fc2.Client(endpoint=endpoint, accessKeyID=DEFAULT_ROOT_KEY_ID, accessKeySecret="wrong-secret")
    reply = client.do_http_request("GET", "ramflow", "probe", "/", params={})
    assert reply.status_code == 403
