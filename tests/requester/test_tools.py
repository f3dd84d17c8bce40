"""`ramflow keygen` and `ramflow unseal`: the requester makes a key, opens the reply, and the key works."""

from __future__ import annotations

import json
import stat

from local.shell import caller_identity_with_profile, ramflow
from shared.sealing import open_sealed, seal
from tests.flows.test_provision import approval, programmatic_request


def test_keygen_writes_a_0600_key_whose_public_half_is_printed(tmp_path) -> None:
    key = tmp_path / "me.key"
    made = ramflow("keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private = "".join(line for line in key.read_text().splitlines() if not line.startswith("#"))
    assert private not in made.stdout + made.stderr, "the private key is never printed"
    assert open_sealed(private, seal(public, "probe")) == "probe"

    again = ramflow("keygen", "--out", str(key))
    assert again.returncode == 1 and "exists" in again.stderr
    assert key.read_text().count(private) == 1, "an existing key is never replaced without --force"


def test_unseal_writes_a_profile_an_unmodified_sdk_client_authenticates_with(
    function_env, call, emulator_server, resource_group, tmp_path
) -> None:
    key = tmp_path / "requester.key"
    public = ramflow("keygen", "--out", str(key)).stdout.strip()
    call("user-requested", programmatic_request(public, resource_group))
    reply = call("access-approved", approval("ITSM-1043"))
    assert reply["status"] == "completed", reply
    reply_file = tmp_path / "reply.json"
    reply_file.write_text(json.dumps(reply))

    printed = ramflow("unseal", "--key", str(key), "--in", str(reply_file))
    assert printed.returncode == 0, printed.stderr
    secret = printed.stdout.strip()
    assert len(secret) >= 20 and secret not in reply_file.read_text()

    home = tmp_path / "home"
    home.mkdir()
    config = home / ".aliyun" / "config.json"
    config.parent.mkdir()
    config.write_text(
        json.dumps(
            {
                "current": "other",
                "profiles": [{"name": "other", "mode": "AK", "access_key_id": "x", "access_key_secret": "y"}],
            }
        )
    )
    written = ramflow(
        "unseal", "--key", str(key), "--profile", "orders", stdin=json.dumps(reply), env={"HOME": str(home)}
    )
    assert written.returncode == 0, written.stderr
    assert secret not in written.stdout + written.stderr, "with --profile the secret is only in the file"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    profiles = {p["name"]: p for p in json.loads(config.read_text())["profiles"]}
    assert set(profiles) == {"other", "orders"}, "other profiles are kept"

    identity = caller_identity_with_profile(home, "orders", emulator_server.endpoint)
    assert identity.returncode == 0, identity.stderr
    assert identity.stdout.strip().endswith(":user/orders-etl")
    assert secret not in identity.stdout + identity.stderr


def test_unseal_opens_a_result_event_and_a_console_password(tmp_path) -> None:
    key = tmp_path / "k"
    public = ramflow("keygen", "--out", str(key)).stdout.strip()
    credential = {
        "kind": "login_profile",
        "logon_principal": "alice.kafka@ramflow-demo.onaliyun.com",
        "sealed_password": seal(public, "Pa55-word!x"),
        "password_reset_required": True,
        "mfa_bind_required": True,
    }
    event = {
        "specversion": "1.0",
        "type": "ramflow.result.completed",
        "data": {"ticket_id": "T-1", "status": "completed", "credential": credential},
    }
    opened = ramflow("unseal", "--key", str(key), stdin=json.dumps(event))
    assert opened.returncode == 0 and opened.stdout.strip() == "Pa55-word!x"
    refused = ramflow(
        "unseal", "--key", str(key), "--profile", "p", stdin=json.dumps(event), env={"HOME": str(tmp_path)}
    )
    assert refused.returncode == 1 and "console password" in refused.stderr
    assert not (tmp_path / ".aliyun").exists()


def test_unseal_refuses_a_wrong_key_and_input_without_a_credential(tmp_path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    ramflow("keygen", "--out", str(mine))
    public = ramflow("keygen", "--out", str(theirs)).stdout.strip()
    reply = {
        "status": "completed",
        "credential": {
            "kind": "access_key",
            "access_key_id": "LTAI1",
            "sealed_secret": seal(public, "the-secret-value"),
        },
    }
    wrong = ramflow("unseal", "--key", str(mine), stdin=json.dumps(reply))
    assert wrong.returncode == 1 and "wrong private key" in wrong.stderr
    assert "the-secret-value" not in wrong.stdout + wrong.stderr
    empty = ramflow("unseal", "--key", str(mine), stdin=json.dumps({"status": "pending_approval"}))
    assert (
        empty.returncode == 1
        and "no sealed credential" in empty.stderr
        and "pending_approval" in empty.stderr
    )
