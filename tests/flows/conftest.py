"""Fixtures for flow tests: functions invoked in-process against the emulator over loopback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.invoke import invoke
from shared.cloud.clients import CloudClients
from shared.sealing import generate_keypair

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def function_env(emulator_server, tmp_path, monkeypatch) -> Path:
    """The environment a deployed function sees, pointed at the emulator and a fresh store."""
    monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", emulator_server.endpoint)
    monkeypatch.setenv("RAMFLOW_STORE", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("RAMFLOW_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("RAMFLOW_RATE_LIMIT_QPS", "1000")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    return tmp_path


@pytest.fixture
def delivery_keys() -> tuple[str, str]:
    """(private, public) X25519 keys of the requester who receives the sealed secret."""
    return generate_keypair()


@pytest.fixture
def resource_group(root_clients: CloudClients) -> str:
    request = rm_models.CreateResourceGroupRequest(name="orders", display_name="Orders")
    return root_clients.resource_manager.create_resource_group(request).body.resource_group.id


def sample(name: str, **data_overrides: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data_overrides)
    return event


@pytest.fixture
def call() -> Callable[[str, dict[str, Any] | bytes], Any]:
    def run(function: str, event: dict[str, Any] | bytes) -> Any:
        raw = event if isinstance(event, bytes) else json.dumps(event).encode()
        return invoke(function, raw)

    return run
