"""The InvokeFunction APIs of the local runtime, called by real clients and refused like FC refuses."""

from __future__ import annotations

import email.utils
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import fc2
import pytest
import requests
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_util.models import RuntimeOptions
from fc2.fc_exceptions import FcError

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from local.fcruntime.signing import fc2_signature, fc2_string_to_sign
from local.fcruntime.stack import LocalStack
from local.seed import DevConfig
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from tests.fcruntime.conftest import project_stack


def fc2_client(
    endpoint: str, key_id: str = DEFAULT_ROOT_KEY_ID, secret: str = DEFAULT_ROOT_KEY_SECRET, token: str = ""
) -> fc2.Client:
    return fc2.Client(endpoint=endpoint, accessKeyID=key_id, accessKeySecret=secret, securityToken=token)


def invoke_2023(
    endpoint: str,
    function: str,
    payload: bytes,
    *,
    key_id: str = DEFAULT_ROOT_KEY_ID,
    secret: str = DEFAULT_ROOT_KEY_SECRET,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """InvokeFunction 2023-03-30 as the v3 SDK sends it: ROA, ACS3-HMAC-SHA256, body as a stream."""
    config = open_api_models.Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint.removeprefix("http://"),
        protocol="http",
    )
    client = OpenApiClient(config)
    params = open_api_models.Params(
        action="InvokeFunction",
        version="2023-03-30",
        protocol="HTTP",
        pathname=f"/2023-03-30/functions/{function}/invocations",
        method="POST",
        auth_type="AK",
        style="ROA",
        req_body_type="binary",
        body_type="byte",
    )
    request = open_api_models.OpenApiRequest(headers=headers or {}, stream=io.BytesIO(payload))
    return client.call_api(params, request, RuntimeOptions(autoretry=False, max_attempts=1))


# --- 2016-08-15 (aliyun-fc2) ---------------------------------------------------------------------------


def test_fc2_invoke_hands_the_event_and_an_fc_context(endpoint: str, stack: LocalStack) -> None:
    reply = fc2_client(endpoint).invoke_function("ramflow", "probe", payload=b'{"hello": "world"}')

    info = json.loads(reply.data)
    assert info["event"] == {"hello": "world"}
    assert info["event_type"] == "bytes"  # FC hands the payload as bytes
    assert info["function"] == "probe" and info["timeout"] == 5 and info["memory"] == 256
    assert info["request_id"] == reply.headers["X-Fc-Request-Id"]
    assert info["plain"] == "hello-cn-hangzhou"  # ${vars.*} resolved from s.yaml
    assert info["from_deploy"] is None  # ${env(...)} is a deploy-time value: left out locally
    assert info["endpoint"] == stack.cloud_endpoint


def test_functions_run_as_their_role_never_the_root_key(endpoint: str, stack: LocalStack) -> None:
    info = json.loads(fc2_client(endpoint).invoke_function("ramflow", "probe", payload=b"{}").data)

    assert info["env_key"].startswith("STS.") and info["env_key"] != DEFAULT_ROOT_KEY_ID
    assert info["context_key"] is None  # python3.12: only the environment carries them
    creds = CloudCredentials(info["env_key"], info["env_secret"], info["env_token"])
    sts: StsClient = CloudClients(Settings(cloud_endpoint=stack.cloud_endpoint), creds).sts
    arn = sts.get_caller_identity().body.arn
    assert arn == "acs:ram::5123456789012345:assumed-role/ramflow-fn-token-vendor/fc-local"


def test_python310_gets_credentials_on_the_context(endpoint: str) -> None:
    info = json.loads(fc2_client(endpoint).invoke_function("ramflow", "probe-py310", payload=b"{}").data)
    assert info["context_key"] is not None and info["context_key"] == info["env_key"]


def test_an_sts_session_may_invoke(endpoint: str, stack: LocalStack) -> None:
    assert stack.seeded is not None
    creds = stack.runtime.credentials.for_role("ramflow-fn-token-vendor") if stack.runtime else None  # type: ignore[attr-defined]
    assert creds is not None
    client = fc2_client(endpoint, creds.access_key_id, creds.access_key_secret, creds.security_token or "")
    assert json.loads(client.invoke_function("ramflow", "probe", payload=b"{}").data)["function"] == "probe"


def test_against_a_remote_cloud_a_session_invokes_what_its_role_allows_and_nothing_else(
    emulator_server: EmulatorServer, tmp_path: Path
) -> None:
    """With `--cloud` the runtime cannot ask the cloud about a key or a policy: it knows the sessions
    it handed its functions, and what each role may invoke (local/roles.py, the deployed policies)."""
    remote = LocalStack(DevConfig.load(), cloud=emulator_server.endpoint, workdir=tmp_path)
    with remote:
        assert remote.emulator is None and remote.runtime is not None and remote.runtime.functions
        functions = remote.runtime.functions
        endpoint = remote.runtime.endpoint

        def client_of(function: str, token: str | None = None) -> fc2.Client:
            creds = remote.runtime.credentials_for(functions[function])
            assert creds is not None and creds.access_key_id.startswith("STS.")
            token = creds.security_token or "" if token is None else token
            return fc2_client(endpoint, creds.access_key_id, creds.access_key_secret, token)

        def refusal(client: fc2.Client, function: str) -> str:
            with pytest.raises(FcError) as caught:
                client.invoke_function("ramflow", function, payload=b"{}")
            assert caught.value.status_code == 403
            return str(json.loads(caught.value.message)["ErrorCode"])

        # the ingress hands events on: its session reaches the function (which rejects the empty event)
        handed = client_of("webhook-ingress").invoke_function("ramflow", "user-requested", payload=b"{}")
        assert json.loads(handed.data)["status"] == "rejected"
        assert refusal(client_of("token-vendor"), "access-approved") == "NoPermission"
        assert refusal(client_of("webhook-ingress"), "token-vendor") == "NoPermission"
        assert refusal(client_of("webhook-ingress", token="not-the-token"), "user-requested") == (
            "InvalidSecurityToken.Mismatch"
        )


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [
        ("LTAI5tNobodyKnowsThisKey", "whatever", "InvalidAccessKeyId.NotFound"),
        (DEFAULT_ROOT_KEY_ID, "not-the-secret", "SignatureNotMatch"),
    ],
)
def test_fc2_refuses_unknown_keys_and_bad_signatures(
    endpoint: str, key_id: str, secret: str, code: str
) -> None:
    with pytest.raises(FcError) as caught:
        fc2_client(endpoint, key_id, secret).invoke_function("ramflow", "probe", payload=b"{}")
    assert caught.value.status_code == 403
    assert json.loads(caught.value.message)["ErrorCode"] == code


def _signed_2016(
    endpoint: str,
    *,
    date: str,
    body: bytes = b"{}",
    secret: str = DEFAULT_ROOT_KEY_SECRET,
    tamper: bool = False,
) -> requests.Response:
    path = "/2016-08-15/services/ramflow/functions/probe/invocations"
    headers = {"date": date, "content-type": "application/json", "x-fc-invocation-type": "Sync"}
    signature = fc2_signature(secret, fc2_string_to_sign("POST", path, headers))
    headers["authorization"] = f"FC {DEFAULT_ROOT_KEY_ID}:{signature}"
    if tamper:
        headers["x-fc-invocation-type"] = "Async"
    return requests.post(endpoint + path, data=body, headers=headers, timeout=10)


def test_fc2_signature_covers_the_date_and_fc_headers(endpoint: str) -> None:
    now = email.utils.formatdate(usegmt=True)
    stale = email.utils.formatdate(time.time() - 3600, usegmt=True)

    assert _signed_2016(endpoint, date=now).status_code == 200
    assert _signed_2016(endpoint, date=stale).json()["ErrorCode"] == "RequestTimeTooSkewed"
    assert _signed_2016(endpoint, date=now, tamper=True).json()["ErrorCode"] == "SignatureNotMatch"


def test_unsigned_invocations_are_401(endpoint: str) -> None:
    reply = requests.post(
        f"{endpoint}/2016-08-15/services/ramflow/functions/probe/invocations", data=b"{}", timeout=10
    )
    assert reply.status_code == 401
    reply = requests.post(f"{endpoint}/2023-03-30/functions/probe/invocations", data=b"{}", timeout=10)
    assert reply.status_code == 401


def test_unknown_service_and_missing_functions_are_404(endpoint: str) -> None:
    client = fc2_client(endpoint)
    for service, function, code in [
        ("other", "probe", "ServiceNotFound"),
        ("ramflow", "ghost", "FunctionNotFound"),
        ("ramflow", "nope", "FunctionNotFound"),
    ]:
        with pytest.raises(FcError) as caught:
            client.invoke_function(service, function, payload=b"{}")
        assert caught.value.status_code == 404
        assert json.loads(caught.value.message)["ErrorCode"] == code


def test_handler_errors_are_reported_like_fc(endpoint: str) -> None:
    with pytest.raises(FcError) as caught:
        fc2_client(endpoint).invoke_function("ramflow", "boom", payload=b"{}")
    body = json.loads(caught.value.message)
    assert body["errorType"] == "RuntimeError"
    assert "Traceback" not in caught.value.message


def test_function_timeout(endpoint: str, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller is answered at the function's timeout (1 s), while its handler (3 s) still runs."""
    assert stack.runtime is not None
    instance = stack.runtime.instance("sleepy")
    assert instance is not None
    sleeping = instance.handler()
    returned = threading.Event()

    def handler(event: bytes, context: Any) -> Any:
        try:
            return sleeping(event, context)
        finally:
            returned.set()

    monkeypatch.setattr(instance.module, "handler", handler)

    with pytest.raises(FcError) as caught:
        fc2_client(endpoint).invoke_function("ramflow", "sleepy", payload=b"{}")

    assert not returned.is_set()  # answered before the handler finished
    assert json.loads(caught.value.message)["errorType"] == "FunctionTimeoutError"
    assert instance.invocations == 1


def test_async_invocation_is_accepted_and_runs(endpoint: str, stack: LocalStack) -> None:
    assert stack.runtime is not None
    before = stack.runtime._instances["probe"].invocations
    reply = fc2_client(endpoint).invoke_function(
        "ramflow", "probe", payload=b"{}", headers={"x-fc-invocation-type": "Async"}
    )
    assert reply.headers["X-Fc-Request-Id"]
    deadline = time.time() + 5
    while stack.runtime._instances["probe"].invocations == before and time.time() < deadline:
        time.sleep(0.02)
    assert stack.runtime._instances["probe"].invocations == before + 1


# --- 2023-03-30 (ACS3) ----------------------------------------------------------------------------------


def test_2023_invoke_signed_by_a_known_key(endpoint: str) -> None:
    reply = invoke_2023(endpoint, "probe", b'{"n": 1}')
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"])["event"] == {"n": 1}


def test_2023_invoke_signed_by_an_unknown_key_is_refused(endpoint: str, emulator: Emulator) -> None:
    with pytest.raises(Exception) as caught:
        invoke_2023(endpoint, "probe", b"{}", key_id="LTAI5tNobodyKnowsThisKey", secret="x")
    assert getattr(caught.value, "code", None) == "InvalidAccessKeyId.NotFound"
    assert getattr(caught.value, "status_code", None) == 403


def test_2023_invoke_with_a_wrong_secret_is_refused(endpoint: str) -> None:
    with pytest.raises(Exception) as caught:
        invoke_2023(endpoint, "probe", b"{}", secret="wrong")
    assert getattr(caught.value, "code", None) == "SignatureDoesNotMatch"
    assert getattr(caught.value, "status_code", None) == 403


def test_2023_invoke_of_a_missing_function(endpoint: str) -> None:
    with pytest.raises(Exception) as caught:
        invoke_2023(endpoint, "ghost", b"{}")
    assert getattr(caught.value, "code", None) == "FunctionNotFound"
    assert getattr(caught.value, "status_code", None) == 404


# --- warm instances and the environment ----------------------------------------------------------------


def test_one_warm_instance_per_function_and_per_runtime(
    endpoint: str, stack: LocalStack, project: Any, emulator_server: Any, tmp_path: Any
) -> None:
    client = fc2_client(endpoint)
    counts = [
        json.loads(client.invoke_function("ramflow", "probe", payload=b"{}").data)["calls"] for _ in range(3)
    ]
    other = json.loads(client.invoke_function("ramflow", "probe-py310", payload=b"{}").data)["calls"]
    assert counts == [1, 2, 3] and other == 1

    with project_stack(stack.config, emulator_server, project, tmp_path) as second:
        assert second.runtime is not None
        fresh = json.loads(
            fc2_client(second.runtime.endpoint).invoke_function("ramflow", "probe", payload=b"{}").data
        )
        assert fresh["calls"] == 1


def test_environment_is_restored_on_stop(
    emulator_server: Any, project: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from local.seed import DevConfig

    monkeypatch.delenv("PROBE_PLAIN", raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "caller-own-key")
    with project_stack(DevConfig.load(), emulator_server, project, tmp_path) as running:
        assert running.runtime is not None
        reply = fc2_client(running.runtime.endpoint).invoke_function("ramflow", "probe", payload=b"{}")
        assert os.environ["PROBE_PLAIN"] == "hello-cn-hangzhou"
        # Each function's instance sees its own role's session; the hosting process keeps its own.
        assert json.loads(reply.data)["env_key"].startswith("STS.")
        assert os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "caller-own-key"
    assert "PROBE_PLAIN" not in os.environ
    assert os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "caller-own-key"


def test_index_lists_the_endpoints(endpoint: str) -> None:
    index = requests.get(endpoint + "/", timeout=10).json()
    assert index["http_triggers"] == {"boom": f"{endpoint}/boom/", "probe": f"{endpoint}/probe/"}
    assert index["functions"]["ghost"] is False and index["functions"]["probe"] is True


def test_an_issued_session_past_its_expiry_or_with_a_non_ascii_token_is_refused() -> None:
    from local.fcruntime.signing import IssuedSession, StaticKeys
    from shared.errors import InvokeDenied

    now = [1000.0]
    session = IssuedSession("STS.k", "s", "token", "acs:ram::1:role/r", expires_at=1060.0, may_invoke=("f",))
    keys = StaticKeys({}, "1", sessions=lambda: [session], clock=lambda: now[0])
    assert keys.secret("STS.k", "token")[0] == "s"
    with pytest.raises(InvokeDenied) as forged:
        keys.secret("STS.k", "tökén")
    assert forged.value.code == "InvalidSecurityToken.Mismatch"
    now[0] = 1060.0
    with pytest.raises(InvokeDenied) as late:
        keys.secret("STS.k", "token")
    assert late.value.code == "InvalidSecurityToken.Expired"
