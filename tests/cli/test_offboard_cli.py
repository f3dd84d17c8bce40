"""`ramflow offboard` and `ramflow reconcile` against the emulator on loopback, credentials from env."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from local.cli import app
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients
from shared.config import Settings
from tests.flows.test_offboard_world import TEMPLATE, World, make_world

READ_ONLY = ("Get", "List")
OWNER = "dana@example.com"


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings, monkeypatch) -> World:
    for var in ("RAMFLOW_CLOUD_ENDPOINT", "RAMFLOW_RECONCILE_REMEDIATE", "RAMFLOW_ACCOUNT_ALIAS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAMFLOW_STORE", cloud_settings.store)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    world = make_world(emulator, root_clients, cloud_settings)
    for i in range(3):
        world.provision(f"dana{i}", OWNER, ticket=f"T-D{i}", grants=[TEMPLATE])
        world.add_to_group(f"dana{i}", "ops")
    world.add_key("dana0")  # by hand
    return world


def ramflow(server: EmulatorServer, *args: str, stdout: bool = False) -> tuple[int, str]:
    """Exit code and output (stdout only when asked: progress bars go to stderr)."""
    result = CliRunner().invoke(app, [*args, "--cloud", server.endpoint])
    return result.exit_code, result.stdout if stdout else result.output


def test_a_dry_run_prints_the_plan_and_calls_only_read_apis(
    world: World, emulator_server: EmulatorServer
) -> None:
    before = {f"dana{i}": world.holds(f"dana{i}") for i in range(3)}
    seq = world.emulator.recorder.last_seq

    code, output = ramflow(emulator_server, "offboard", "--owner", OWNER, "--dry-run")

    assert code == 0, output
    calls = world.emulator.recorder.since(seq)
    assert calls and all(c.action.startswith(READ_ONLY) for c in calls), {c.action for c in calls}
    assert {f"dana{i}": world.holds(f"dana{i}") for i in range(3)} == before
    ledger = world.runtime().store.ledger
    assert (
        ledger.get_intent("offboard/dana0") is None
        and ledger.due_deletions(world.clock() + timedelta(days=3650)) == []
    )
    assert "dry run" in output and "Calls a real run would make" in output
    for expected in (
        "DeleteAccessKey",
        "DetachPolicyFromUser",
        "RemoveUserFromGroup",
        "DeleteUser",
        "DeletePolicy",
    ):
        assert expected in output
    assert "3 planned" in output and output.count("DeletePolicy") == 1  # one shared policy


def test_offboarding_an_owner_deletes_every_user_and_summarises(
    world: World, emulator_server: EmulatorServer
) -> None:
    code, output = ramflow(emulator_server, "offboard", "--owner", OWNER)
    assert code == 0, output
    assert all(world.holds(f"dana{i}") is None for i in range(3))
    assert "3 deleted" in output and "cloud calls" in output
    code, again = ramflow(emulator_server, "offboard", "--owner", OWNER, "--json", stdout=True)
    assert code == 0 and json.loads(again)["status"] == "completed"


def test_one_user_with_grace_is_disabled_and_reconcile_reports(
    world: World, emulator_server: EmulatorServer
) -> None:
    code, output = ramflow(emulator_server, "offboard", "--user", "dana1", "--grace", "P7D")
    assert code == 0, output
    held = world.holds("dana1")
    assert held is not None and held["groups"] == [] and set(held["keys"].values()) == {"Inactive"}
    assert "1 disabled" in output

    seq = world.emulator.recorder.last_seq
    code, output = ramflow(emulator_server, "reconcile", "--dry-run", "--remediate")
    assert code == 0, output
    assert all(c.action.startswith(READ_ONLY) for c in world.emulator.recorder.since(seq))
    assert "extra_group" in output and "planned" in output  # dana0 and dana2 are in a group by hand
    assert world.holds("dana0")["groups"] == ["ops"]

    code, output = ramflow(emulator_server, "reconcile", "--remediate")
    assert code == 0, output
    assert world.holds("dana0")["groups"] == [] and world.holds("dana2")["groups"] == []


def test_bad_arguments_and_missing_credentials_are_clear_errors(
    world: World, emulator_server: EmulatorServer, monkeypatch
) -> None:
    code, output = ramflow(emulator_server, "offboard", "--owner", OWNER, "--user", "dana0")
    assert code == 1 and "exactly one" in output
    code, output = ramflow(emulator_server, "offboard", "--user", "dana0", "--grace", "P1M")
    assert code == 1 and "grace" in output
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    seq = world.emulator.recorder.last_seq
    code, output = ramflow(emulator_server, "offboard", "--user", "dana0")
    assert code == 1 and "credentials" in output and DEFAULT_ROOT_KEY_SECRET not in output
    assert world.emulator.recorder.since(seq) == []
