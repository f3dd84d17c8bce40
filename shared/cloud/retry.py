"""The one path every SDK call takes: rate limit, call, map the error, maybe retry.

What is retried:

- throttling (`Throttling*`), for every action: the cloud refused the call before acting on it;
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
from typing import Any, TypeVar

from shared.cloud.errors import map_error
from shared.cloud.ratelimit import TokenBucket
from shared.errors import AmbiguousOutcome, CloudError

T = TypeVar("T")

log = logging.getLogger(__name__)

NOT_IDEMPOTENT = frozenset({"CreateAccessKey", "CreateLoginProfile"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: try n waits uniformly in [0, min(cap, base * 2**(n-1))]."""

    max_attempts: int = 6
    base_delay: float = 0.1
    max_delay: float = 5.0
    not_idempotent: frozenset[str] = NOT_IDEMPOTENT

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
        limiter: TokenBucket,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        stats: CallStats | None = None,
    ):
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.stats = stats or CallStats()
        self._sleep = sleep
        self._rand = rand

    def call(self, action: str, fn: Callable[[], T], *, idempotent: bool | None = None) -> T:
        """`fn()` (one SDK call named `action`), retried as the module docstring says.

        `idempotent` overrides the policy's view of the action for this one call.
        """
        if idempotent is None:
            idempotent = action not in self.policy.not_idempotent
        self.stats.add(calls=1)
        attempt = 0
        while True:
            attempt += 1
            waited = self.limiter.acquire()
            self.stats.add(action, attempts=1, rate_limit_wait=waited)
            try:
                return fn()
            except Exception as exc:
                error = map_error(exc, action)
                if error is None:
                    raise
                retry_after = _retry_after_seconds(exc)
            error = self._judge(action, error, attempt, idempotent)
            if error is not None:
                raise error
            delay = self.policy.backoff(attempt, self._rand(), retry_after=retry_after)
            self.stats.add(retries=1, backoff_wait=delay)
            self._sleep(delay)

    def _judge(self, action: str, error: CloudError, attempt: int, idempotent: bool) -> CloudError | None:
        """None to try again, else the error to raise."""
        throttled = error.code.startswith("Throttling")
        if throttled:
            self.stats.add(throttled=1)
        elif error.retryable and not idempotent:
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
