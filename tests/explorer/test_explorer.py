"""The interleaving explorer: for each ordered pair of events about one person, the second runs at
every boundary of the first (before and after every cloud call and every store write), then both
are redelivered until final and the invariants of tests/explorer/harness.py are checked.

Under CI (`CI=true`) every boundary of every pair is explored; elsewhere `make test` explores the
first 4 boundaries of each pair (the reads before the locks) and every 8th after, from an offset
that differs per pair, so it stays fast. `RAMFLOW_EXPLORE_STRIDE=N` sets the stride (1: everything). Each pair prints its counts
(`-s`): boundaries of the first event, runs explored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import product

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import Emulator
from local.emulator.inprocess import IN_PROCESS_ENDPOINT, mock_cloud
from local.testing import ROOT_CREDENTIALS, emulator_for_tests
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.store.memory import MemoryBackend
from tests.explorer.harness import KINDS, Harness, Person

CI = os.environ.get("CI", "").lower() == "true"
# every boundary under CI (≈ 1,560 runs, about 90 s); a sample on a developer's machine
STRIDE = max(1, int(os.environ.get("RAMFLOW_EXPLORE_STRIDE", "1" if CI else "8")))
EARLY = 4
SETTINGS = Settings(
    cloud_endpoint=IN_PROCESS_ENDPOINT,
    store="memory://",
    max_concurrency=1,  # one thread: the boundaries come in the same order on every run
    rate_limit_qps=1000.0,
    max_attempts=1,
    # The second event runs nested in the first, on its thread: a lock the first holds is not released
    # while the second waits for it, so the second finds it busy after any wait; it does not wait.
    user_lock_wait_seconds=0.0,
)


def prefix(first: str, second: str) -> list[str]:
    """What happened before the pair: the request (unless it is one of them), and the approval too
    when neither is, so revoke / offboard / reconcile have something to take away."""
    done = [] if "request" in (first, second) else ["request"]
    if not {"request", "approve"} & {first, second}:
        done.append("approve")
    return done


@pytest.fixture
def cloud() -> Iterator[Emulator]:
    with mock_cloud(emulator_for_tests()) as emulator:
        yield emulator


def fresh(emulator: Emulator) -> Harness:
    clients = CloudClients(SETTINGS, ROOT_CREDENTIALS)
    rg = clients.resource_manager.create_resource_group(
        rm_models.CreateResourceGroupRequest(name="payments", display_name="Payments")
    ).body.resource_group.id
    return Harness(emulator, MemoryBackend(), SETTINGS, Person(resource_group=rg))


def explore(first: str, second: str, boundary: int) -> tuple[int, list[str]]:
    """Run `first` with `second` at its `boundary`-th boundary (0: after it): (boundaries, violations)."""
    with mock_cloud(emulator_for_tests()) as emulator:
        h = fresh(emulator)
        h.settle(prefix(first, second))
        seen = 0
        second_final: list[bool] = []
        nested = [False]

        def at_boundary(when: str, what: str) -> None:
            nonlocal seen
            if nested[0] or second_final:
                return
            seen += 1
            if seen == boundary:
                nested[0] = True
                try:
                    second_final.append(h.deliver(second))
                finally:
                    nested[0] = False

        h.hooks.append(at_boundary)
        first_final = h.deliver(first)
        h.hooks.clear()
        pending = ([] if first_final else [first]) + ([] if second_final and second_final[0] else [second])
        h.settle(pending)
        return seen, [f"{first}→{second}@{boundary}: {v}" for v in h.violations()]


PAIRS = list(product(KINDS, KINDS))


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}-then-{b}" for a, b in PAIRS])
@pytest.mark.slow
def test_every_boundary_of_the_first_event_with_the_second_keeps_the_invariants(
    first: str, second: str
) -> None:
    boundaries, found = explore(first, second, 0)  # the second after the first: counts the boundaries
    explored = 1
    offset = KINDS.index(first) * len(KINDS) + KINDS.index(second)
    # the first boundaries always: a flow's reads before it takes its locks are where races hide
    chosen = set(range(1, min(boundaries, EARLY) + 1)) | set(
        range(1 + offset % STRIDE, boundaries + 1, STRIDE)
    )
    for boundary in sorted(chosen):
        _, more = explore(first, second, boundary)
        found += more
        explored += 1
    print(f"explorer {first}→{second}: {boundaries} boundaries, {explored} runs")
    assert boundaries > 0
    assert not found, "\n".join(found[:20])
