"""The drift sweep in slices: a cursor in the store, resumed after a stop or a crash, one sweep at
a time, per-user locks that never turn an offboarding away."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.flows import reconcile as reconcile_module
from shared.flows.offboard import offboard_event
from shared.flows.reconcile import reconcile
from shared.models.events import UserOffboarded
from shared.store.sweep import SweepLog
from tests.flows.test_offboard_world import World, make_world, offboarded

NAMES = [f"u{i}" for i in range(7)]


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


@pytest.fixture
def drifted(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """Seven managed users, each added to a group by hand (drift); slices of three."""
    for name in NAMES:
        world.provision(name, f"{name}@example.com", ticket=f"T-{name}")
        world.add_to_group(name, "admins")
    monkeypatch.setattr(reconcile_module, "SLICE", 3)
    return world


def drifted_users(result: Any) -> list[str]:
    return sorted({d["user_name"] for d in result.plan["drift"]})


def test_a_sweep_goes_on_from_its_cursor_tick_after_tick(drifted: World) -> None:
    first = reconcile(drifted.runtime(), max_users=3).result()
    assert drifted_users(first) == NAMES[:3]
    assert first.plan["sweep"]["checked"] == 3 and first.plan["sweep"]["total"] == 7
    assert first.plan["sweep"]["finished"] is False and first.plan["sweep"]["eta_seconds"] is not None

    second = reconcile(drifted.runtime(), max_users=3).result()
    third = reconcile(drifted.runtime(), max_users=3).result()
    assert drifted_users(second) == NAMES[3:6] and drifted_users(third) == NAMES[6:]
    assert third.plan["sweep"]["finished"] is True and third.plan["sweep"]["checked"] == 7
    assert third.plan["sweep"]["sweep_id"] == first.plan["sweep"]["sweep_id"]

    again = reconcile(drifted.runtime()).result()  # the next sweep starts over
    assert (
        drifted_users(again) == NAMES and again.plan["sweep"]["sweep_id"] != first.plan["sweep"]["sweep_id"]
    )


def test_a_crashed_tick_resumes_after_the_last_slice_it_saved(
    drifted: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    examine = reconcile_module._examine

    def dies_at_u4(rt: Any, stepper: Any, name: str, *args: Any) -> Any:
        if name == "u4":
            raise SystemExit("killed")
        return examine(rt, stepper, name, *args)

    monkeypatch.setattr(reconcile_module, "_examine", dies_at_u4)
    monkeypatch.setattr(SweepLog, "release", lambda self, record: None)  # a killed process lets go of nothing
    with pytest.raises(SystemExit):
        reconcile(drifted.runtime())
    monkeypatch.undo()
    monkeypatch.setattr(reconcile_module, "SLICE", 3)

    # the dead tick's lease is live until it runs out: the next tick waits rather than overlap
    assert reconcile(drifted.runtime()).result().status == "in_progress"
    backend = drifted.runtime().store.backend
    doc = backend.get("reconcile:sweep")
    assert doc is not None and doc.value["cursor"] == "u2" and doc.value["checked"] == 3
    backend.put_if_version("reconcile:sweep", {**doc.value, "lease_until": 0.0}, doc.version)  # time passes

    resumed = reconcile(drifted.runtime()).result()
    assert drifted_users(resumed) == NAMES[3:]  # from the cursor on: u0–u2 are not examined twice
    assert resumed.plan["sweep"]["finished"] is True and resumed.plan["sweep"]["checked"] == 7


def test_two_sweeps_never_overlap(drifted: World) -> None:
    """Two ticks at once: one sweeps, the other answers in_progress and makes no call."""
    drifted.emulator.faults.latency_ms = 20
    results: dict[str, Any] = {}
    started = threading.Barrier(2)

    def tick(label: str) -> None:
        started.wait()
        results[label] = reconcile(drifted.runtime()).result()

    threads = [threading.Thread(target=tick, args=(label,)) for label in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in results.values())
    assert statuses == ["completed", "in_progress"]
    swept = next(r for r in results.values() if r.status == "completed")
    assert drifted_users(swept) == NAMES
    assert [c.action for c in drifted.emulator.recorder.calls].count("ListUsers") >= 1
    assert sum(1 for c in drifted.emulator.recorder.calls if c.action == "ListGroupsForUser") == len(NAMES)


@pytest.mark.slow
def test_an_offboarding_is_never_turned_away_by_a_sweep(world: World) -> None:
    """The owner's users are examined by the sweep while the HR event arrives: the event waits a
    moment for each user's lock, never finds them 'being changed', and disables all of them."""
    world.emulator.faults.latency_ms = 20
    others = [f"s{i:02d}" for i in range(30)]
    leaver = [f"s{i:02d}x" for i in range(10)]  # sorted among the others: the sweep reaches them early
    for name in others:
        world.provision(name, "other@example.com", ticket=f"T-{name}")
    for name in leaver:
        world.provision(name, "leaver@example.com", ticket=f"T-{name}")
    sweep: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: sweep.update(result=reconcile(world.runtime()).result()))
    thread.start()
    deadline = time.monotonic() + 60
    while not any(c.action == "ListGroupsForUser" for c in world.emulator.recorder.calls):
        assert time.monotonic() < deadline, "the sweep never began examining users"
        time.sleep(0.01)

    data = UserOffboarded(owner="leaver@example.com", hr_event_id="WD-1")
    result = offboard_event(data, offboarded(owner="leaver@example.com"), world.runtime())
    thread.join()

    assert result.status == "completed", result.errors
    assert all(world.holds(name) is None for name in leaver)  # grace P0D: deleted
    assert sweep["result"].status in ("completed", "partial")
