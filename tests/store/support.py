"""Helpers for the store tests: a thread race and a clock the test moves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shared.store import KeyValueBackend

T = TypeVar("T")


def race(action: Callable[[int], T], threads: int = 32) -> list[T]:
    """Run `action(0..threads-1)` on as many threads, released together; their results in order."""
    start = threading.Barrier(threads, timeout=60)

    def run(index: int) -> T:
        start.wait()
        return action(index)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


def increment(backend: KeyValueBackend, key: str) -> None:
    """Add one to the counter document at `key`, by compare-and-set, however often it must retry."""
    while True:
        doc = backend.get(key)
        if doc is None:
            if backend.put_if_absent(key, {"n": 1}):
                return
        elif backend.put_if_version(key, {"n": doc.value["n"] + 1}, doc.version):
            return


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
