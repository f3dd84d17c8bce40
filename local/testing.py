"""pytest fixtures for the local cloud, loaded by tests/conftest.py as a plugin.

`emulator_server` is a real loopback socket: the official SDK clients reach it by endpoint
override, exactly as they reach the cloud. `mocked_cloud` is the same backend in-process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.inprocess import IN_PROCESS_ENDPOINT, mock_cloud
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings

ROOT_CREDENTIALS = CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)
REPO = Path(__file__).resolve().parents[1]


def emulator_for_tests() -> Emulator:
    """An emulator for tests: new resource groups are `OK` at once (the tests of the `Creating`
    phase, and of ramflow waiting it out, set `resource_group_ready_seconds` themselves)."""
    return Emulator(resource_group_ready_seconds=0)


@pytest.fixture
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator_for_tests()) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Emulator:
    return emulator_server.emulator


@pytest.fixture
def cloud_settings(emulator_server: EmulatorServer, tmp_path: Path) -> Settings:
    return Settings(cloud_endpoint=emulator_server.endpoint, store=f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def root_clients(cloud_settings: Settings) -> CloudClients:
    """SDK clients signed with the emulator account's root key, over the loopback socket."""
    return CloudClients(cloud_settings, ROOT_CREDENTIALS)


@pytest.fixture
def mocked_cloud() -> Iterator[tuple[Emulator, CloudClients]]:
    with mock_cloud(emulator_for_tests()) as emulator:
        yield emulator, CloudClients(Settings(cloud_endpoint=IN_PROCESS_ENDPOINT), ROOT_CREDENTIALS)


@dataclass
class ServeProcess:
    """A `ramflow serve` child process: its base URL, what it printed until ready, how it ended."""

    endpoint: str
    startup: str
    returncode: int | None = None
    rest: str = ""


@contextmanager
def serve_process(*args: str, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """Start `ramflow serve --port 0 ARGS` as its own process (environment `env`, default this
    process's), wait until it says it is ready,
    yield it, then stop it with SIGTERM (its exit code and remaining output are filled in).
    Unless `env` names RAMFLOW_STORE, the process gets a store of its own (serve's default is the
    local store every `ramflow invoke` shares)."""
    env = dict(os.environ if env is None else env)
    scratch = tempfile.TemporaryDirectory(prefix="ramflow-serve-test-")
    env.setdefault("RAMFLOW_STORE", f"sqlite:///{scratch.name}/state.db")
    process = subprocess.Popen(
        [sys.executable, "-c", "from local.cli import app; app()", "serve", "--port", "0", *args],
        cwd=REPO,
        env=env,  # the child's whole environment
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = ServeProcess("", "")
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "try: curl" in line:
                break
        started.startup = "".join(lines)
        ready = re.search(r"ready on (http://127\.0\.0\.1:\d+)", started.startup)
        assert ready, started.startup
        started.endpoint = ready.group(1)
        yield started
    finally:
        process.send_signal(signal.SIGTERM)
        started.rest, _ = process.communicate(timeout=20)
        started.returncode = process.returncode
        scratch.cleanup()
