"""Disable first, with each user's progress in the ledger: a multi-user offboarding killed after any
cloud call resumes where it stopped, repeats no finished phase, and ends with no way in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.cloud.retry import CloudRunner
from shared.config import Settings
from shared.errors import FlowFailed
from shared.flows import reconcile as reconcile_module
from shared.flows.offboard import offboard, offboard_event
from shared.flows.reconcile import reconcile
from shared.handler import process_event
from shared.models.events import USER_OFFBOARDED, UserOffboarded
from shared.store.base import KeyValueBackend
from tests.flows.test_offboard_world import SYSTEM_POLICY, TEMPLATE, World, make_world, offboarded

FLOWS = {USER_OFFBOARDED: offboard}
DOORS = {"console": ("DeleteLoginProfile",), "keys": ("UpdateAccessKey", "DeleteAccessKey")}
RIGHTS = ("DetachPolicyFromUser", "DetachPolicy", "RemoveUserFromGroup")


class Killed(BaseException):
    """The instance was stopped: nothing after it runs, not even the `finally` that frees a lock."""


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


@contextmanager
def killed_after(
    n: int, backend: KeyValueBackend, monkeypatch: pytest.MonkeyPatch, *, writes: bool = False
) -> Iterator[dict[str, Any]]:
    """The n-th cloud call (or, with `writes`, cloud call or store write) takes effect, then the
    process dies: its answer, and every later cloud call or store write (any thread), raises Killed."""
    state: dict[str, Any] = {"calls": 0, "dead": False}
    lock = threading.Lock()
    original = CloudRunner.call

    def count() -> None:
        with lock:
            state["calls"] += 1
            state["dead"] = state["dead"] or state["calls"] >= n
        if state["dead"]:
            raise Killed

    def call(self: CloudRunner, action: str, fn: Any, **kwargs: Any) -> Any:
        if state["dead"]:
            raise Killed
        try:
            return original(self, action, fn, **kwargs)
        finally:
            count()  # the answer is lost with the process

    def dies(write: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if state["dead"]:
                raise Killed
            written = write(*args, **kwargs)
            if writes:
                count()
            return written

        return guarded

    with monkeypatch.context() as patch:
        patch.setattr(CloudRunner, "call", call)
        for name in ("put_if_absent", "put_if_version", "delete_if_version"):
            patch.setattr(backend, name, dies(getattr(backend, name)))
        yield state


def leavers(world: World, owner: str, prefix: str, count: int = 3) -> list[str]:
    """Programmatic users with a key, a login profile added by hand, a group, a system policy and a
    shared ramflow custom policy; the first also has a bound MFA device."""
    names = [f"{prefix}{i}" for i in range(count)]
    for name in names:
        world.provision(name, owner, grants=[{"policy": SYSTEM_POLICY, "type": "System"}, TEMPLATE])
        world.add_login_profile(name)
        world.add_to_group(name, "staff")
    world.bind_mfa(names[0])
    return names


def progress(world: World, name: str) -> set[str]:
    memo = world.store.ledger.get_intent(f"offboard/{name}")
    return set(memo.result.get("done", [])) if memo is not None and memo.result else set()


def no_way_in(world: World, names: list[str], grace: str) -> None:
    """The invariant: no login profile, no active key, no policy, no group; the ledger agrees."""
    ledger = world.store.ledger
    for name in names:
        held, record = world.holds(name), ledger.get_user(name)
        assert record is not None
        assert all(g.status == "revoked" for g in ledger.grants_of_user(name)), name
        if grace == "P0D":
            assert held is None, name
            assert record.status == "deleted" and record.credential is None, name
            assert ledger.get_intent(f"offboard/{name}") is None, name
            assert ledger.scheduled_deletion(name) is None, name
        else:
            assert held is not None, name
            assert held["login_profile"] is False, name
            assert set(held["keys"].values()) <= {"Inactive"}, name
            assert held["policies"] == [] and held["groups"] == [], name
            assert record.status == "disabled" and record.delete_after is not None, name
            assert ledger.scheduled_deletion(name) is not None, name


def repeated(calls: list[Any], done: dict[str, set[str]]) -> list[str]:
    """Calls of the replay that belong to a phase the killed run had recorded as finished."""
    again = []
    for c in calls:
        user = c.params.get("UserName") or c.params.get("PrincipalName", "").split("@")[0]
        phases = done.get(user, set())
        for phase, actions in DOORS.items():
            if phase in phases and c.action in actions:
                again.append(f"{c.action} {user}")
        if "rights" in phases and c.action in RIGHTS:
            again.append(f"{c.action} {user}")
    return again


@pytest.mark.parametrize("grace", ["P0D", "P7D"])
@pytest.mark.slow
def test_killed_after_any_cloud_call_a_replay_resumes_and_no_user_keeps_a_way_in(
    world: World, grace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = world.store.backend
    killed_at = []
    for n in range(1, 400):
        owner = f"kill{n}@example.com"
        names = leavers(world, owner, f"k{n}x")
        event = offboarded(owner=owner, grace=grace)
        seq = world.emulator.recorder.last_seq
        with killed_after(n, backend, monkeypatch) as state, suppress(Killed):
            process_event(event, FLOWS, world.runtime(), owner="first", lease_until=time.time() + 600)
        if not state["dead"]:  # the run made fewer than n calls: every call has been a kill point
            no_way_in(world, names, grace)
            break
        killed_at.append(n)
        done = {name: progress(world, name) for name in names}

        # FC's deadline passes: the dead instance's leases (event, owner and user locks) end
        monkeypatch.setattr(world.store.idempotency, "_clock", lambda: time.time() + 3600)
        seq = world.emulator.recorder.last_seq
        try:
            replay = process_event(
                event, FLOWS, world.runtime(), owner="replay", lease_until=time.time() + 7200
            )
        except FlowFailed as failed:
            replay = failed.result
        monkeypatch.undo()
        assert replay.status == "completed", (n, replay.errors)
        no_way_in(world, names, grace)
        assert repeated(world.emulator.recorder.since(seq), done) == [], n
    assert len(killed_at) >= 30  # three users' offboarding: every call was a kill point once


def test_every_user_loses_every_way_in_before_any_user_is_deleted(world: World) -> None:
    names = leavers(world, "many@example.com", "m", count=6)
    seq = world.emulator.recorder.last_seq
    result = offboard_event(
        UserOffboarded(owner="many@example.com", hr_event_id="WD-9"),
        offboarded(owner="many@example.com"),
        world.runtime(),
    )
    assert result.status == "completed", result.errors
    calls = [c.action for c in world.emulator.recorder.since(seq)]

    def positions(*actions: str) -> list[int]:
        found = [i for i, a in enumerate(calls) if a in actions]
        assert found, actions
        return found

    logins, keys = positions("DeleteLoginProfile"), positions("DeleteAccessKey")
    rights, deletes = positions(*RIGHTS), positions("DeleteUser")
    assert len(logins) == len(names) and len(deletes) == len(names)
    assert max(logins) < min(keys)  # every console password first: the quickest way in
    assert max(keys) < min(rights)  # then every key
    assert max(rights) < min(deletes)  # then every right; only then does any user go
    assert all(world.holds(name) is None for name in names)


def test_an_offboarding_finishes_while_a_reconcile_pass_is_stopped_in_the_middle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep is paused while it examines a user (holding that user's lock and the sweep's lease):
    the leaver's users are taken apart meanwhile, none reported as 'being changed'."""
    for name in ("a.other", "b.other"):
        world.provision(name, "other@example.com")
    names = leavers(world, "leaver@example.com", "c.leaver")
    paused, resume = threading.Event(), threading.Event()
    examine = reconcile_module._examine

    def slow(rt: Any, stepper: Any, name: str, *args: Any) -> Any:
        found = examine(rt, stepper, name, *args)
        if name == "a.other":
            paused.set()
            assert resume.wait(60)
        return found

    monkeypatch.setattr(reconcile_module, "_examine", slow)
    monkeypatch.setattr(reconcile_module, "SLICE", 1)
    sweep: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: sweep.update(result=reconcile(world.runtime()).result()))
    thread.start()
    try:
        assert paused.wait(60), "the sweep never examined a.other"
        result = offboard_event(
            UserOffboarded(owner="leaver@example.com", hr_event_id="WD-10"),
            offboarded(owner="leaver@example.com"),
            world.runtime(),
        )
        assert thread.is_alive()  # the pass is still under way
    finally:
        resume.set()
        thread.join()
    assert result.status == "completed", result.errors
    assert all(world.holds(name) is None for name in names)
    assert sweep["result"].status in ("completed", "partial")
    assert world.store.ledger.due_deletions(world.clock() + timedelta(days=1)) == []
