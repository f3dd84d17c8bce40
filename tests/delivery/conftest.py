"""A runtime whose results go to a local webhook receiver and/or the emulator's EventBridge."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.testing import ROOT_CREDENTIALS
from shared.config import Settings
from shared.runtime import Runtime
from shared.store import StateStore
from shared.webhooks import new_secret

SECRET_ENV = "RAMFLOW_TEST_RESULT_SECRET"


@pytest.fixture
def result_secret(monkeypatch) -> str:
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    return secret


def write_destinations(
    path: Path,
    *,
    url: str | None = None,
    bus: str | None = None,
    schedule: list[float] | None = None,
    notify_url: str | None = None,
) -> Path:
    route: dict = {"name": "itsm", "source": "itsm.example.com"}
    if url:
        route["webhook"] = {"url": url, "secret_env": SECRET_ENV, "timeout_seconds": 2}
    if bus:
        route["eventbridge"] = {"bus": bus}
    document: dict = {"version": 1, "routes": [route], "retry_schedule": schedule or [0.1, 0.1, 0.1]}
    if notify_url:
        document["notifications"] = {"webhook": {"url": notify_url, "secret_env": SECRET_ENV}}
    path.write_text(json.dumps(document))  # YAML is a superset of JSON
    return path


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """A Runtime on one SQLite file (a new Runtime on the same file stands for a restart)."""
    opened: list[StateStore] = []

    def make(destinations: Path, cloud_endpoint: str | None = None) -> Runtime:
        settings = Settings(
            store=f"sqlite:///{tmp_path}/state.db",
            destinations_path=destinations,
            cloud_endpoint=cloud_endpoint,
        )
        store = StateStore.from_url(settings.store)
        opened.append(store)
        return Runtime(settings, ROOT_CREDENTIALS, store)

    yield make
    for store in opened:
        store.close()
