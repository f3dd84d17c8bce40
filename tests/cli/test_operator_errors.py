"""The CLI and a user's mistakes: one line naming the flag, the value and the fix, a non-zero exit,
never a traceback; and the credentials, store and endpoint an operator expects."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from local.cli import app
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from local.seed import DevConfig, seed_resource_groups
from local.testing import REPO, serve_process
from shared.config import Settings

EVENTS = REPO / "events"
CREDENTIAL_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials, a private store, and a HOME without `aliyun` CLI profiles."""
    for var in (*CREDENTIAL_VARS, "RAMFLOW_CLOUD_ENDPOINT", "RAMFLOW_PROFILE", "RAMFLOW_ACCOUNT_ALIAS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAMFLOW_STORE", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("RAMFLOW_MAX_ATTEMPTS", "1")
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """A child's environment with no credentials and no ECS metadata service to ask."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS and not k.startswith("RAMFLOW_")}
    env.update(HOME=str(home), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", RAMFLOW_RATE_LIMIT_QPS="1000")
    env.update(extra)
    return env


def ramflow_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", "from local.cli import app; app()", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


# --- ports, configuration and endpoints ------------------------------------------------------------


def test_emulator_on_a_port_in_use_names_the_port(busy_port: int) -> None:
    code, output = run("emulator", "--port", str(busy_port))
    assert code == 1
    assert f"--port {busy_port}" in output and "already in use" in output and "0 for a free one" in output


@pytest.mark.parametrize("flag", ["--port", "--emulator-port"])
def test_serve_on_a_port_in_use_names_the_flag(busy_port: int, flag: str) -> None:
    other = "--emulator-port" if flag == "--port" else "--port"
    code, output = run("serve", flag, str(busy_port), other, "0")
    assert code == 1
    assert f"{flag} {busy_port}" in output and "already in use" in output


@pytest.mark.parametrize("content", [None, "account: [unclosed\n", "account: {id: x}\n"])
def test_serve_with_a_bad_config_names_the_file(tmp_path: Path, content: str | None) -> None:
    config = tmp_path / "local.yaml"
    if content is not None:
        config.write_text(content)
    code, output = run("serve", "--port", "0", "--config", str(config))
    assert code == 1
    assert f"--config {config}" in output and "omit --config" in output


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0"],
        ["invoke", "user-requested", "--event", str(EVENTS / "user-requested-console.json")],
        ["offboard", "--owner", "x@example.com", "--dry-run"],
        ["reconcile", "--dry-run"],
    ],
)
def test_a_cloud_endpoint_without_a_scheme_says_how_to_write_it(command: list[str], clean_env: Path) -> None:
    code, output = run(*command, "--cloud", "127.0.0.1:8790")
    assert code == 1
    assert "--cloud '127.0.0.1:8790'" in output and "http://127.0.0.1:8790" in output
    assert "pydantic" not in output and "validation error" not in output


def test_an_unreachable_endpoint_is_named(
    clean_env: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-any")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "any")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        code, output = run("reconcile", "--dry-run", "--cloud", nobody)
        assert code == 2 and f"no answer from the cloud endpoint {nobody}" in output

        # a request's references are read in the cloud before it is recorded
        code, output = run(
            "invoke",
            "user-requested",
            "--event",
            str(EVENTS / "user-requested-console.json"),
            "--cloud",
            nobody,
        )
        assert code == 2 and f"no answer from the cloud endpoint {nobody}" in output


def test_serve_against_an_endpoint_that_does_not_answer_says_so(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
        done = ramflow_process("serve", "--port", "0", "--cloud", nobody, env=subprocess_env(tmp_path))
    assert done.returncode == 1
    assert f"--cloud {nobody}" in done.stderr and "is it running?" in done.stderr


# --- offboarding: nothing matched, and the deployment's store ------------------------------------


def test_an_owner_nobody_has_is_an_error_not_nothing_to_do(
    clean_env: Path, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    for extra in ([], ["--dry-run"]):
        code, output = run(
            "offboard", "--owner", "alcie@example.com", "--cloud", emulator_server.endpoint, *extra
        )
        assert code == 1, output
        assert "--owner alcie@example.com" in output and "check the spelling" in output


def test_a_user_nobody_knows_is_an_error(
    clean_env: Path, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    for extra in ([], ["--dry-run"]):
        code, output = run("offboard", "--user", "alcie.kafka", "--cloud", emulator_server.endpoint, *extra)
        assert code == 1, output
        assert "--user alcie.kafka" in output and "check the spelling" in output


def test_offboard_with_grace_refuses_a_local_default_store_for_the_real_cloud(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAMFLOW_STORE")
    code, output = run("offboard", "--owner", "alice@example.com", "--grace", "P7D")
    assert code == 1
    assert "local default store" in output and "--profile" in output and "--store" in output
    code, output = run("reconcile")
    assert code == 1 and "local default store" in output


def test_a_profile_names_the_deployment_once(
    clean_env: Path, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    monkeypatch.delenv("RAMFLOW_STORE")
    profiles = clean_env / "profiles.yaml"
    store = f"sqlite:///{clean_env}/deployment.db"
    profiles.write_text(
        json.dumps({"profiles": {"staging": {"store": store, "endpoint": emulator_server.endpoint}}})
    )
    monkeypatch.setenv("RAMFLOW_PROFILES", str(profiles))
    seq = emulator_server.emulator.recorder.last_seq

    code, output = run("reconcile", "--profile", "staging", "--json")

    assert code == 0, output
    assert emulator_server.emulator.recorder.since(seq), "the profile's endpoint was called"
    assert (clean_env / "deployment.db").is_file(), "the profile's store was used"
    code, output = run("reconcile", "--profile", "prod")
    assert code == 1 and "--profile prod" in output and "staging" in output


# --- credentials: the default chain, and none needed where no API is called ----------------------


def test_credentials_come_from_the_aliyun_cli_profile(
    tmp_path: Path, emulator_server: EmulatorServer
) -> None:
    """No ALIBABA_CLOUD_* variables: the key is read from ~/.aliyun/config.json by the default chain."""
    emulator = emulator_server.emulator
    key_id, secret = "LTAI5tOperatorProfileKey", "operator-profile-secret-0001"
    emulator.account.root_keys.pop(DEFAULT_ROOT_KEY_ID)  # only the profile's key signs now
    emulator.account.root_keys[key_id] = secret
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(
        json.dumps(
            {
                "current": "ops",
                "profiles": [
                    {
                        "name": "ops",
                        "mode": "AK",
                        "access_key_id": key_id,
                        "access_key_secret": secret,
                        "region_id": "cn-hangzhou",
                    }
                ],
            }
        )
    )
    seq = emulator.recorder.last_seq
    done = ramflow_process(
        "reconcile",
        "--dry-run",
        "--cloud",
        emulator_server.endpoint,
        "--json",
        env=subprocess_env(tmp_path, RAMFLOW_STORE=f"sqlite:///{tmp_path}/state.db"),
    )
    assert done.returncode == 0, done.stderr
    calls = emulator.recorder.since(seq)
    assert calls and all(c.outcome == "OK" for c in calls), {c.outcome for c in calls}
    assert secret not in done.stdout + done.stderr


def test_a_request_without_credentials_says_how_to_give_them(tmp_path: Path) -> None:
    """A request's resource groups and policies are read in the cloud before it is recorded."""
    env = subprocess_env(tmp_path, RAMFLOW_STORE=f"sqlite:///{tmp_path}/state.db")
    done = ramflow_process(
        "invoke", "user-requested", "--event", str(EVENTS / "user-requested-console.json"), env=env
    )
    assert done.returncode == 1 and "no credentials" in done.stderr and "aliyun configure" in done.stderr


# --- the local set-up as the README writes it ------------------------------------------------------


def test_the_sample_events_complete_as_they_are(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ramflow emulator` creates the resource groups events/ names; the events run unmodified."""
    emulator = Emulator()
    assert seed_resource_groups(DevConfig.load(), emulator=emulator) == []
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    with EmulatorServer(emulator) as server:
        for function, sample in (
            ("user-requested", "user-requested-console.json"),
            ("access-approved", "access-approved.json"),
            ("user-requested", "user-requested-programmatic.json"),
            ("access-approved", "access-approved-programmatic.json"),
        ):
            code, output = run(
                "invoke", function, "--event", str(EVENTS / sample), "--cloud", server.endpoint
            )
            assert code == 0, output
            expected = "completed" if function == "access-approved" else "pending_approval"
            assert json.loads(output)["status"] == expected, output
    scopes = {scope for user in emulator.account.ram.users.values() for _t, _n, scope in user.policies}
    assert {"rg-aek2xl5qw", "rg-acfm3orders"} <= scopes


def test_serve_and_invoke_share_one_local_store_by_default(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path, RAMFLOW_STORE="")
    with serve_process(env=env) as served:
        assert f"state store: {Settings().store}" in served.startup


def test_a_ticket_requested_with_invoke_is_approved_through_serve(tmp_path: Path) -> None:
    """The README's webhook flow: the request recorded by `ramflow invoke`, the approval delivered to
    `ramflow serve`'s webhook-ingress; one store, so the ticket is found and carried out."""
    from shared.webhooks import DEV_SECRET, signed_headers

    env = subprocess_env(tmp_path, RAMFLOW_STORE=f"sqlite:///{tmp_path}/shared.db")
    with serve_process(env=env) as served:
        cloud = re.search(r"\(embedded emulator (http://[^ )]+)\)", served.startup)
        assert cloud, served.startup
        credentials = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
        }
        done = ramflow_process(
            "invoke",
            "user-requested",
            "--event",
            str(EVENTS / "user-requested-console.json"),
            "--cloud",
            cloud.group(1),
            env={**env, **credentials},
        )
        assert done.returncode == 0, done.stderr
        body = (EVENTS / "access-approved.json").read_bytes()
        headers = {
            **signed_headers(DEV_SECRET, "msg_1", body),
            "Content-Type": "application/cloudevents+json",
        }
        reply = requests.post(f"{served.endpoint}/webhook-ingress/", data=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "completed"


@pytest.mark.slow
def test_serve_against_a_running_emulator_seeds_what_it_needs(
    tmp_path: Path, emulator_server: EmulatorServer
) -> None:
    """`serve --cloud` without --seed: its own printed curl hint answers 200, not 500; what the seed
    cannot create over the API (resource groups with the sample events' ids) is named."""
    env = subprocess_env(tmp_path, RAMFLOW_DEV_MODE="1")
    with serve_process("--cloud", emulator_server.endpoint, env=env) as served:
        assert "missing: resource groups rg-aek2xl5qw, rg-acfm3orders" in served.startup
    seed_resource_groups(DevConfig.load(), emulator=emulator_server.emulator)  # as `ramflow emulator` does
    with serve_process("--cloud", emulator_server.endpoint, env=env) as served:
        token = CliRunner().invoke(app, ["dev-token", "--sub", "demo-app"]).output.strip()
        reply = requests.get(f"{served.endpoint}/token-vendor/", params={"token": token}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert "missing:" not in served.startup


def test_serve_without_seeding_says_what_is_missing(tmp_path: Path, emulator_server: EmulatorServer) -> None:
    with serve_process(
        "--cloud", emulator_server.endpoint, "--no-seed", env=subprocess_env(tmp_path)
    ) as served:
        assert "missing: credentials for the functions" in served.startup
