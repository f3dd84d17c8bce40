"""Token buckets kept in the state store, so every function instance draws on one API budget.

The cloud counts calls per account (and per API), not per process: five FC instances each pacing
themselves at the account's rate send five times too much. Each bucket is therefore one record in
the shared store, and a call takes a token from every bucket that limits it in one atomic step:

- Redis: one Lua script over all the call's buckets, on the server's clock (`TIME`), one round trip;
- any other backend (memory, Tablestore): the bucket is a versioned document changed by
  compare-and-set (`put_if_version` / `put_if_absent`, Tablestore's conditional PutRow), retried on
  a lost race, on the caller's clock;
- SQLite, the local single-machine store: the same documents in a memory store per database file,
  shared by every connection of the process (an fsync'd write per call would double each call's
  cost). Processes that must share one budget (several `ramflow serve`) use Redis.

A caller that finds no token reserves the next one (the balance goes negative) and sleeps until it
is due, so waiting callers of every instance are served in arrival order without polling. A caller
that would wait longer than it may (`max_wait`: its invocation ends first) reserves nothing and is
told how long it would have waited.

The rate adapts (AIMD): a throttled answer from the cloud `cut`s the bucket's rate by a factor (at
most once per `CUT_COOLDOWN` seconds, since every call in flight comes back throttled at once), and
the rate climbs back towards the configured ceiling by `RECOVERY` × ceiling per second.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shared.store.base import KeyValueBackend
from shared.store.memory import MemoryBackend
from shared.store.sqlite import SqliteBackend

if TYPE_CHECKING:
    from shared.store.redis import RedisBackend

PREFIX = "budget:"
IDLE_TTL = 3600.0
"""A bucket nobody used for an hour is forgotten (it would be full again by then anyway)."""
RECOVERY = 0.1
"""Additive increase: a cut rate regains 10 % of its ceiling per second (3/4 → full in 2.5 s)."""
CUT_COOLDOWN = 1.0
"""Throttled answers within a second of a cut are the same congestion: one cut, not one per call."""
FLOOR = 0.05
"""A rate is never cut below 5 % of its ceiling (nor below one call in 10 s)."""


@dataclass(frozen=True)
class Bucket:
    """One limit on a call: `rate` calls per second at most (the ceiling), `burst` at once."""

    key: str
    rate: float
    burst: float = 1.0

    def floor(self) -> float:
        return max(self.rate * FLOOR, 0.1)


class BudgetStore(Protocol):
    def take(self, buckets: Sequence[Bucket], max_wait: float) -> tuple[bool, float]:
        """One token from every bucket, or none: (taken, seconds until it is due)."""
        ...

    def cut(self, bucket: Bucket, factor: float) -> float:
        """The cloud throttled a call this bucket let through: lower its rate; returns the new rate."""
        ...

    def rate(self, bucket: Bucket) -> float:
        """The bucket's current (possibly cut) rate."""
        ...


def budget_store(backend: KeyValueBackend, *, clock: Callable[[], float] = time.time) -> BudgetStore:
    """The fastest implementation the backend allows: a Lua script on Redis, else compare-and-set."""
    # A RedisBackend exists only once its module is loaded: looking there keeps redis-py out of
    # the functions whose store is not Redis.
    redis_store = sys.modules.get("shared.store.redis")
    if redis_store is not None and isinstance(backend, redis_store.RedisBackend):
        return RedisBudget(backend)
    if isinstance(backend, SqliteBackend):
        with _local_lock:
            backend = _local.setdefault(str(backend.path), MemoryBackend())
    return DocumentBudget(backend, clock=clock)


_local: dict[str, MemoryBackend] = {}
_local_lock = threading.Lock()


# --- the arithmetic both implementations share (the Lua script repeats it) -------------------------
def _not_before(state: dict[str, Any] | None, now: float) -> float:
    """`now`, or the bucket's own time if a concurrent taker's clock read is later: time written
    never goes back, so no interval is refilled twice."""
    return now if state is None else max(now, float(state["ts"]))


def _refilled(state: dict[str, Any] | None, bucket: Bucket, now: float) -> tuple[float, float, float]:
    """(tokens, rate, last cut) of a bucket brought up to `now`."""
    if state is None:
        return bucket.burst, bucket.rate, 0.0
    elapsed = max(0.0, now - float(state["ts"]))
    rate = min(bucket.rate, float(state["rate"]) + bucket.rate * RECOVERY * elapsed)
    tokens = min(bucket.burst, float(state["tokens"]) + elapsed * rate)
    return tokens, rate, float(state.get("cut", 0.0))


def _due(tokens: float, rate: float) -> float:
    return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate


class DocumentBudget:
    """Buckets as store documents changed by compare-and-set (memory, SQLite, Tablestore)."""

    def __init__(self, backend: KeyValueBackend, *, clock: Callable[[], float] = time.time):
        self._backend = backend
        self._clock = clock

    def take(self, buckets: Sequence[Bucket], max_wait: float) -> tuple[bool, float]:
        # Buckets are taken one at a time, but a token is only kept once every bucket gave one:
        # a later bucket that would make the caller wait too long hands the earlier ones back.
        taken: list[Bucket] = []
        wait = 0.0
        for bucket in buckets:
            ok, due = self._take_one(bucket, max_wait)
            if not ok:
                for earlier in taken:
                    self._give_back(earlier)
                return False, due
            taken.append(bucket)
            wait = max(wait, due)
        return True, wait

    def cut(self, bucket: Bucket, factor: float) -> float:
        while True:
            doc = self._backend.get(PREFIX + bucket.key)
            now = _not_before(doc.value if doc else None, self._clock())
            tokens, rate, last_cut = _refilled(doc.value if doc else None, bucket, now)
            if now - last_cut >= CUT_COOLDOWN:
                rate, last_cut = max(bucket.floor(), rate * factor), now
                tokens = min(tokens, 0.0)
            if self._write(bucket, doc, {"tokens": tokens, "rate": rate, "ts": now, "cut": last_cut}):
                return rate

    def rate(self, bucket: Bucket) -> float:
        doc = self._backend.get(PREFIX + bucket.key)
        return _refilled(doc.value if doc else None, bucket, self._clock())[1]

    def _take_one(self, bucket: Bucket, max_wait: float) -> tuple[bool, float]:
        while True:
            doc = self._backend.get(PREFIX + bucket.key)
            now = _not_before(doc.value if doc else None, self._clock())
            tokens, rate, last_cut = _refilled(doc.value if doc else None, bucket, now)
            due = _due(tokens, rate)
            if due > max_wait:
                return False, due
            if self._write(bucket, doc, {"tokens": tokens - 1.0, "rate": rate, "ts": now, "cut": last_cut}):
                return True, due

    def _give_back(self, bucket: Bucket) -> None:
        while True:
            doc = self._backend.get(PREFIX + bucket.key)
            if doc is None:
                return
            value = dict(doc.value, tokens=min(bucket.burst, float(doc.value["tokens"]) + 1.0))
            if self._write(bucket, doc, value):
                return

    def _write(self, bucket: Bucket, doc: Any, value: dict[str, float]) -> bool:
        key = PREFIX + bucket.key
        if doc is None:
            return self._backend.put_if_absent(key, value, IDLE_TTL)
        return self._backend.put_if_version(key, value, doc.version, IDLE_TTL)


# KEYS: the buckets. ARGV: max_wait, recovery, ttl_ms, then (rate, burst) per bucket.
# Returns {taken (0/1), wait as a string} (Lua numbers would be truncated to integers).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_wait, recovery, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local states, wait = {}, 0
for i, key in ipairs(KEYS) do
  local ceiling, burst = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local s = redis.call('HMGET', key, 'tokens', 'ts', 'rate', 'cut')
  local tokens, rate, cut = burst, ceiling, 0
  if s[1] then
    local elapsed = math.max(0, now - tonumber(s[2]))
    rate = math.min(ceiling, tonumber(s[3]) + ceiling * recovery * elapsed)
    tokens = math.min(burst, tonumber(s[1]) + elapsed * rate)
    cut = tonumber(s[4]) or 0
  end
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
  states[i] = {tokens, rate, cut}
end
if wait > max_wait then return {0, tostring(wait)} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tostring(states[i][1] - 1), 'ts', tostring(now),
             'rate', tostring(states[i][2]), 'cut', tostring(states[i][3]))
  redis.call('PEXPIRE', key, ttl)
end
return {1, tostring(wait)}
"""

# KEYS: one bucket. ARGV: ceiling, burst, factor, floor, recovery, cooldown, ttl_ms. Returns the rate.
_CUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ceiling, burst, factor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local floor, recovery, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'rate', 'cut')
local tokens, rate, cut = burst, ceiling, 0
if s[1] then
  local elapsed = math.max(0, now - tonumber(s[2]))
  rate = math.min(ceiling, tonumber(s[3]) + ceiling * recovery * elapsed)
  tokens = math.min(burst, tonumber(s[1]) + elapsed * rate)
  cut = tonumber(s[4]) or 0
end
if now - cut >= cooldown then
  rate = math.max(floor, rate * factor)
  tokens = math.min(tokens, 0)
  cut = now
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now), 'rate', tostring(rate),
           'cut', tostring(cut))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
return tostring(rate)
"""


class RedisBudget:
    """Buckets as Redis hashes under the store's namespace, changed by Lua scripts."""

    def __init__(self, backend: RedisBackend):
        client = backend.client
        self._prefix = backend.namespace + PREFIX
        self._client = client
        self._take = client.register_script(_TAKE)
        self._cut = client.register_script(_CUT)

    def take(self, buckets: Sequence[Bucket], max_wait: float) -> tuple[bool, float]:
        args: list[Any] = [repr(float(max_wait)), repr(RECOVERY), str(int(IDLE_TTL * 1000))]
        for bucket in buckets:
            args += [repr(float(bucket.rate)), repr(float(bucket.burst))]
        taken, wait = self._take(keys=[self._prefix + b.key for b in buckets], args=args)
        return bool(int(taken)), float(_text(wait))

    def cut(self, bucket: Bucket, factor: float) -> float:
        args = [
            bucket.rate,
            bucket.burst,
            factor,
            bucket.floor(),
            RECOVERY,
            CUT_COOLDOWN,
            int(IDLE_TTL * 1000),
        ]
        return float(_text(self._cut(keys=[self._prefix + bucket.key], args=[repr(a) for a in args])))

    def rate(self, bucket: Bucket) -> float:
        state = self._client.hgetall(self._prefix + bucket.key)
        if not state:
            return bucket.rate
        decoded = {_text(k): _text(v) for k, v in state.items()}
        now = time.time()  # only for reporting: the scripts use the server's clock
        return _refilled(decoded, bucket, now)[1]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
