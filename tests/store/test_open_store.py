"""Store URLs, the StateStore facade, and how driver failures surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError, StoreError
from shared.store import MemoryBackend, RedisBackend, SqliteBackend, StateStore, open_store


def test_memory_urls_open_fresh_stores() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    first.put_if_absent("k", {})

    assert isinstance(first, MemoryBackend)
    assert second.get("k") is None


def test_sqlite_relative_path_creates_its_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store("sqlite:///data/nested/state.db")
    store.put_if_absent("k", {"v": 1})
    store.close()

    assert (tmp_path / "data" / "nested" / "state.db").is_file()


def test_sqlite_absolute_path_is_shared_by_every_opener(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/state.db"
    assert url.startswith("sqlite:////")

    writer, reader = open_store(url), open_store(url)
    writer.put_if_absent("k", {"v": 1})

    assert isinstance(writer, SqliteBackend)
    assert writer.path == tmp_path / "a" / "b" / "state.db"
    doc = reader.get("k")
    assert doc is not None
    assert doc.value == {"v": 1}
    writer.close()
    reader.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/path.db"])
def test_sqlite_without_a_path_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="needs a path"):
        open_store(url)


def test_redis_urls_take_a_namespace_and_pass_the_rest_on() -> None:
    default = open_store("redis://127.0.0.1:6379/15")
    named = open_store("rediss://cache.example.com:6380/2?namespace=team-a:&socket_timeout=3")

    assert isinstance(default, RedisBackend)
    assert isinstance(named, RedisBackend)
    assert default.namespace == "ramflow:"
    assert named.namespace == "team-a:"
    settings = named._client.connection_pool.connection_kwargs
    assert (settings["host"], settings["port"], settings["db"], settings["socket_timeout"]) == (
        "cache.example.com",
        6380,
        2,
        3.0,
    )
    default.close()
    named.close()


def test_tablestore_urls_open_the_tablestore_backend() -> None:
    from shared.store.tablestore import TablestoreBackend  # URL details: tests/store/test_tablestore.py

    store = open_store("tablestore://ramflow.cn-hangzhou.ots.aliyuncs.com/ramflow")

    assert isinstance(store, TablestoreBackend)
    assert store.table == "ramflow"


@pytest.mark.parametrize("url", ["postgres://admin:hunter2@db.example.com/ramflow", "state.db", ""])
def test_unknown_schemes_are_refused_without_echoing_the_url(url: str) -> None:
    with pytest.raises(ConfigError, match="unsupported store URL scheme") as raised:
        open_store(url)

    assert "hunter2" not in str(raised.value)
    assert "sqlite:///" in str(raised.value), "the message says what would work"


def test_state_store_shares_one_backend() -> None:
    with StateStore.from_url("memory://") as state:
        assert state.idempotency.backend is state.backend
        assert state.ledger.backend is state.backend
        state.idempotency.begin("event", "hash", owner="inv", lease_until=4e9)
        assert [key for key, _ in state.backend.scan("")] == ["idem/event"]


def test_an_unreachable_redis_raises_store_error() -> None:
    store = RedisBackend.from_url("redis://127.0.0.1:1/0")

    with pytest.raises(StoreError, match="RedisBackend"):
        store.get("k")
    with pytest.raises(StoreError):
        store.put_if_absent("k", {})
    store.close()


def test_an_unusable_sqlite_file_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-database.db").write_bytes(b"this is not SQLite" * 100)

    with pytest.raises(StoreError, match="SqliteBackend"):
        open_store(f"sqlite:///{tmp_path}/not-a-database.db")
