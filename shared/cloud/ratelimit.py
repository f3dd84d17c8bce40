"""A per-account token bucket, shared by every caller in the process.

The cloud throttles per account (`Throttling.User`), so every client signed with the same AccessKey
against the same endpoint draws from one bucket, whichever gateway or thread makes the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` calls per second, at most `burst` at once. `acquire` blocks until the caller's turn.

    A caller that finds no token reserves the next one (the balance goes negative) and sleeps until
    it is due, so waiting callers are served in arrival order without polling.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._updated = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def retune(self, rate: float) -> None:
        with self._lock:
            self._refill()
            self._rate = rate

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self._rate
        if wait > 0:
            self._sleep(wait)
        return wait

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


class RateLimiterRegistry:
    """One bucket per (endpoint, AccessKey id), created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def get(self, endpoint: str, access_key_id: str, rate: float) -> TokenBucket:
        """The account's bucket; a changed `rate` (new settings) retunes it rather than forking it."""
        key = (endpoint, access_key_id)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate)
            elif bucket.rate != rate:
                bucket.retune(rate)
            return bucket

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


limiters = RateLimiterRegistry()
"""The process-wide registry: a warm function instance keeps its buckets across invocations."""
