"""`runtime_for`: one Runtime per settings in a warm instance, whatever FC's credential rotations."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.runtime import runtime_for
from shared.store import StateStore

FIRST = CloudCredentials("STS.first", "first-secret", "first-token")
SECOND = CloudCredentials("STS.second", "second-secret", "second-token")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[StateStore]:
    """Every store runtime_for opens."""
    stores: list[StateStore] = []
    open_url = StateStore.from_url

    def counted(url: str, **options: float) -> StateStore:
        stores.append(open_url(url, **options))
        return stores[-1]

    monkeypatch.setattr(StateStore, "from_url", staticmethod(counted))
    return stores


def test_the_same_credentials_get_the_same_runtime(tmp_path: Path, opened: list[StateStore]) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/state.db", managed_user_prefix="rf-")
    assert runtime_for(settings, FIRST) is runtime_for(settings, FIRST)
    assert len(opened) == 1


def test_rotated_credentials_replace_the_runtime_and_keep_its_store(
    tmp_path: Path, opened: list[StateStore]
) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/state.db", managed_user_prefix="rf-")
    first = runtime_for(settings, FIRST)
    store = first.store
    assert store.ledger.get_intent("nothing") is None
    left_behind = weakref.ref(first)
    del first

    second = runtime_for(settings, SECOND)

    assert second.credentials == SECOND and second.store is store
    gc.collect()
    assert left_behind() is None  # the instance keeps no Runtime for the old session
    for _ in range(10):  # STS sessions rotate again and again in a warm instance
        runtime_for(settings, FIRST)
        runtime_for(settings, SECOND)
    assert len(opened) == 1  # one store connection, however often the session rotates
    assert runtime_for(settings, SECOND).store.ledger.get_intent("nothing") is None  # still open
