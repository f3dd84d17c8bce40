"""The one path every SDK call takes: rate limit, call, map the error, maybe retry.

What is retried:

- throttling (`Throttling*`), for every action: the cloud refused the call before acting on it. The
  limiter is told (the shared budget lowers its rate) and the call waits its turn again, for as long
  as the invocation has time (`max_wait`), not a fixed number of tries; when the time is up it raises
  BudgetExhausted, which sends the event back to be retried later instead of failing it;
- 5xx answers, timeouts and connection errors, for idempotent actions only. Repeating a create whose
  first try did land answers `EntityAlreadyExists`, a delete answers `EntityNotExist`: outcomes the
  flows already treat as done.

`CreateAccessKey` and `CreateLoginProfile` are not idempotent in that sense: a second AccessKey would
be minted (and the first one's secret lost), and a duplicate login profile could not be told apart
from someone else's. Nor is setting a password with `UpdateLoginProfile` (the repeat may be refused by
the password-reuse rule although the first try landed); callers say so per call. After an ambiguous
failure these raise `AmbiguousOutcome` and the crash-safe flow finds out what happened before it
tries again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from shared.cloud.errors import map_error
from shared.errors import AmbiguousOutcome, BudgetExhausted, CloudError

T = TypeVar("T")

log = logging.getLogger(__name__)

NOT_IDEMPOTENT = frozenset({"CreateAccessKey", "CreateLoginProfile"})
DEADLINE_MARGIN = 5.0
"""Seconds kept at the end of an invocation for the ledger and the reply, never spent waiting."""


class Limiter(Protocol):
    """What a runner draws on before each request (`TokenBucket`, `AccountBudget`)."""

    def acquire(self, action: str = "", max_wait: float | None = None) -> float: ...

    def throttled(self, action: str = "") -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: try n waits uniformly in [0, min(cap, base * 2**(n-1))]."""

    max_attempts: int = 6
    base_delay: float = 0.1
    max_delay: float = 5.0
    not_idempotent: frozenset[str] = NOT_IDEMPOTENT
    max_wait: float = 30.0
    """Seconds a call may wait for budget (tokens and throttled retries together), at most the
    time its invocation has left."""

    def backoff(self, retry: int, rand: float, *, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based); never less than the cloud asked."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return max(rand * ceiling, min(retry_after or 0.0, self.max_delay))


@dataclass
class CallStats:
    """Counters the benchmarks and the demo read: what the runner sent and how often it had to wait."""

    calls: int = 0  # runner.call invocations
    attempts: int = 0  # requests sent
    retries: int = 0
    throttled: int = 0  # Throttling.* answers
    budget_exhausted: int = 0  # calls given up for want of budget (the event is retried later)
    failures: int = 0  # calls that ended in an error (EntityNotExist included)
    ambiguous: int = 0  # of which AmbiguousOutcome
    rate_limit_wait: float = 0.0  # seconds spent waiting for a token
    backoff_wait: float = 0.0  # seconds slept between attempts
    attempts_by_action: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, action: str | None = None, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
            if action is not None:
                self.attempts_by_action[action] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "attempts": self.attempts,
                "retries": self.retries,
                "throttled": self.throttled,
                "budget_exhausted": self.budget_exhausted,
                "failures": self.failures,
                "ambiguous": self.ambiguous,
                "rate_limit_wait": round(self.rate_limit_wait, 6),
                "backoff_wait": round(self.backoff_wait, 6),
                "attempts_by_action": dict(self.attempts_by_action),
            }


class CloudRunner:
    """Runs SDK calls for one account: shared rate limit, error mapping, retries, statistics."""

    def __init__(
        self,
        limiter: Limiter,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        stats: CallStats | None = None,
        deadline: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ):
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.stats = stats or CallStats()
        self._sleep = sleep
        self._rand = rand
        self._deadline = deadline
        self._clock = clock

    def _give_up_at(self) -> float:
        """When waiting for budget must stop: `max_wait` from now, and a margin before the deadline
        of the invocation (epoch seconds) so that it can still record what it did."""
        now = self._clock()
        until = now + self.policy.max_wait
        deadline = self._deadline()
        if deadline is not None:
            until = min(until, deadline - DEADLINE_MARGIN)
        return until

    def call(self, action: str, fn: Callable[[], T], *, idempotent: bool | None = None) -> T:
        """`fn()` (one SDK call named `action`), retried as the module docstring says.

        `idempotent` overrides the policy's view of the action for this one call.
        """
        if idempotent is None:
            idempotent = action not in self.policy.not_idempotent
        self.stats.add(calls=1)
        give_up_at = self._give_up_at()
        attempt = 0  # tries that ended in anything but throttling
        throttled = 0
        while True:
            try:
                waited = self.limiter.acquire(action, max(0.0, give_up_at - self._clock()))
            except BudgetExhausted:
                self.stats.add(budget_exhausted=1)
                raise
            self.stats.add(action, attempts=1, rate_limit_wait=waited)
            try:
                return fn()
            except Exception as exc:
                error = map_error(exc, action)
                if error is None:
                    raise
                retry_after = _retry_after_seconds(exc)
            if error.code.startswith("Throttling"):
                throttled += 1
                self.stats.add(throttled=1)
                self.limiter.throttled(action)
                delay = self.policy.backoff(throttled, self._rand(), retry_after=retry_after)
                if self._clock() + delay > give_up_at:
                    self.stats.add(budget_exhausted=1)
                    raise BudgetExhausted(action, delay) from error
            else:
                attempt += 1
                judged = self._judge(action, error, attempt, idempotent)
                if judged is not None:
                    raise judged
                delay = self.policy.backoff(attempt, self._rand(), retry_after=retry_after)
            self.stats.add(retries=1, backoff_wait=delay)
            self._sleep(delay)

    def wait(self, seconds: float) -> None:
        """Sleep between calls for a reason the cloud documents (e.g. a resource still being created),
        counted with the backoff waits."""
        self.stats.add(backoff_wait=seconds)
        self._sleep(seconds)

    def _judge(self, action: str, error: CloudError, attempt: int, idempotent: bool) -> CloudError | None:
        """None to try again, else the error to raise (throttling is handled by the caller)."""
        if error.retryable and not idempotent:
            self.stats.add(failures=1, ambiguous=1)
            return AmbiguousOutcome(
                error.code,
                "the call may have taken effect; find out before trying again",
                action=action,
                status=error.status,
                request_id=error.request_id,
            )
        if error.retryable and attempt < self.policy.max_attempts:
            log.debug("retrying %s after %s (attempt %d)", action, error.code, attempt)
            return None
        self.stats.add(failures=1)
        return error


def _retry_after_seconds(exc: BaseException) -> float | None:
    """The SDK's `x-acs-retry-after` hint, in milliseconds on the exception."""
    millis = getattr(exc, "retry_after", None)
    return millis / 1000.0 if isinstance(millis, int | float) and millis > 0 else None
