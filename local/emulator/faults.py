"""Fault and load controls: latency, a QPS limit, random 5xx, and 'fail the Nth call'."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class FailPlan:
    """Fail call number `nth` (1-based, counting calls that reached the emulator after arming).

    `when="after"` lets the call take effect and then answers 500, like a crash after the cloud
    acted but before the caller saw the reply; `"before"` fails it without effect.
    """

    nth: int
    when: str = "after"
    actions: frozenset[str] | None = None
    seen: int = 0


@dataclass
class FaultControls:
    latency_ms: float = 0.0
    qps: float | None = None
    fault_rate: float = 0.0
    lost_reply_share: float = 0.0
    """Of the random faults, the share that strike after the call took effect (a 500 whose action
    happened: the reply was lost); the others are 503s without effect."""
    seed: int | None = None
    _plan: FailPlan | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tokens: float = 0.0
    _bucket_qps: float | None = None
    _last: float = field(default_factory=time.monotonic)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def fail_nth_call(self, nth: int, *, when: str = "after", actions: set[str] | None = None) -> None:
        if when not in {"before", "after"}:
            raise ValueError("when must be 'before' or 'after'")
        with self._lock:
            self._plan = FailPlan(nth=nth, when=when, actions=frozenset(actions) if actions else None)

    def set_qps(self, qps: float | None, *, start_full: bool) -> None:
        """Limit calls to `qps` a second (None: no limit), the bucket starting with a full second's
        burst (a quiet account) or empty (the limit bites from the first call)."""
        with self._lock:
            self.qps = qps
            self._bucket_qps = qps
            self._tokens = float(qps) if qps and start_full else 0.0
            self._last = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._plan = None
            self.latency_ms = 0.0
            self.qps = None
            self.fault_rate = 0.0
            self.lost_reply_share = 0.0

    def take_token(self) -> bool:
        """Token bucket of `qps` tokens per second, burst of one second's worth."""
        if not self.qps:
            return True
        with self._lock:
            if self.qps != self._bucket_qps:  # the limit was (re)set: start with a full bucket
                self._bucket_qps, self._tokens = self.qps, self.qps
            now = time.monotonic()
            self._tokens = min(self.qps, self._tokens + (now - self._last) * self.qps)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def random_fault(self) -> bool:
        return self.fault_rate > 0 and self._rng.random() < self.fault_rate

    def lost_reply(self) -> bool:
        """Does this random fault strike after the call took effect?"""
        return self.lost_reply_share > 0 and self._rng.random() < self.lost_reply_share

    def planned_failure(self, action: str) -> str | None:
        """'before', 'after' or None for this call; the plan disarms once it fires."""
        with self._lock:
            plan = self._plan
            if plan is None or (plan.actions is not None and action not in plan.actions):
                return None
            plan.seen += 1
            if plan.seen < plan.nth:
                return None
            self._plan = None
            return plan.when

    def sleep(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)
