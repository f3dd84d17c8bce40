"""Shared fixtures. The local cloud's fixtures live in local/testing.py."""

import os
from urllib.parse import urlsplit

import pytest
import redis

pytest_plugins = ["local.testing"]

# Tests never wait on the deployed 20 calls/s budget unless they ask for it: the tests of the limiter
# and the benchmarks set their own rate. Subprocesses (`ramflow serve`, the CLI) inherit this.
os.environ.setdefault("RAMFLOW_RATE_LIMIT_QPS", "1000")
# The sample events name users without a managed-user prefix: tests run unscoped unless they set one
# (tests/enforcement and tests/flows/test_scope.py do). A deployment must choose (README).
os.environ.setdefault("RAMFLOW_ALLOW_UNSCOPED_USERS", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first: under `make test` (xdist, work stealing) they start at once and the
    short tests fill in around them, instead of one worker finishing a long test while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


# --- redis_url: a real redis-server for the tests that need one -------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """`redis://127.0.0.1:6379/15` or RAMFLOW_TEST_REDIS_URL, once it answers PING.

    Skips the test without a server; fails it under CI=true, where a server is part of the machine.
    Tests share the database with others: they use their own key prefix and never FLUSHDB.
    """
    url = os.environ.get("RAMFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        parts = urlsplit(url)
        where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never print a password
        message = f"no redis-server at {where}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return url
