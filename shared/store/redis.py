"""The production backend on Redis (ApsaraDB for Redis / Tair).

Each document is a hash `{v: version, d: JSON}` under `<namespace>doc:<key>`; versions come from the
counter `<namespace>version`. The compare-and-set runs as one Lua script, so Redis executes it
atomically. Both keys of the script must live on one node: on a Redis Cluster give the namespace a
hash tag, e.g. `{ramflow}:`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import redis

from shared.store.base import BaseBackend

DEFAULT_NAMESPACE = "ramflow:"

# KEYS: document, version counter. ARGV: expected version ("" = absent), JSON ("" = delete), TTL in ms ("0" = none)
_SWAP = """
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
    return 1
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[2])
if ARGV[3] == '0' then
    redis.call('PERSIST', KEYS[1])
else
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class RedisBackend(BaseBackend):
    driver_errors = (redis.RedisError,)

    def __init__(self, client: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Owns `client` from now on: `close` closes it."""
        self.namespace = namespace
        self._client = client
        self._docs = f"{namespace}doc:"
        self._counter = f"{namespace}version"
        self._swap_script = client.register_script(_SWAP)

    @classmethod
    def from_url(cls, url: str, namespace: str = DEFAULT_NAMESPACE) -> RedisBackend:
        """`redis://[user:password@]host:port/db` or `rediss://…`; options in the URL win."""
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, namespace)

    @property
    def client(self) -> redis.Redis:
        """The connection, for scripts of their own (the API budget's token buckets)."""
        return self._client

    def close(self) -> None:
        self._client.close()

    def _get(self, key: str) -> tuple[str, int] | None:
        version, text = self._client.hmget(self._docs + key, "v", "d")
        return None if version is None else (_text(text), int(version))

    def _scan(self, prefix: str) -> Iterable[tuple[str, str, int]]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._docs + prefix) + "*"
        names = set(self._client.scan_iter(match=pattern, count=500))  # SCAN may repeat a key
        pipeline = self._client.pipeline(transaction=False)
        for name in names:
            pipeline.hmget(name, "v", "d")
        found = []
        for name, (version, text) in zip(names, pipeline.execute(), strict=True):
            if version is not None:  # expired or deleted since SCAN saw it
                found.append((_text(name).removeprefix(self._docs), _text(text), int(version)))
        return found

    def _swap(
        self, key: str, expected_version: int | None, text: str | None, ttl_seconds: float | None
    ) -> bool:
        ttl_ms = 0 if ttl_seconds is None else max(1, round(ttl_seconds * 1000))
        args = ["" if expected_version is None else str(expected_version), text or "", str(ttl_ms)]
        return bool(self._swap_script(keys=[self._docs + key, self._counter], args=args))


def _text(value: Any) -> str:
    """Clients made with decode_responses=False hand back bytes."""
    return value.decode() if isinstance(value, bytes) else value
