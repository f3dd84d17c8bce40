"""The emulator's transport, authentication and fault controls, through the official SDK."""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from local.emulator.core import DEFAULT_ROOT_KEY_ID
from shared.cloud.clients import CloudClients, CloudCredentials


def test_root_key_is_accepted_over_loopback(root_clients: CloudClients) -> None:
    body = root_clients.sts.get_caller_identity().body
    assert body.identity_type == "Account"
    assert body.arn == f"acs:ram::{body.account_id}:root"


def test_in_process_transport_uses_the_same_backend(mocked_cloud) -> None:  # type: ignore[no-untyped-def]
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


def test_tampered_signature_is_refused(emulator, emulator_server) -> None:  # type: ignore[no-untyped-def]
    import requests

    from local.emulator.auth import canonical_request, sign

    headers = {
        "host": f"127.0.0.1:{emulator_server.port}",
        "x-acs-action": "GetAccountAlias",
        "x-acs-version": "2015-05-01",
        "x-acs-date": "2026-01-01T00:00:00Z",
        "x-acs-signature-nonce": "n1",
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    signed = tuple(sorted(headers))
    good = sign(
        "ramflow-emulator-root-secret-0001",
        canonical_request("POST", "/", {}, headers, signed, headers["x-acs-content-sha256"]),
    )
    tampered = ("0" if good[0] != "0" else "1") + good[1:]
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={DEFAULT_ROOT_KEY_ID},"
        f"SignedHeaders={';'.join(signed)},Signature={tampered}"
    )
    reply = requests.post(f"{emulator_server.endpoint}/", headers=headers, timeout=5)
    assert reply.status_code == 400
    assert reply.json()["Code"] == "SignatureDoesNotMatch"


def test_qps_limit_answers_throttling(emulator, root_clients: CloudClients) -> None:  # type: ignore[no-untyped-def]
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


def test_a_qps_limit_can_start_with_an_empty_bucket(emulator, root_clients: CloudClients) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.set_qps(2, start_full=False)
    with pytest.raises(ClientException) as info:
        root_clients.ram.get_account_alias()
    assert info.value.code == "Throttling.User"
    emulator.faults.set_qps(None, start_full=False)
    root_clients.ram.get_account_alias()  # no limit any more


def test_fail_nth_call_after_effect(emulator, root_clients: CloudClients) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.fail_nth_call(2, when="after")
    root_clients.ram.get_account_alias()
    with pytest.raises(ServerException) as info:
        root_clients.sts.get_caller_identity()
    assert info.value.code == "InternalError"
    root_clients.sts.get_caller_identity()  # disarmed after firing
    assert [c.outcome for c in emulator.recorder.calls] == ["OK", "InternalError", "OK"]


def test_random_fault_rate_gives_5xx(emulator, root_clients: CloudClients) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.fault_rate = 1.0
    with pytest.raises(ServerException) as info:
        root_clients.ram.get_account_alias()
    assert info.value.status_code == 503
    assert info.value.code == "ServiceUnavailable"


def test_latency_is_injected(emulator, root_clients: CloudClients) -> None:  # type: ignore[no-untyped-def]
    emulator.faults.latency_ms = 50
    root_clients.ram.get_account_alias()
    call = emulator.recorder.calls[-1]
    assert call.finished - call.started >= 0.05
