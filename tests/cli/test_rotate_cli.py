"""`ramflow rotate` and `ramflow reconcile` drive a rotation end to end against the emulator on
loopback, with the clock moved through the emulator's HTTP control surface."""

from __future__ import annotations

import json

import pytest
import requests
from typer.testing import CliRunner

from local.cli import app
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.runtime import use_clock
from shared.sealing import generate_keypair, open_sealed
from tests.flows.test_offboard_world import World, make_world

USER = "orders-etl"


@pytest.fixture
def world(emulator_server: EmulatorServer, root_clients, cloud_settings, monkeypatch):
    for var in ("RAMFLOW_CLOUD_ENDPOINT", "RAMFLOW_RECONCILE_REMEDIATE", "RAMFLOW_ACCOUNT_ALIAS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAMFLOW_STORE", cloud_settings.store)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    monkeypatch.setenv("RAMFLOW_KEY_ROTATION_OVERLAP", "P2D")
    monkeypatch.setenv("RAMFLOW_KEY_ROTATION_DELETE_AFTER", "P1D")
    previous = use_clock(emulator_server.emulator.clock)  # the CLI's flows read the emulator's clock
    world = make_world(emulator_server.emulator, root_clients, cloud_settings)
    world.private_key, world.public_key = generate_keypair()  # type: ignore[attr-defined]
    world.provision(USER, "etl@example.com")
    yield world
    use_clock(previous)


def ramflow(
    server: EmulatorServer, *args: str, cloud: bool = True, store: str | None = None
) -> tuple[int, str]:
    extra = ["--cloud", server.endpoint] if cloud else []
    extra += ["--store", store] if store else []
    result = CliRunner().invoke(app, [*args, *extra])
    return result.exit_code, result.stdout


def advance(server: EmulatorServer, duration: str) -> None:
    requests.post(
        f"{server.endpoint}/emulator-api/clock/advance", json={"duration": duration}, timeout=5
    ).raise_for_status()


def test_rotate_then_reconcile_passes_finish_the_rotation(
    world: World, emulator_server: EmulatorServer
) -> None:
    code, out = ramflow(
        emulator_server, "rotate", "--user", USER, "--json", "--requested-by", "sec@example.com"
    )
    assert code == 0, out
    reply = json.loads(out)
    new_id, sealed = reply["credential"]["access_key_id"], reply["credential"]["sealed_secret"]
    assert reply["plan"]["rotation"]["state"] == "delivered"
    secret = open_sealed(world.private_key, sealed)  # type: ignore[attr-defined]
    assert secret not in out
    new = CloudClients(world.clients.settings, CloudCredentials(new_id, secret))
    new.sts.get_caller_identity()  # the owner switches to the new key

    advance(emulator_server, "P2DT1H")
    code, out = ramflow(emulator_server, "reconcile", "--json")
    assert json.loads(out)["plan"]["rotations"][USER]["state"] == "deactivated", out
    code, out = ramflow(emulator_server, "reconcile")  # the tables
    assert "AccessKey rotations" in out and "deactivated" in out, out
    advance(emulator_server, "P1DT1H")
    code, out = ramflow(emulator_server, "reconcile", "--json")
    assert json.loads(out)["plan"]["rotations"][USER]["state"] == "completed", out
    assert {k: v.status for k, v in world.ram.users[USER].access_keys.items()} == {new_id: "Active"}


def test_rotate_refuses_bad_input_without_a_cloud_call(world: World, emulator_server: EmulatorServer) -> None:
    seq = world.emulator.recorder.last_seq
    code, out = ramflow(emulator_server, "rotate", "--user", "bad name!", "--json")
    assert code == 1
    code, out = ramflow(emulator_server, "rotate", "--user", USER, "--public-key", "not-a-key", "--json")
    assert code == 1
    code, out = ramflow(emulator_server, "rotate", "--user", "nobody", "--json")
    assert code == 1 and json.loads(out)["errors"][0]["field"] == "data.user_name"
    assert world.emulator.recorder.since(seq) == []


def test_findings_reach_ramflow_users_and_the_access_review(
    world: World, emulator_server: EmulatorServer, monkeypatch
) -> None:
    monkeypatch.setenv("RAMFLOW_KEY_MAX_AGE_DAYS", "10")
    store = world.settings.store
    code, out = ramflow(emulator_server, "users", USER, "--json", cloud=False, store=store)
    assert json.loads(out)[0]["findings"] == []  # no reconcile pass has looked yet

    advance(emulator_server, "P11D")
    code, out = ramflow(emulator_server, "reconcile", "--json")
    key_id = json.loads(out)["plan"]["findings"][0]["access_key_id"]
    code, out = ramflow(emulator_server, "users", USER, "--json", cloud=False, store=store)
    findings = json.loads(out)[0]["findings"]
    assert [(f["kind"], f["severity"]) for f in findings] == [
        ("ram-user-ak-create-date-expired-check", "high")
    ]
    assert key_id in findings[0]["detail"] and findings[0]["source"].startswith("reconcile ")

    code, out = ramflow(emulator_server, "report", "--format", "json", cloud=False, store=store)
    review = json.loads(out)
    [user] = [u for u in review["users"] if u["user_name"] == USER]
    assert [f["kind"] for f in user["findings"]] == ["ram-user-ak-create-date-expired-check"]
