"""The token vendor through real sockets: unmodified Alibaba Cloud clients against `ramflow serve`'s stack."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import fc2
import pytest
import requests
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.utils_models import Config as OpenApiConfig

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.fcruntime.stack import LocalStack
from tests.vendor.conftest import Mint

ACCOUNT = "5123456789012345"
READER_ROLE = "ramflow-kafka-reader"


def sts_client(endpoint: str, credential: CredentialClient) -> StsClient:
    host = endpoint.removeprefix("http://")
    return StsClient(
        OpenApiConfig(credential=credential, endpoint=host, protocol="http", region_id="cn-hangzhou")
    )


def test_credentials_uri_provider_gets_credentials_that_work(
    stack: LocalStack, vendor_url: str, mint: Mint, emulator: Emulator
) -> None:
    uri = f"{vendor_url}?token={mint('demo-app')}&role=kafka-reader"
    credential = CredentialClient(CredentialConfig(type="credentials_uri", credentials_uri=uri))

    identity = sts_client(stack.cloud_endpoint, credential).get_caller_identity().body

    assert identity.identity_type == "AssumedRoleUser"
    assert identity.arn == f"acs:ram::{ACCOUNT}:assumed-role/{READER_ROLE}/demo-app"
    assert identity.account_id == ACCOUNT
    # The session carries the rendered session policy: read-only, one Kafka instance.
    session = emulator.sts_sessions[credential.get_credential().access_key_id]
    assert session.session_policy is not None
    statement = session.session_policy["Statement"][0]
    assert statement["Resource"] == ["acs:alikafka:*:*:alikafka_post-cn-7mz2"]
    assert set(statement["Action"]) == {"alikafka:ListInstance", "alikafka:ListTopic", "alikafka:ListGroup"}


def test_reply_is_exactly_the_credentials_uri_body(vendor_url: str, mint: Mint) -> None:
    reply = requests.get(vendor_url, params={"token": mint("demo-app")}, timeout=10)

    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert body["Code"] == "Success"
    assert body["AccessKeyId"].startswith("STS.")
    assert len(body["Expiration"]) == 20 and body["Expiration"].endswith("Z")
    assert reply.headers["Cache-Control"] == "no-store"


def test_bearer_header_and_es256_token(vendor_url: str, mint: Mint, stack: LocalStack) -> None:
    reply = requests.post(
        vendor_url,
        headers={"Authorization": f"Bearer {mint('ops-app', alg='ES256')}"},
        json={"role": "kafka-operator", "duration": 7200},
        timeout=10,
    )

    assert reply.status_code == 200, reply.text
    body = reply.json()
    root = CredentialClient(
        CredentialConfig(
            type="sts",
            access_key_id=body["AccessKeyId"],
            access_key_secret=body["AccessKeySecret"],
            security_token=body["SecurityToken"],
        )
    )
    arn = sts_client(stack.cloud_endpoint, root).get_caller_identity().body.arn
    assert arn == f"acs:ram::{ACCOUNT}:assumed-role/ramflow-kafka-operator/ops-app"


def test_dev_token_is_accepted(vendor_url: str, mint: Mint) -> None:
    reply = requests.get(vendor_url, params={"token": mint("demo-app", alg="dev")}, timeout=10)
    assert reply.status_code == 200


def test_fc2_client_invokes_the_vendor_as_an_event(stack: LocalStack, mint: Mint) -> None:
    assert stack.runtime is not None
    client = fc2.Client(
        endpoint=stack.runtime.endpoint,
        accessKeyID=DEFAULT_ROOT_KEY_ID,
        accessKeySecret=DEFAULT_ROOT_KEY_SECRET,
    )
    event = {"token": mint("demo-app"), "role": "kafka-reader", "duration": 1800}

    reply = client.invoke_function("ramflow", "token-vendor", payload=json.dumps(event))

    body = json.loads(reply.data)
    assert body["Code"] == "Success"
    assert body["AccessKeyId"].startswith("STS.")
    assert "x-fc-error-type" not in {k.lower() for k in reply.headers}


def test_fc2_event_refusal_is_a_json_error(
    stack: LocalStack, mint: Mint, sts_calls: Callable[[], list[str]]
) -> None:
    assert stack.runtime is not None
    client = fc2.Client(
        endpoint=stack.runtime.endpoint,
        accessKeyID=DEFAULT_ROOT_KEY_ID,
        accessKeySecret=DEFAULT_ROOT_KEY_SECRET,
    )
    reply = client.invoke_function(
        "ramflow", "token-vendor", payload=json.dumps({"token": mint("demo-app"), "role": "kafka-operator"})
    )

    assert json.loads(reply.data)["Code"] == "NotEntitled"
    assert sts_calls() == []


# --- refusals: the right status, a JSON {Code, Message}, and no STS call ------------------------------


def _cases(mint: Mint) -> dict[str, tuple[dict[str, str], dict[str, str], int, str]]:
    """name → (query, headers, status, Code)."""
    none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    good = mint("demo-app")
    payload = good.split(".")[1]
    forged = mint("ops-app").split(".")  # a real signature, but over other claims
    return {
        "no token": ({}, {}, 401, "MissingToken"),
        "empty bearer": ({}, {"Authorization": "Bearer "}, 401, "InvalidToken"),
        "basic auth": ({}, {"Authorization": "Basic ZGVtbzpkZW1v"}, 401, "InvalidToken"),
        "expired": ({"token": mint("demo-app", ttl=-120)}, {}, 401, "InvalidToken"),
        "wrong issuer": ({"token": mint("demo-app", iss="https://evil.invalid")}, {}, 401, "InvalidToken"),
        "wrong audience": ({"token": mint("demo-app", aud="another-service")}, {}, 401, "InvalidToken"),
        "no sub": ({"token": mint(None)}, {}, 401, "InvalidToken"),
        "bad signature": ({"token": ".".join([forged[0], payload, forged[2]])}, {}, 401, "InvalidToken"),
        "alg none": ({"token": f"{none_header}.{payload}."}, {}, 401, "InvalidToken"),
        "garbage": ({"token": "not-a-jwt"}, {}, 401, "InvalidToken"),
        "not entitled": ({"token": good, "role": "kafka-operator"}, {}, 403, "NotEntitled"),
        "unknown role": ({"token": good, "role": "admin"}, {}, 403, "NotEntitled"),
        "unknown app": ({"token": mint("stranger-app")}, {}, 403, "NotEntitled"),
        "role needed": ({"token": mint("ops-app")}, {}, 400, "InvalidParameter"),
        "duration too short": ({"token": good, "duration": "899"}, {}, 400, "InvalidParameter"),
        "duration over max": ({"token": good, "duration": "3601"}, {}, 400, "InvalidParameter"),
        "duration not a number": ({"token": good, "duration": "1e3"}, {}, 400, "InvalidParameter"),
    }


CASES = [
    "no token",
    "empty bearer",
    "basic auth",
    "expired",
    "wrong issuer",
    "wrong audience",
    "no sub",
    "bad signature",
    "alg none",
    "garbage",
    "not entitled",
    "unknown role",
    "unknown app",
    "role needed",
    "duration too short",
    "duration over max",
    "duration not a number",
]


@pytest.mark.parametrize("case", CASES)
def test_refusals(case: str, vendor_url: str, mint: Mint, sts_calls: Callable[[], list[str]]) -> None:
    query, headers, status, code = _cases(mint)[case]

    reply = requests.get(vendor_url, params=query, headers=headers, timeout=10)

    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["Code"] == code
    assert body["Message"] and "Traceback" not in reply.text
    assert "AccessKeySecret" not in body
    assert sts_calls() == []


def test_hs256_signed_with_the_public_key_is_refused(
    vendor_url: str, jwks: dict[str, object], sts_calls: Callable[[], list[str]]
) -> None:
    """The classic confusion attack: an HMAC 'signature' keyed with the published RSA key."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "test-rsa"}).encode())
    claims = b64(
        json.dumps(
            {
                "iss": "https://dev-issuer.ramflow.invalid",
                "aud": "ramflow-token-vendor",
                "sub": "demo-app",
                "exp": 4102444800,
            }
        ).encode()
    )
    secret = json.dumps(jwks).encode()
    signature = b64(hmac.new(secret, f"{header}.{claims}".encode(), hashlib.sha256).digest())

    reply = requests.get(vendor_url, params={"token": f"{header}.{claims}.{signature}"}, timeout=10)

    assert reply.status_code == 401
    assert sts_calls() == []


# --- the warm-instance cache ---------------------------------------------------------------------------


def test_second_request_is_served_from_cache(
    vendor_url: str, mint: Mint, sts_calls: Callable[[], list[str]]
) -> None:
    first = requests.get(vendor_url, params={"token": mint("demo-app")}, timeout=10).json()
    second = requests.get(vendor_url, params={"token": mint("demo-app")}, timeout=10).json()

    assert sts_calls() == ["AssumeRole"]
    assert second == first


def test_cache_is_per_application_and_role(
    vendor_url: str, mint: Mint, sts_calls: Callable[[], list[str]]
) -> None:
    a = requests.get(vendor_url, params={"token": mint("demo-app")}, timeout=10).json()
    b = requests.get(vendor_url, params={"token": mint("ops-app"), "role": "kafka-reader"}, timeout=10).json()

    assert a["AccessKeyId"] != b["AccessKeyId"]
    assert sts_calls() == ["AssumeRole", "AssumeRole"]


def test_sixteen_concurrent_misses_make_one_assume_role(
    vendor_url: str, mint: Mint, emulator: Emulator, sts_calls: Callable[[], list[str]]
) -> None:
    emulator.faults.latency_ms = 200  # a slow STS keeps every request inside the miss window
    token = mint("demo-app")
    barrier = threading.Barrier(16)
    replies: list[requests.Response] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        reply = requests.get(vendor_url, params={"token": token}, timeout=30)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [r.status_code for r in replies] == [200] * 16
    assert len({r.json()["AccessKeyId"] for r in replies}) == 1
    assert sts_calls().count("AssumeRole") == 1


def test_sts_failure_is_a_502_without_secrets(
    vendor_url: str, mint: Mint, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.faults.fault_rate = 1.0  # every try answers 503, so the runner's retries give up too

    token = mint("demo-app")
    reply = requests.get(vendor_url, params={"token": token}, timeout=30)
    emulator.faults.fault_rate = 0.0

    assert reply.status_code == 502
    assert reply.json()["Code"] == "AssumeRoleFailed"
    assert "ServiceUnavailable" in reply.json()["Message"]
    out, err = capfd.readouterr()
    assert token not in out + err


# --- secrets never reach a log ---------------------------------------------------------------------------


def test_no_token_or_secret_in_logs(
    vendor_url: str, mint: Mint, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    token = mint("demo-app")
    ok = requests.get(vendor_url, params={"token": token}, timeout=10).json()
    refused_token = mint("demo-app", aud="elsewhere")
    requests.get(vendor_url, params={"token": refused_token}, timeout=10)
    requests.get(vendor_url, params={"token": token, "role": "kafka-operator"}, timeout=10)

    out, err = capfd.readouterr()
    # Records of the server side (the runtime's threads, urllib3 of its SDK calls included); the
    # test's own HTTP client logs the URL it asks for on the main thread, as any client would.
    server_side = "\n".join(r.getMessage() for r in caplog.records if r.threadName != "MainThread")
    logged = server_side + out + err
    assert "vended app=demo-app" in server_side  # the audit line is there …
    for secret in (token, refused_token, ok["AccessKeySecret"], ok["SecurityToken"]):
        assert secret not in logged  # … without the token or the credentials
    assert token.split(".")[2] not in logged
