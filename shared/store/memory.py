"""An in-process backend for unit tests: atomic across threads, invisible to other processes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from shared.store.base import BaseBackend, expiry


@dataclass(frozen=True)
class _Entry:
    text: str
    version: int
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


class MemoryBackend(BaseBackend):
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(self, key: str) -> tuple[str, int] | None:
        with self._lock:
            entry = self._live(key, time.time())
        return None if entry is None else (entry.text, entry.version)

    def _scan(self, prefix: str) -> Iterable[tuple[str, str, int]]:
        now = time.time()
        with self._lock:
            entries = list(self._entries.items())
        return [(key, e.text, e.version) for key, e in entries if key.startswith(prefix) and e.live(now)]

    def _swap(
        self, key: str, expected_version: int | None, text: str | None, ttl_seconds: float | None
    ) -> bool:
        now = time.time()
        with self._lock:
            current = self._live(key, now)
            if (current.version if current else None) != expected_version:
                return False
            if text is None:
                del self._entries[key]
            else:
                self._entries[key] = _Entry(text, next(self._versions), expiry(ttl_seconds, now))
            return True

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and not entry.live(now):
            del self._entries[key]
            return None
        return entry
