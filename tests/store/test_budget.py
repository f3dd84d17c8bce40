"""The API budget's token buckets in the store: shared by every connection, atomic, adaptive (AIMD).

Each test runs on every backend (memory, SQLite, a real Redis, the Tablestore fake). Redis keeps time
on its server, so waits are compared with a tolerance; the adaptive rate is checked on a fake clock.
"""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest

from shared.store import KeyValueBackend, RedisBackend, SqliteBackend, open_store
from shared.store.budget import CUT_COOLDOWN, PREFIX, RECOVERY, Bucket, DocumentBudget, budget_store
from shared.store.memory import MemoryBackend

TOLERANCE = 0.2  # seconds: a store round trip on a loaded machine; slots below are 0.5 s apart


def due_times(takes: list[tuple[bool, float]], stamps: list[float]) -> list[float]:
    """When each reserved token falls due, from the start: the time the take returned plus its wait."""
    return [stamp + wait - stamps[0] for (_, wait), stamp in zip(takes, stamps, strict=True)]


def take_and_stamp(take, stamps: list[float]):
    result = take()
    stamps.append(time.time())
    return result


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_callers_reserve_successive_slots(store_url: str) -> None:
    with closing(open_store(store_url)) as backend:
        budget = budget_store(backend)
        bucket = Bucket("t:account", rate=2)
        stamps: list[float] = []
        takes = [take_and_stamp(lambda: budget.take([bucket], float("inf")), stamps) for _ in range(5)]
    assert all(taken for taken, _ in takes) and takes[0][1] == 0.0
    for n, due in enumerate(due_times(takes, stamps)):
        assert due == pytest.approx(n / 2, abs=TOLERANCE)


def test_two_connections_draw_on_one_bucket(shared_store_url: str) -> None:
    """Two instances (two connections to the same store) are paced as one: their reservations
    interleave instead of each starting its own second."""
    with closing(open_store(shared_store_url)) as a, closing(open_store(shared_store_url)) as b:
        first, second = budget_store(a), budget_store(b)
        bucket = Bucket("t:account", rate=2)
        stamps: list[float] = []
        takes = [
            take_and_stamp(lambda n=n: (first if n % 2 else second).take([bucket], float("inf")), stamps)
            for n in range(6)
        ]
    for n, due in enumerate(due_times(takes, stamps)):
        assert due == pytest.approx(n / 2, abs=TOLERANCE)


def test_a_take_that_would_wait_too_long_reserves_nothing(store_url: str) -> None:
    with closing(open_store(store_url)) as backend:
        budget = budget_store(backend)
        bucket = Bucket("t:account", rate=2)
        for _ in range(10):
            budget.take([bucket], float("inf"))  # the next token is due in about 5 s
        taken, wait = budget.take([bucket], max_wait=0.5)
        assert not taken and 0.5 < wait <= 5.0
        taken, again = budget.take([bucket], float("inf"))
    assert taken and again <= wait  # the refused take held no slot: the next one is no later


def test_a_call_takes_from_every_bucket_or_from_none(store_url: str) -> None:
    with closing(open_store(store_url)) as backend:
        budget = budget_store(backend)
        account, api = Bucket("t:account", rate=1, burst=2), Bucket("t:api:DeleteUser", rate=1)
        assert budget.take([account, api], 0.0) == (True, 0.0)
        taken, wait = budget.take([account, api], max_wait=0.5)  # the API's bucket needs ~1 s
        assert not taken and 0.5 < wait <= 1.0
        taken, wait = budget.take([account], 0.0)
    assert taken and wait == 0.0  # the account's second token was not kept by the refused call


def bucket_state(backend: KeyValueBackend, key: str) -> dict[str, float]:
    """A bucket's stored (tokens, ts, rate), read behind the budget's back."""
    if isinstance(backend, RedisBackend):
        raw = backend.client.hgetall(backend.namespace + PREFIX + key)
        return {str(k): float(v) for k, v in raw.items()}
    if isinstance(backend, SqliteBackend):
        backend = budget_store(backend)._backend  # type: ignore[attr-defined]  # the per-file memory store
    doc = backend.get(PREFIX + key)
    assert doc is not None
    return {k: float(v) for k, v in doc.value.items()}


def test_concurrent_takes_never_share_a_slot(shared_store_url: str) -> None:
    """Eight threads, each with its own connection, 5 takes each. Whatever the timing, the bucket
    must account for all 40: tokens now = tokens then - 40 + rate x (time between), to the
    microsecond. A lost update (two takes sharing a slot) would leave a token too many."""
    rate = 5.0
    bucket = Bucket("t:account", rate=rate)
    with closing(open_store(shared_store_url)) as main:
        budget_store(main).take([bucket], float("inf"))
        before = bucket_state(main, bucket.key)

        def worker() -> None:
            with closing(open_store(shared_store_url)) as backend:
                budget = budget_store(backend)
                for _ in range(5):
                    budget.take([bucket], float("inf"))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = bucket_state(main, bucket.key)
    expected = before["tokens"] - 40 + rate * (after["ts"] - before["ts"])
    # (Redis keeps the numbers as 14-digit text: a few thousandths over 40 takes; a lost take is 1)
    assert after["tokens"] == pytest.approx(expected, abs=0.05)


def test_throttling_cuts_the_rate_once_per_cooldown(store_url: str) -> None:
    with closing(open_store(store_url)) as backend:
        budget = budget_store(backend)
        bucket = Bucket("t:api:UpdateAccessKey", rate=20)
        assert budget.rate(bucket) == pytest.approx(20)
        started = time.monotonic()
        assert budget.cut(bucket, 0.5) == pytest.approx(10, rel=0.02)
        again = budget.cut(bucket, 0.5)
        if time.monotonic() - started < CUT_COOLDOWN:  # (a slow store may take longer than that)
            # every call in flight comes back throttled together: one congestion, one cut
            assert again == pytest.approx(10, rel=0.05)
        budget.take([bucket], float("inf"))
        assert budget.rate(bucket) < 20  # calls leave the cut rate be (it recovers with time only)


def test_a_cut_rate_recovers_additively_up_to_its_ceiling() -> None:
    clock = FakeClock()
    budget = DocumentBudget(MemoryBackend(), clock=clock)
    bucket = Bucket("t:api:DeleteUser", rate=20)
    assert budget.cut(bucket, 0.5) == 10
    clock.now += CUT_COOLDOWN  # a second of recovery, then throttled again: halved again
    second = (10 + 20 * RECOVERY * CUT_COOLDOWN) * 0.5
    assert budget.cut(bucket, 0.5) == pytest.approx(second)
    clock.now += 1.0
    assert budget.rate(bucket) == pytest.approx(second + 20 * RECOVERY)
    clock.now += 60
    assert budget.rate(bucket) == 20  # never above the configured ceiling


def test_a_rate_is_never_cut_to_nothing() -> None:
    clock = FakeClock()
    budget = DocumentBudget(MemoryBackend(), clock=clock)
    bucket = Bucket("t:api:DeleteUser", rate=20)
    for _ in range(50):
        clock.now += CUT_COOLDOWN
        rate = budget.cut(bucket, 0.1)
    assert rate == pytest.approx(bucket.floor()) and rate > 0


def test_a_taker_whose_clock_read_is_older_never_refills_an_interval_twice() -> None:
    """Two instances read the clock, the later reader writes first: the earlier one's take must not
    move the bucket's time back (the next take would then refill the same interval again)."""
    clock = FakeClock()
    budget = DocumentBudget(MemoryBackend(), clock=clock)
    bucket = Bucket("t:account", rate=10, burst=1)
    budget.take([bucket], float("inf"))  # t=now: the burst is spent
    clock.now += 1.0
    budget.take([bucket], float("inf"))  # t=now+1: refilled by 10 x 1 s, capped at the burst
    clock.now -= 0.5  # an instance whose clock read came earlier takes next
    budget.take([bucket], float("inf"))
    clock.now += 0.5  # back at now+1: nothing has elapsed since the bucket's time
    _, due = budget.take([bucket], float("inf"))
    assert due == pytest.approx((1 - (-1.0)) / 10)  # a token owed, none refilled twice (else: due 0)
