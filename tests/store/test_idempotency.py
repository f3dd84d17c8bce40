"""Idempotency records on each backend: one winner, replies for duplicates, leases and takeovers."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from shared.errors import LeaseLost
from shared.store import BeginStatus, IdempotencyStore, KeyValueBackend, payload_hash
from tests.store.support import FakeClock, race

KEY = "acs.ticketing:evt-0001"
HASH = payload_hash({"type": "ramflow.access.approved", "data": {"ticket_id": "ITSM-1042"}})
REPLY = {"status": "completed", "ticket": "ITSM-1042", "user": "alice.kafka"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(backend: KeyValueBackend, clock: FakeClock) -> IdempotencyStore:
    return IdempotencyStore(backend, clock=clock)


def test_first_begin_acquires_the_lease(store: IdempotencyStore, clock: FakeClock) -> None:
    result = store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)

    assert result.status is BeginStatus.ACQUIRED
    assert result.acquired
    assert result.takeover is False
    assert result.lease_until == clock.now + 60
    record = store.get(KEY)
    assert record is not None
    assert (record.status, record.owner, record.payload_hash) == ("INPROGRESS", "inv-1", HASH)


def test_duplicates_get_the_stored_reply(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)
    store.complete(KEY, "inv-1", REPLY)

    clock.now += 3600  # long after the lease: a completed record is final
    result = store.begin(KEY, HASH, owner="inv-2", lease_until=clock.now + 60)

    assert result.status is BeginStatus.COMPLETED
    assert result.reply == REPLY
    assert not result.acquired


def test_others_see_in_progress_while_the_lease_lasts(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)

    clock.now += 59
    result = store.begin(KEY, HASH, owner="inv-2", lease_until=clock.now + 60)

    assert result.status is BeginStatus.IN_PROGRESS
    assert result.lease_until == clock.now + 1
    record = store.get(KEY)
    assert record is not None
    assert record.owner == "inv-1"


def test_the_holder_may_renew_its_lease(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)

    result = store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 120)

    assert (result.status, result.takeover) == (BeginStatus.ACQUIRED, False)
    record = store.get(KEY)
    assert record is not None
    assert record.lease_until == clock.now + 120


@pytest.mark.parametrize("completed", [False, True])
def test_same_key_with_another_payload_is_a_mismatch(
    store: IdempotencyStore, clock: FakeClock, completed: bool
) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)
    if completed:
        store.complete(KEY, "inv-1", REPLY)

    result = store.begin(KEY, payload_hash({"something": "else"}), owner="inv-2", lease_until=clock.now + 60)

    assert result.status is BeginStatus.MISMATCH
    assert result.reply is None
    record = store.get(KEY)
    assert record is not None
    assert (record.owner, record.payload_hash) == ("inv-1", HASH)


def test_an_expired_lease_is_taken_over(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="crashed", lease_until=clock.now + 60)

    clock.now += 61
    result = store.begin(KEY, HASH, owner="replay", lease_until=clock.now + 60)

    assert (result.status, result.takeover) == (BeginStatus.ACQUIRED, True)
    with pytest.raises(LeaseLost):
        store.complete(KEY, "crashed", {"status": "completed", "from": "the crashed one"})
    store.complete(KEY, "replay", REPLY)
    assert store.begin(KEY, HASH, owner="late", lease_until=clock.now + 60).reply == REPLY


def test_the_holder_may_complete_after_its_lease_if_nobody_took_over(
    store: IdempotencyStore, clock: FakeClock
) -> None:
    store.begin(KEY, HASH, owner="slow", lease_until=clock.now + 60)
    clock.now += 120

    store.complete(KEY, "slow", REPLY)

    record = store.get(KEY)
    assert record is not None
    assert (record.status, record.reply) == ("COMPLETED", REPLY)


def test_only_the_holder_completes(store: IdempotencyStore, clock: FakeClock) -> None:
    with pytest.raises(LeaseLost):
        store.complete(KEY, "inv-1", REPLY)  # nobody began it
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)
    before = store.get(KEY)

    with pytest.raises(LeaseLost, match="inv-2"):
        store.complete(KEY, "inv-2", {"status": "completed", "forged": True})

    assert store.get(KEY) == before
    store.complete(KEY, "inv-1", REPLY)
    with pytest.raises(LeaseLost):
        store.complete(KEY, "inv-1", {"status": "completed", "second": True})
    assert store.begin(KEY, HASH, owner="inv-3", lease_until=clock.now + 60).reply == REPLY


def test_only_the_holder_releases(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)
    before = store.get(KEY)

    with pytest.raises(LeaseLost):
        store.release(KEY, "inv-2")
    assert store.get(KEY) == before

    store.release(KEY, "inv-1")
    assert store.get(KEY) is None
    retry = store.begin(KEY, HASH, owner="retry", lease_until=clock.now + 60)
    assert (retry.status, retry.takeover) == (BeginStatus.ACQUIRED, False)


def test_a_completed_record_cannot_be_released(store: IdempotencyStore, clock: FakeClock) -> None:
    store.begin(KEY, HASH, owner="inv-1", lease_until=clock.now + 60)
    store.complete(KEY, "inv-1", REPLY)

    with pytest.raises(LeaseLost):
        store.release(KEY, "inv-1")

    assert store.begin(KEY, HASH, owner="inv-2", lease_until=clock.now + 60).reply == REPLY


def test_32_concurrent_duplicates_have_one_winner(store: IdempotencyStore, clock: FakeClock) -> None:
    results = race(lambda i: store.begin(KEY, HASH, owner=f"inv-{i}", lease_until=clock.now + 60))

    statuses = [result.status for result in results]
    assert statuses.count(BeginStatus.ACQUIRED) == 1
    assert statuses.count(BeginStatus.IN_PROGRESS) == 31
    record = store.get(KEY)
    assert record is not None
    assert record.owner == f"inv-{statuses.index(BeginStatus.ACQUIRED)}"


def test_32_concurrent_replays_take_over_an_expired_lease_once(
    store: IdempotencyStore, clock: FakeClock
) -> None:
    store.begin(KEY, HASH, owner="crashed", lease_until=clock.now + 60)
    clock.now += 61

    results = race(lambda i: store.begin(KEY, HASH, owner=f"replay-{i}", lease_until=clock.now + 60))

    winners = [result for result in results if result.acquired]
    assert len(winners) == 1
    assert winners[0].takeover is True
    assert all(result.status is BeginStatus.IN_PROGRESS for result in results if not result.acquired)


def test_records_expire_after_their_ttl(backend: KeyValueBackend) -> None:
    store = IdempotencyStore(backend, record_ttl_seconds=0.6)
    store.begin(KEY, HASH, owner="inv-1", lease_until=time.time() + 60)
    store.complete(KEY, "inv-1", REPLY)
    assert store.get(KEY) is not None

    time.sleep(1.0)

    assert store.get(KEY) is None
    assert store.begin(KEY, HASH, owner="inv-2", lease_until=time.time() + 60).acquired


class _Event(BaseModel):
    id: str
    data: dict[str, int]


def test_payload_hash_is_canonical() -> None:
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
    assert payload_hash({"a": [1, 2]}) != payload_hash({"a": [2, 1]})
    assert payload_hash(_Event(id="e", data={"x": 1})) == payload_hash({"data": {"x": 1}, "id": "e"})
    digest = payload_hash({})
    assert len(digest) == 64
    assert int(digest, 16) >= 0
