"""The emulator's transport, authentication and fault controls, through the official SDK."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from local.emulator.auth import canonical_request, sign
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials


def test_root_key_is_accepted_over_loopback(root_clients: CloudClients) -> None:
    body = root_clients.sts.get_caller_identity().body
    assert body.identity_type == "Account"
    assert body.arn == f"acs:ram::{body.account_id}:root"


def test_in_process_transport_uses_the_same_backend(mocked_cloud) -> None:
    emulator, clients = mocked_cloud
    assert clients.ram.get_account_alias().body.account_alias == emulator.account.alias
    assert emulator.recorder.actions() == ["GetAccountAlias"]


def test_wrong_secret_is_signature_mismatch(root_clients: CloudClients) -> None:
    bad = CloudClients(root_clients.settings, CloudCredentials(DEFAULT_ROOT_KEY_ID, "not-the-secret"))
    with pytest.raises(ClientException) as info:
        bad.ram.get_account_alias()
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status_code == 400


def unknown_key_refusal(root_clients: CloudClients) -> ClientException:
    bad = CloudClients(root_clients.settings, CloudCredentials("LTAI5tNobodyHasThisKey", "x"))
    with pytest.raises(ClientException) as info:
        bad.sts.get_caller_identity()
    return info.value


def test_unknown_key_is_not_found(root_clients: CloudClients) -> None:
    refusal = unknown_key_refusal(root_clients)
    assert refusal.code == "InvalidAccessKeyId.NotFound"
    assert refusal.status_code == 404


def test_error_body_has_the_cloud_fields(root_clients: CloudClients) -> None:
    refusal = unknown_key_refusal(root_clients)
    assert set(refusal.data) - {"statusCode"} == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert refusal.data["HostId"] == "sts.aliyuncs.com"


def signed_headers(
    server: EmulatorServer,
    *,
    action: str = "GetAccountAlias",
    version: str = "2015-05-01",
    when: datetime | None = None,
    body: bytes = b"",
) -> dict[str, str]:
    """ACS3 headers for a POST / signed by hand with the default root key, as the SDK would sign it."""
    headers = {
        "host": f"127.0.0.1:{server.port}",
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    names = tuple(sorted(headers))
    signature = sign(
        DEFAULT_ROOT_KEY_SECRET,
        canonical_request("POST", "/", {}, headers, names, headers["x-acs-content-sha256"]),
    )
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={DEFAULT_ROOT_KEY_ID},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )
    return headers


def post(server: EmulatorServer, headers: dict[str, str], body: bytes = b"") -> requests.Response:
    return requests.post(f"{server.endpoint}/", headers=headers, data=body, timeout=5)


def test_hand_signed_request_is_accepted(emulator: Emulator, emulator_server: EmulatorServer) -> None:
    reply = post(emulator_server, signed_headers(emulator_server))
    assert reply.status_code == 200
    assert reply.json()["AccountAlias"] == emulator.account.alias


def test_tampered_signature_is_refused(emulator_server: EmulatorServer) -> None:
    headers = signed_headers(emulator_server)
    head, good = headers["Authorization"].rsplit("=", 1)
    headers["Authorization"] = f"{head}={'0' if good[0] != '0' else '1'}{good[1:]}"
    reply = post(emulator_server, headers)
    assert reply.status_code == 400
    assert reply.json()["Code"] == "SignatureDoesNotMatch"


def test_stale_timestamp_is_expired(emulator_server: EmulatorServer) -> None:
    stale = datetime.now(timezone.utc) - timedelta(minutes=20)
    reply = post(emulator_server, signed_headers(emulator_server, when=stale))
    assert reply.status_code == 400
    assert reply.json()["Code"] == "InvalidTimeStamp.Expired"


def test_replayed_nonce_is_refused(emulator_server: EmulatorServer) -> None:
    headers = signed_headers(emulator_server)
    assert post(emulator_server, headers).status_code == 200
    replay = post(emulator_server, headers)
    assert replay.status_code == 400
    assert replay.json()["Code"] == "SignatureNonceUsed"


def test_unknown_action_is_not_found(emulator_server: EmulatorServer) -> None:
    reply = post(emulator_server, signed_headers(emulator_server, action="GetNothingAtAll"))
    assert reply.status_code == 404
    assert reply.json()["Code"] == "InvalidAction.NotFound"


def test_unknown_version_is_invalid(emulator_server: EmulatorServer) -> None:
    reply = post(emulator_server, signed_headers(emulator_server, version="2000-01-01"))
    assert reply.status_code == 400
    assert reply.json()["Code"] == "InvalidVersion"


@pytest.mark.parametrize(
    "authorization",
    [
        "ACS3-HMAC-SHA256 not-a-credential",
        f"ACS3-HMAC-SM3 Credential={DEFAULT_ROOT_KEY_ID},SignedHeaders=host,Signature=00ff",
    ],
    ids=["garbled", "other-algorithm"],
)
def test_malformed_authorization_is_refused(emulator_server: EmulatorServer, authorization: str) -> None:
    headers = {**signed_headers(emulator_server), "Authorization": authorization}
    reply = post(emulator_server, headers)
    assert reply.status_code == 400
    assert reply.json()["Code"] == "InvalidAuthorization"


def test_body_that_differs_from_its_hash_is_refused(emulator_server: EmulatorServer) -> None:
    headers = signed_headers(emulator_server, body=b"")
    reply = post(emulator_server, headers, body=b"AccountAlias=swapped-in-transit")
    assert reply.status_code == 400
    assert reply.json()["Code"] == "ContentSHA256NotMatched"


def test_qps_limit_answers_throttling(emulator, root_clients: CloudClients) -> None:
    emulator.faults.set_qps(2, start_full=True)
    codes = []
    for _ in range(6):
        try:
            root_clients.ram.get_account_alias()
            codes.append("OK")
        except ClientException as exc:
            codes.append(exc.code)
    assert codes[:2] == ["OK", "OK"]
    assert "Throttling.User" in codes[2:]


def test_a_qps_limit_can_start_with_an_empty_bucket(emulator, root_clients: CloudClients) -> None:
    emulator.faults.set_qps(
        0.05, start_full=False
    )  # one token every 20 s: a slow machine still sees it empty
    with pytest.raises(ClientException) as info:
        root_clients.ram.get_account_alias()
    assert info.value.code == "Throttling.User"
    emulator.faults.set_qps(None, start_full=False)
    root_clients.ram.get_account_alias()  # no limit any more


def test_fail_nth_call_after_effect(emulator, root_clients: CloudClients) -> None:
    emulator.faults.fail_nth_call(2, when="after")
    root_clients.ram.get_account_alias()
    with pytest.raises(ServerException) as info:
        root_clients.sts.get_caller_identity()
    assert info.value.code == "InternalError"
    root_clients.sts.get_caller_identity()  # disarmed after firing
    assert [c.outcome for c in emulator.recorder.calls] == ["OK", "InternalError", "OK"]


def test_random_fault_rate_gives_5xx(emulator, root_clients: CloudClients) -> None:
    emulator.faults.fault_rate = 1.0
    with pytest.raises(ServerException) as info:
        root_clients.ram.get_account_alias()
    assert info.value.status_code == 503
    assert info.value.code == "ServiceUnavailable"


def test_a_share_of_random_faults_strikes_after_the_call_took_effect(
    emulator, root_clients: CloudClients
) -> None:
    emulator.faults.fault_rate, emulator.faults.lost_reply_share = 1.0, 1.0
    with pytest.raises(ServerException) as info:
        root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="lost.reply"))
    assert (info.value.status_code, info.value.code) == (500, "InternalError")
    assert "lost.reply" in emulator.account.ram.users  # the call took effect; its reply was lost
    emulator.faults.clear()
    assert emulator.faults.lost_reply_share == 0.0


def test_latency_is_injected(emulator, root_clients: CloudClients) -> None:
    emulator.faults.latency_ms = 50
    root_clients.ram.get_account_alias()
    call = emulator.recorder.calls[-1]
    assert call.finished - call.started >= 0.05
