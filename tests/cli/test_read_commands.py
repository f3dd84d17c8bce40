"""`ramflow tickets` and `ramflow users` over a ledger the functions wrote (sample events, emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from local.cli import app
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.emulator.server import EmulatorServer
from local.invoke import invoke
from local.seed import DevConfig, seed_resource_groups
from local.testing import REPO

EVENTS = REPO / "events"


@pytest.fixture
def ledger(emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ITSM-1042 (alice.kafka, console) approved; ITSM-1043 (orders-etl) still pending."""
    seed_resource_groups(DevConfig.load(), emulator=emulator_server.emulator)
    store = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", emulator_server.endpoint)
    monkeypatch.setenv("RAMFLOW_STORE", store)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    for sample in ("user-requested-console.json", "user-requested-programmatic.json"):
        assert invoke("user-requested", (EVENTS / sample).read_bytes())["status"] == "pending_approval"
    assert invoke("access-approved", (EVENTS / "access-approved.json").read_bytes())["status"] == "completed"
    monkeypatch.delenv("RAMFLOW_STORE")  # the commands get it from --store, as an operator names it
    return store


def ramflow(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_tickets_lists_and_filters(ledger: str) -> None:
    code, out, _ = ramflow("tickets", "--store", ledger, "--json")
    assert code == 0
    by_id = {t["ticket_id"]: t for t in json.loads(out)}
    assert by_id["ITSM-1042"]["status"] == "approved" or by_id["ITSM-1042"]["status"] == "completed"
    assert by_id["ITSM-1042"]["approvers"] == ["dave@example.com"] and by_id["ITSM-1042"]["approved_at"]
    assert by_id["ITSM-1043"]["status"] == "pending_approval" and by_id["ITSM-1043"]["approvers"] == []

    code, out, _ = ramflow("tickets", "--store", ledger, "--status", "pending_approval", "--json")
    assert code == 0 and [t["ticket_id"] for t in json.loads(out)] == ["ITSM-1043"]
    code, out, _ = ramflow("tickets", "--store", ledger, "--owner", "ALICE@example.com", "--json")
    assert code == 0 and [t["ticket_id"] for t in json.loads(out)] == ["ITSM-1042"]
    code, out, _ = ramflow("tickets", "--store", ledger, "--expiring-within", "P31D", "--json")
    assert code == 0 and [t["ticket_id"] for t in json.loads(out)] == ["ITSM-1042"]  # P30D grants

    code, out, err = ramflow("tickets", "--store", ledger, "--expiring-within", "P7D", "--json")
    assert code == 1 and json.loads(out) == [] and "no ticket matches --expiring-within P7D" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "pending"], "--status 'pending': not a ticket status; use one of pending_approval"),
        (["--expiring-within", "7 days"], "--expiring-within '7 days'"),
        (["--owner", "alcie@example.com"], "no ticket matches --owner alcie@example.com"),
    ],
)
def test_tickets_refuses_mistakes_plainly(ledger: str, args: list[str], expected: str) -> None:
    code, _, err = ramflow("tickets", "--store", ledger, *args)
    assert code == 1 and expected in err


def test_users_shows_owner_grants_scope_expiry_mode_and_last_change(ledger: str) -> None:
    code, out, _ = ramflow("users", "alice.kafka", "--store", ledger, "--json")
    assert code == 0
    [user] = json.loads(out)
    assert (user["owner"], user["access_mode"], user["status"]) == ("alice@example.com", "console", "active")
    assert user["last_change"] and user["tickets"] == ["ITSM-1042"]
    scopes = {(g["policy_name"], g["scope"]) for g in user["grants"]}
    assert ("AliyunKafkaReadOnlyAccess", "rg-aek2xl5qw") in scopes
    assert any(
        name.startswith("ramflow-kafka-instance-operator-") and scope == "account" for name, scope in scopes
    )
    assert all(g["expires_at"] and g["approvers"] == ["dave@example.com"] for g in user["grants"])
    assert user["findings"] == []

    code, out, _ = ramflow("users", "--store", ledger)
    assert code == 0 and "alice.kafka" in out and "rg-aek2xl5qw" in out

    code, _, err = ramflow("users", "alice.kafak", "--store", ledger)
    assert code == 1 and "'alice.kafak': no managed RAM user" in err


def test_reading_without_a_named_store_says_which_store_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAMFLOW_STORE", raising=False)
    monkeypatch.delenv("RAMFLOW_PROFILE", raising=False)
    code, _, err = ramflow("tickets", "--status", "revoked", "--json")
    assert "reading the local store" in err and "--profile" in err


def test_a_store_that_does_not_answer_is_named_without_its_password() -> None:
    import socket

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        code, out, err = ramflow("tickets", "--store", f"redis://:hunter2@127.0.0.1:{port}/0")
    assert code == 1
    assert f"the store redis://127.0.0.1:{port}/0 did not answer" in err
    assert "hunter2" not in out + err
