"""Rate limits on cloud calls: the account's API budget in the state store, and an in-process bucket.

The cloud throttles per account and per API (`Throttling.User`), so every FC instance draws on one
`AccountBudget` kept in the shared store. `TokenBucket` is the same idea inside one process, for a
runner built without a store (tools and tests that call the cloud directly).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import BudgetExhausted

if TYPE_CHECKING:  # the store's budget loads only where a runner draws on it, not in the token vendor
    from shared.store.budget import Bucket, BudgetStore


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

    def acquire(self, action: str = "", max_wait: float | None = None) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited.

        One bucket for every action; BudgetExhausted (nothing taken) if the wait would pass `max_wait`."""
        with self._lock:
            self._refill()
            wait = 0.0 if self._tokens >= 1 else (1.0 - self._tokens) / self._rate
            if max_wait is not None and wait > max_wait:
                raise BudgetExhausted(action, wait)
            self._tokens -= 1.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self, action: str = "") -> None:
        """The in-process bucket keeps its rate: the runner's backoff absorbs the throttling."""

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


# --- the account's API budget, shared by every instance through the state store --------------------
RAM_QUOTAS_URL = "https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-quota"
STS_QUOTA_URL = "https://www.alibabacloud.com/notice/ram20220829"


@dataclass(frozen=True)
class QuotaGroup:
    """APIs the cloud limits alike: each API of the group gets `rate` calls per second per account."""

    name: str
    rate: float
    source: str


QUOTA_GROUPS = {
    # RAM's Quota Center page (limit dimension: region, API, account): Get*/List* 100/s, ListTagResources
    # 100/s; most writes 20/s (CreateAccessKey, UpdateAccessKey, DeleteLoginProfile, DeleteUser, ...).
    "read": QuotaGroup("read", 100.0, RAM_QUOTAS_URL),
    "write": QuotaGroup("write", 20.0, RAM_QUOTAS_URL),
    # 10/s: AttachPolicyToUser, AddUserToGroup, RemoveUserFromGroup, AttachPolicyToRole,
    # DetachPolicyFromGroup/FromRole, UntagResources on the same page.
    "slow-write": QuotaGroup("slow-write", 10.0, RAM_QUOTAS_URL),
    # STS AssumeRole: 100 requests per second per account, RAM users' and roles' calls included.
    "assume-role": QuotaGroup("assume-role", 100.0, STS_QUOTA_URL),
}

SLOW_WRITES = frozenset(
    {
        "AttachPolicyToUser",
        "DetachPolicyFromUser",  # not on the page; as its pair AttachPolicyToUser
        "AttachPolicyToGroup",  # as DetachPolicyFromGroup
        "DetachPolicyFromGroup",
        "AttachPolicyToRole",
        "DetachPolicyFromRole",
        "AddUserToGroup",
        "RemoveUserFromGroup",
        "TagResources",  # as UntagResources
        "UntagResources",
        "AttachPolicy",  # ResourceManager: its quotas are not published; as RAM's attach/detach
        "DetachPolicy",
    }
)


def quota_group(action: str) -> QuotaGroup:
    """The group whose per-API rate the cloud applies to `action` (IMS and ResourceManager, whose
    own quotas are not published next to RAM's, are given RAM's by analogy: reads 100/s, writes 20/s)."""
    if action == "AssumeRole":
        return QUOTA_GROUPS["assume-role"]
    if action.startswith(("Get", "List")):
        return QUOTA_GROUPS["read"]
    if action in SLOW_WRITES:
        return QUOTA_GROUPS["slow-write"]
    return QUOTA_GROUPS["write"]


DECREASE = 0.75
BURST_SECONDS = 0.5
"""A quiet bucket lets half a second's calls through at once. The quotas are counted per second
("20/1(s)"), so a burst within the second is allowed; half of it leaves the cloud's own bucket
headroom for the difference between its clock and ours."""
"""Multiplicative decrease of a bucket's rate when the cloud throttles a call it let through: gentle,
since the configured rate is the published quota and a throttle usually means a moment's bunching."""


class AccountBudget:
    """The limiter a runner draws on: two buckets per call, both in the shared store.

    - `account`: ramflow's own share of the account, `RAMFLOW_RATE_LIMIT_QPS` (the functions are not
      the account's only API callers), shared by every API;
    - `api:<Action>`: the cloud's own per-API limit, at its quota group's rate (never above the share).

    Every instance using the same store and endpoint draws on the same buckets. A throttled answer
    cuts both buckets' rates (AIMD, see shared/store/budget.py); they recover by themselves.
    """

    def __init__(
        self, store: BudgetStore, scope: str, rate: float, *, sleep: Callable[[float], None] = time.sleep
    ):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._store = store
        self._scope = scope
        self._rate = rate
        self._sleep = sleep

    @property
    def rate(self) -> float:
        return self._rate

    def buckets(self, action: str) -> list[Bucket]:
        from shared.store.budget import Bucket

        group = quota_group(action)
        account, api = self._rate, min(group.rate, self._rate)
        return [
            Bucket(f"{self._scope}:account", account, burst=max(1.0, account * BURST_SECONDS)),
            Bucket(f"{self._scope}:api:{action}", api, burst=max(1.0, api * BURST_SECONDS)),
        ]

    def acquire(self, action: str = "", max_wait: float | None = None) -> float:
        """Wait for a token of `action`'s buckets; BudgetExhausted if it would come after `max_wait`."""
        taken, wait = self._store.take(self.buckets(action), float("inf") if max_wait is None else max_wait)
        if not taken:
            raise BudgetExhausted(action, wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self, action: str = "") -> None:
        for bucket in self.buckets(action):
            self._store.cut(bucket, DECREASE)

    def current_rate(self, action: str = "") -> float:
        """The rate `action` is paced at now (the smaller of its buckets', after any cut)."""
        return min(self._store.rate(b) for b in self.buckets(action))
