"""The token bucket: spacing, bursts, reservations under contention, one bucket per account."""

from __future__ import annotations

import threading

import pytest

from shared.cloud.ratelimit import RateLimiterRegistry, TokenBucket


class FakeTime:
    def __init__(self, *, advance_on_sleep: bool = True):
        self.now = 100.0
        self.slept: list[float] = []
        self._advance = advance_on_sleep
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if self._advance:
                self.now += seconds


def test_calls_are_spaced_at_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0.1, 0.1, 0.1, 0.1])
    assert t.now == pytest.approx(100.4)


def test_a_burst_passes_at_once_then_the_rate_applies() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, burst=3, clock=t.clock, sleep=t.sleep)
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


def test_idle_time_refills_up_to_the_burst_only() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, burst=2, clock=t.clock, sleep=t.sleep)
    bucket.acquire()
    t.now += 60
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0, 0, 0.1])


def test_waiting_callers_reserve_successive_slots() -> None:
    """With the clock standing still, the n-th caller waits n/rate: no two share a slot."""
    t = FakeTime(advance_on_sleep=False)
    bucket = TokenBucket(10, clock=t.clock, sleep=t.sleep)
    threads = [threading.Thread(target=bucket.acquire) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(s, 6) for s in t.slept) == [round(n / 10, 6) for n in range(1, 50)]


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(5, burst=0.5)


def test_registry_shares_one_bucket_per_endpoint_and_key() -> None:
    registry = RateLimiterRegistry()
    a = registry.get("http://127.0.0.1:1", "LTAI-A", 20)
    assert registry.get("http://127.0.0.1:1", "LTAI-A", 20) is a
    assert registry.get("http://127.0.0.1:1", "LTAI-B", 20) is not a
    assert registry.get("http://127.0.0.1:2", "LTAI-A", 20) is not a


def test_registry_retunes_a_bucket_when_the_rate_changes() -> None:
    registry = RateLimiterRegistry()
    bucket = registry.get("e", "k", 20)
    assert registry.get("e", "k", 5) is bucket
    assert bucket.rate == 5
