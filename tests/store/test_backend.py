"""The KeyValueBackend contract, checked for each backend."""

from __future__ import annotations

import multiprocessing
import time
from typing import TYPE_CHECKING, Any

import pytest

from shared.errors import StoreError
from shared.store import KeyValueBackend, open_store
from shared.store.idempotency import BeginStatus, IdempotencyStore
from tests.store.support import increment, race

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier


def test_missing_key_reads_as_none(backend: KeyValueBackend) -> None:
    assert backend.get("nothing/here") is None
    assert backend.scan("nothing/") == []


def test_put_if_absent_writes_once(backend: KeyValueBackend) -> None:
    assert backend.put_if_absent("k", {"a": 1}) is True
    assert backend.put_if_absent("k", {"a": 2}) is False

    doc = backend.get("k")
    assert doc is not None
    assert doc.value == {"a": 1}
    assert isinstance(doc.version, int)


def test_put_if_version_is_compare_and_set(backend: KeyValueBackend) -> None:
    backend.put_if_absent("k", {"a": 1})
    first = backend.get("k")
    assert first is not None

    assert backend.put_if_version("k", {"a": 2}, first.version + 1000) is False
    assert backend.get("k") == first

    assert backend.put_if_version("k", {"a": 2}, first.version) is True
    second = backend.get("k")
    assert second is not None
    assert second.value == {"a": 2}
    assert second.version != first.version

    assert backend.put_if_version("k", {"a": 3}, first.version) is False, "a stale version must not match"
    assert backend.get("k") == second


def test_put_if_version_never_creates(backend: KeyValueBackend) -> None:
    assert backend.put_if_version("k", {"a": 1}, 1) is False
    assert backend.get("k") is None


def test_delete_if_version(backend: KeyValueBackend) -> None:
    backend.put_if_absent("k", {"a": 1})
    doc = backend.get("k")
    assert doc is not None

    assert backend.delete_if_version("k", doc.version + 1000) is False
    assert backend.get("k") == doc

    assert backend.delete_if_version("k", doc.version) is True
    assert backend.get("k") is None
    assert backend.delete_if_version("k", doc.version) is False


def test_versions_never_repeat_after_delete(backend: KeyValueBackend) -> None:
    """No ABA: a version read before a delete cannot match the key's next document."""
    backend.put_if_absent("k", {"generation": 1})
    old = backend.get("k")
    assert old is not None
    backend.delete_if_version("k", old.version)
    backend.put_if_absent("k", {"generation": 2})

    new = backend.get("k")
    assert new is not None
    assert new.version != old.version
    assert backend.put_if_version("k", {"generation": "stale"}, old.version) is False
    assert backend.get("k") == new


def test_values_round_trip_as_json_copies(backend: KeyValueBackend) -> None:
    value: dict[str, Any] = {"name": "Zoë 陈", "nested": {"list": [1, 2.5, None, True], "empty": {}}}
    backend.put_if_absent("k", value)
    value["nested"]["list"].append("changed by the caller")

    first = backend.get("k")
    assert first is not None
    assert first.value == {"name": "Zoë 陈", "nested": {"list": [1, 2.5, None, True], "empty": {}}}
    first.value["name"] = "changed by a reader"
    second = backend.get("k")
    assert second is not None
    assert second.value["name"] == "Zoë 陈"


def test_scan_returns_keys_with_the_prefix_sorted(backend: KeyValueBackend) -> None:
    for key in ["ticket/b", "ticket/a", "tickets", "user/a", "ticket*/literal", "ticket?x"]:
        backend.put_if_absent(key, {"key": key})

    assert [key for key, _ in backend.scan("ticket/")] == ["ticket/a", "ticket/b"]
    assert [key for key, _ in backend.scan("ticket*/")] == ["ticket*/literal"]
    assert [key for key, _ in backend.scan("ticket?")] == ["ticket?x"]
    assert len(backend.scan("")) == 6
    key, doc = backend.scan("user/")[0]
    assert (key, doc) == ("user/a", backend.get("user/a"))


def test_scan_omits_deleted_documents(backend: KeyValueBackend) -> None:
    backend.put_if_absent("p/1", {})
    backend.put_if_absent("p/2", {})
    doc = backend.get("p/1")
    assert doc is not None
    backend.delete_if_version("p/1", doc.version)

    assert [key for key, _ in backend.scan("p/")] == ["p/2"]


def test_ttl_expires_documents_and_untimed_writes_persist(backend: KeyValueBackend) -> None:
    backend.put_if_absent("timed", {"n": 1}, ttl_seconds=0.6)
    backend.put_if_absent("made-permanent", {"n": 1}, ttl_seconds=0.6)
    permanent = backend.get("made-permanent")
    assert permanent is not None
    assert backend.put_if_version("made-permanent", {"n": 2}, permanent.version)
    backend.put_if_absent("made-timed", {"n": 1})
    timed = backend.get("made-timed")
    assert timed is not None
    assert backend.put_if_version("made-timed", {"n": 2}, timed.version, ttl_seconds=0.6)
    stale = backend.get("made-timed")
    assert stale is not None
    assert {key for key, _ in backend.scan("")} == {"timed", "made-permanent", "made-timed"}

    time.sleep(1.0)

    assert backend.get("timed") is None
    assert backend.get("made-timed") is None
    assert [key for key, _ in backend.scan("")] == ["made-permanent"]
    assert backend.put_if_version("made-timed", {"n": 3}, stale.version) is False, "expired means gone"
    assert backend.put_if_absent("timed", {"n": "again"}) is True
    again = backend.get("timed")
    assert again is not None
    assert again.value == {"n": "again"}


def test_rejects_malformed_arguments(backend: KeyValueBackend) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        backend.put_if_absent("k", {}, ttl_seconds=0)
    with pytest.raises(ValueError, match="key"):
        backend.put_if_absent("", {})
    with pytest.raises(TypeError, match="JSON object"):
        backend.put_if_absent("k", ["not", "an", "object"])  # type: ignore[arg-type]
    assert backend.get("k") is None


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"password": "hunter2-plain"}, "password"),
        ({"credential": {"AccessKeySecret": "hunter2-plain"}}, "credential.AccessKeySecret"),
        ({"reply": {"users": [{"SecurityToken": "hunter2-plain"}]}}, "reply.users[0].SecurityToken"),
        ({"webhook_secret": "hunter2-plain"}, "webhook_secret"),
    ],
)
def test_refuses_plaintext_secrets(backend: KeyValueBackend, value: dict, field: str) -> None:
    with pytest.raises(StoreError) as raised:
        backend.put_if_absent("k", value)

    assert repr(field) in str(raised.value)
    assert "hunter2-plain" not in str(raised.value)
    assert backend.get("k") is None


def test_accepts_sealed_secrets_and_non_string_secret_fields(backend: KeyValueBackend) -> None:
    value = {"sealed_secret": "Y2lwaGVy", "sealed_password": "Y2lwaGVy", "PasswordResetRequired": True}
    assert backend.put_if_absent("k", value) is True


def test_32_threads_racing_put_if_absent_have_one_winner(backend: KeyValueBackend) -> None:
    won = race(lambda i: backend.put_if_absent("contested", {"winner": i}))

    assert won.count(True) == 1
    doc = backend.get("contested")
    assert doc is not None
    assert doc.value == {"winner": won.index(True)}


@pytest.mark.slow
def test_32_threads_of_compare_and_set_lose_no_update(backend: KeyValueBackend) -> None:
    def add_ten(_: int) -> None:
        for _ in range(10):
            increment(backend, "counter")

    race(add_ten)

    doc = backend.get("counter")
    assert doc is not None
    assert doc.value == {"n": 320}


def _contend_from_process(url: str, start: Barrier, results: Queue[str]) -> None:
    """One process: race the others for an idempotency lease, then add 100 to a shared counter."""
    backend = open_store(url)
    owner = f"pid-{multiprocessing.current_process().pid}"
    start.wait()
    outcome = IdempotencyStore(backend).begin("event-1", "hash", owner=owner, lease_until=time.time() + 300)
    for _ in range(100):
        increment(backend, "counter")
    backend.close()
    results.put(outcome.status.value)


@pytest.mark.slow
def test_conditional_writes_are_atomic_across_processes(shared_store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4, timeout=60), context.Queue()
    workers = [
        context.Process(target=_contend_from_process, args=(shared_store_url, start, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join(timeout=120)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()

    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == [BeginStatus.ACQUIRED.value] + [BeginStatus.IN_PROGRESS.value] * 3
    backend = open_store(shared_store_url)
    doc = backend.get("counter")
    backend.close()
    assert doc is not None
    assert doc.value == {"n": 400}
