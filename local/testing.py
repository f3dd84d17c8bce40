"""pytest fixtures for the local cloud, loaded by tests/conftest.py as a plugin.

`emulator_server` is a real loopback socket: the official SDK clients reach it by endpoint
override, exactly as they reach the cloud. `mocked_cloud` is the same backend in-process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.inprocess import IN_PROCESS_ENDPOINT, mock_cloud
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings

ROOT_CREDENTIALS = CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)


@pytest.fixture
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator()) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Emulator:
    return emulator_server.emulator


@pytest.fixture
def cloud_settings(emulator_server: EmulatorServer, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(cloud_endpoint=emulator_server.endpoint, store=f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def root_clients(cloud_settings: Settings) -> CloudClients:
    """SDK clients signed with the emulator account's root key, over the loopback socket."""
    return CloudClients(cloud_settings, ROOT_CREDENTIALS)


@pytest.fixture
def mocked_cloud() -> Iterator[tuple[Emulator, CloudClients]]:
    with mock_cloud() as emulator:
        yield emulator, CloudClients(Settings(cloud_endpoint=IN_PROCESS_ENDPOINT), ROOT_CREDENTIALS)
