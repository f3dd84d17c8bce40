"""Every contract test runs against each backend: memory, SQLite in tmp_path, and a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis

from shared.store import KeyValueBackend, open_store
from tests.store.tablestore_fake import tablestore_fake, tablestore_url  # noqa: F401 - fixtures

REDIS = pytest.param("redis", marks=pytest.mark.redis)


@pytest.fixture(params=["memory", "sqlite", REDIS, "tablestore"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of its own for this test."""
    yield from _store_url(request, tmp_path)


@pytest.fixture(params=["sqlite", REDIS, "tablestore"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of its own for this test, which every process opening the URL sees."""
    yield from _store_url(request, tmp_path)


@pytest.fixture
def backend(store_url: str) -> Iterator[KeyValueBackend]:
    store = open_store(store_url)
    yield store
    store.close()


def _store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state/ramflow.db"
    elif request.param == "tablestore":
        yield request.getfixturevalue("tablestore_url")  # a loopback Tablestore (tablestore_fake.py)
    else:
        # Other processes use this database: a fresh namespace, and only its keys are removed.
        base: str = request.getfixturevalue("redis_url")
        namespace = f"ramflow-test:{uuid.uuid4().hex}:"
        separator = "&" if urlsplit(base).query else "?"
        yield f"{base}{separator}{urlencode({'namespace': namespace})}"
        with redis.Redis.from_url(base) as client:
            for key in client.scan_iter(match=namespace + "*"):
                client.delete(key)
