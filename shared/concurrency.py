"""Independent calls of one step, run side by side: every outcome is collected, none stops the rest."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one named task returned, or the exception it raised."""

    name: str
    value: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        """The value, or the task's exception raised again."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def run_all(tasks: Iterable[tuple[str, Callable[[], T]]], max_workers: int) -> list[Outcome[T]]:
    """Run every task on at most `max_workers` threads; outcomes come back in the tasks' order.

    Each task runs in a copy of the caller's context, so context variables (request ids for the
    audit trail) follow it onto the worker thread.
    """
    tasks = list(tasks)
    if max_workers <= 1 or len(tasks) <= 1:
        return [_run(name, fn) for name, fn in tasks]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(tasks)), thread_name_prefix="step") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _run, name, fn) for name, fn in tasks]
        return [future.result() for future in futures]


def failures(outcomes: Iterable[Outcome[T]]) -> list[Outcome[T]]:
    return [outcome for outcome in outcomes if not outcome.ok]


def _run(name: str, fn: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(name, value=fn())
    except Exception as exc:
        return Outcome(name, error=exc)
