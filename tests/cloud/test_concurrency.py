"""run_all: bounded parallelism, outcomes in task order, every failure collected."""

from __future__ import annotations

import contextvars
import threading
import time
from functools import partial

import pytest

from shared.concurrency import Outcome, failures, run_all

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_outcomes_keep_the_task_order_whatever_finishes_first() -> None:
    delays = [0.05, 0.0, 0.03, 0.01]

    def task(i: int) -> int:
        time.sleep(delays[i])
        return i * 10

    outcomes = run_all([(f"t{i}", partial(task, i)) for i in range(4)], max_workers=4)
    assert [(o.name, o.value) for o in outcomes] == [("t0", 0), ("t1", 10), ("t2", 20), ("t3", 30)]


def test_failures_are_collected_and_do_not_stop_the_others() -> None:
    ran: list[str] = []

    def ok(name: str) -> str:
        ran.append(name)
        return name

    def boom() -> str:
        raise RuntimeError("detach failed")

    outcomes = run_all([("a", lambda: ok("a")), ("b", boom), ("c", lambda: ok("c"))], max_workers=2)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert sorted(ran) == ["a", "c"]
    assert [o.name for o in failures(outcomes)] == ["b"]
    assert isinstance(outcomes[1].error, RuntimeError)
    with pytest.raises(RuntimeError, match="detach failed"):
        outcomes[1].unwrap()
    assert outcomes[0].unwrap() == "a"


def test_exactly_max_workers_run_at_once() -> None:
    """Tasks meet in threes at a barrier (so three do run together); a fourth never joins them."""
    barrier = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    running = peak = 0

    def task() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()
        with lock:
            running -= 1

    outcomes = run_all([(str(i), task) for i in range(12)], max_workers=3)
    assert [o.error for o in outcomes if not o.ok] == []
    assert peak == 3


def test_one_worker_runs_inline_in_order() -> None:
    seen: list[str] = []

    def record(name: str) -> str:
        seen.append(name)
        return threading.current_thread().name

    outcomes = run_all([(n, partial(record, n)) for n in "xyz"], 1)
    assert seen == ["x", "y", "z"]
    assert {o.value for o in outcomes} == {threading.current_thread().name}


def test_tasks_see_the_callers_context() -> None:
    token = request_id.set("req-42")
    try:
        outcomes = run_all([(str(i), request_id.get) for i in range(4)], max_workers=4)
    finally:
        request_id.reset(token)
    assert [o.value for o in outcomes] == ["req-42"] * 4


def test_no_tasks_no_outcomes() -> None:
    assert run_all([], max_workers=8) == []
    assert Outcome("x", value=1).ok
