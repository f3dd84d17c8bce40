"""Large offboardings as jobs of per-user units handed to other invocations: every user disabled
before any is deleted, units that resume after a kill at any point, one job per owner at a time.

Asynchronous InvokeFunction is stood in for by a queue the tests drain as FC would: each payload is
run by the user-offboarded flows, and one that fails is queued again (FC's asynchronous retry).
`tests/fcruntime/test_fanout_serve.py` runs the same path through `ramflow serve`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import suppress
from datetime import timedelta

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.errors import FlowFailed
from shared.flows.fanout import STALLED_AFTER, resume_stalled, run_unit
from shared.flows.offboard import offboard
from shared.flows.reconcile import reconcile
from shared.handler import process_event
from shared.models.events import OFFBOARD_UNIT, USER_OFFBOARDED, CloudEvent
from shared.models.results import Result
from shared.runtime import Runtime
from tests.flows.test_offboard_disable_first import Killed, killed_after, leavers, no_way_in
from tests.flows.test_offboard_world import World, make_world, offboarded

FLOWS = {USER_OFFBOARDED: offboard, OFFBOARD_UNIT: run_unit}


class Invocations:
    """Asynchronous InvokeFunction: what was handed to which function, in order."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []
        self.sent = 0
        self.dead = False
        self._lock = threading.Lock()

    def invoke(self, function: str, payload: bytes, *, asynchronous: bool = False) -> None:
        assert function == "user-offboarded" and asynchronous
        if self.dead:
            raise Killed
        with self._lock:
            self.queued.append(payload)
            self.sent += 1


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings, fanout_threshold=2)


def runtime(world: World, fc: Invocations) -> Runtime:
    rt = world.runtime()
    rt.__dict__["functions"] = fc  # FC reachable: the local runtime's InvokeFunction, stood in for
    return rt


def deliver(world: World, fc: Invocations, event: CloudEvent, lease: float = 600) -> Result:
    try:
        return process_event(
            event, FLOWS, runtime(world, fc), owner=uuid.uuid4().hex, lease_until=time.time() + lease
        )
    except FlowFailed as failed:
        return failed.result


def drain(world: World, fc: Invocations, *, limit: int = 500) -> None:
    """Run every queued invocation, retrying failed ones, until none is left."""
    for _ in range(limit):
        if not fc.queued:
            return
        payload = fc.queued.pop(0)
        event = CloudEvent.model_validate(json.loads(payload))
        try:
            process_event(
                event, FLOWS, runtime(world, fc), owner=uuid.uuid4().hex, lease_until=time.time() + 600
            )
        except FlowFailed:
            fc.queued.append(payload)  # FC retries the asynchronous invocation
        except Killed:
            fc.queued.append(payload)  # the instance died: FC retries it elsewhere
            raise
    raise AssertionError(f"{len(fc.queued)} invocations still queued")


def test_an_owner_above_the_threshold_is_a_job_whose_units_disable_everyone_before_deleting_anyone(
    world: World,
) -> None:
    names = leavers(world, "big@example.com", "big", count=5)
    fc = Invocations()
    seq = world.emulator.recorder.last_seq

    reply = deliver(world, fc, offboarded(owner="big@example.com"))

    assert reply.status == "completed", reply.errors
    job_id = reply.plan["job"]["job_id"]
    assert reply.plan["job"]["total"] == 5 and reply.plan["job"]["wave"] == "close"
    units = [json.loads(p) for p in fc.queued]
    assert sorted(u["data"]["user_name"] for u in units) == names
    assert {u["data"]["wave"] for u in units} == {"close"} and {u["type"] for u in units} == {OFFBOARD_UNIT}
    assert all(world.holds(name) is not None for name in names)  # nothing done before the units run

    drain(world, fc)

    job = world.store.jobs.get(job_id)
    assert job is not None and job.wave == "finished" and job.finished is not None
    assert (job.total, job.closed, job.disabled, job.done, job.failed) == (5, 5, 5, 5, 0)
    assert world.store.jobs.running_of("big@example.com") is None
    no_way_in(world, names, "P0D")
    calls = [c.action for c in world.emulator.recorder.since(seq)]
    doors = [i for i, a in enumerate(calls) if a in ("DeleteLoginProfile", "DeleteAccessKey")]
    rights = [i for i, a in enumerate(calls) if a in ("DetachPolicyFromUser", "RemoveUserFromGroup")]
    assert max(doors) < min(rights)  # nobody can sign in or use a key before any right is read
    assert max(rights) < calls.index("DeleteUser")  # every user has nothing left before any is deleted
    assert fc.sent == 15  # one unit per user per wave


def test_an_owner_at_the_threshold_or_without_fc_is_offboarded_in_the_invocation(world: World) -> None:
    names = leavers(world, "small@example.com", "small", count=2)
    fc = Invocations()
    reply = deliver(world, fc, offboarded(owner="small@example.com"))
    assert reply.status == "completed" and "job" not in (reply.plan or {}) and fc.sent == 0
    no_way_in(world, names, "P0D")

    many = leavers(world, "nofc@example.com", "nofc", count=3)
    rt = world.runtime()  # against the emulator with no FC endpoint: no InvokeFunction to hand units to
    assert rt.functions is None
    plain = process_event(
        offboarded(owner="nofc@example.com"), FLOWS, rt, owner="x", lease_until=time.time() + 600
    )
    assert plain.status == "completed" and "job" not in (plain.plan or {})
    no_way_in(world, many, "P0D")


def test_a_unit_naming_a_user_outside_its_job_is_refused(world: World) -> None:
    leavers(world, "big@example.com", "big", count=3)
    world.provision("bystander", "someone@example.com")
    fc = Invocations()
    job_id = deliver(world, fc, offboarded(owner="big@example.com")).plan["job"]["job_id"]
    forged = CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": "forged-1",
            "source": "ramflow.jobs",
            "type": OFFBOARD_UNIT,
            "data": {"job_id": job_id, "user_name": "bystander", "wave": "disable"},
        }
    )
    seq = world.emulator.recorder.last_seq
    reply = deliver(world, fc, forged)
    assert reply.status == "rejected" and reply.errors[0].field == "data.user_name"
    assert world.emulator.recorder.since(seq) == [] and world.holds("bystander") is not None


@pytest.mark.slow
def test_units_resume_after_a_kill_at_any_point(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after any cloud call or store write of the coordinator or of any unit: FC retries the
    dead invocation (the HR event, or the unit), the leases of the dead end, and a job stalled
    between two waves is resumed by reconcile; every user ends deleted, the counters exact."""
    backend = world.store.backend
    killed_at, resumed = [], 0
    for n in range(1, 3000):
        owner = f"job{n}@example.com"
        names = leavers(world, owner, f"j{n}x", count=3)
        event = offboarded(owner=owner)
        fc = Invocations()
        with killed_after(n, backend, monkeypatch, writes=True) as state, suppress(Killed):
            if deliver(world, fc, event).status == "completed":
                drain(world, fc)
        if not state["dead"]:
            break
        killed_at.append(n)

        # FC's deadline passes: the dead instance's leases end; FC retries what failed
        monkeypatch.setattr(world.store.idempotency, "_clock", lambda: time.time() + 3600)
        reply = deliver(world, fc, event)  # the HR event again (a no-op once it completed)
        assert reply.status == "completed", (n, reply.errors)
        drain(world, fc)
        job = world.store.jobs.get(reply.plan["job"]["job_id"])
        assert job is not None
        if job.wave != "finished":  # a unit died after its wave's end but before handing on the next
            world.clock.advance(STALLED_AFTER + timedelta(seconds=1))
            assert resume_stalled(runtime(world, fc)) == [job.job_id], n
            resumed += 1
            drain(world, fc)
            job = world.store.jobs.get(job.job_id)
        monkeypatch.undo()
        assert job is not None and job.wave == "finished", (n, job)
        assert (job.total, job.disabled, job.done, job.failed) == (3, 3, 3, 0), (n, job)
        assert world.store.jobs.running_of(owner) is None, n
        no_way_in(world, names, "P0D")
    assert not state["dead"]  # the last run outlived every kill point: each was tried once
    assert len(killed_at) >= 100 and resumed >= 1


def test_two_hr_events_for_one_owner_share_one_job(world: World) -> None:
    """A second HR event for an owner whose job runs joins that job: one job, each unit once."""
    names = leavers(world, "twice@example.com", "tw", count=4)
    fc = Invocations()
    replies: list[Result] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait()
        replies.append(
            deliver(
                world, fc, offboarded(owner="twice@example.com", hr_event_id=f"WD-{uuid.uuid4().hex[:6]}")
            )
        )

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reply in replies:  # the owner's lock: one may have been told to come back
        if reply.status == "in_progress":
            replies.append(deliver(world, fc, offboarded(owner="twice@example.com", hr_event_id="WD-again")))
            break
    jobs = {r.plan["job"]["job_id"] for r in replies if r.status == "completed"}
    assert len(jobs) == 1 and len(world.store.jobs.all()) == 1
    seq = world.emulator.recorder.last_seq
    drain(world, fc)
    logins = [
        c.params["UserName"] for c in world.emulator.recorder.since(seq) if c.action == "DeleteLoginProfile"
    ]
    assert sorted(logins) == names  # each user's units ran once, however often they were handed on
    no_way_in(world, names, "P0D")


def test_a_new_hr_event_after_a_finished_job_starts_a_new_one(world: World) -> None:
    """A job that finished but was still named the owner's (its last unit died before letting go)
    is never joined by a later HR event: that event gets a job of its own."""
    leavers(world, "again@example.com", "ag", count=3)
    fc = Invocations()
    first = deliver(world, fc, offboarded(owner="again@example.com")).plan["job"]["job_id"]
    drain(world, fc)
    finished = world.store.jobs.get(first)
    assert finished is not None and finished.wave == "finished"
    world.store.jobs.claim_owner("again@example.com", first)  # left behind, as by a killed unit

    world.store.ledger.clear_leaver("again@example.com")  # rehired, then leaves again with new users
    later = leavers(world, "again@example.com", "ag2", count=3)
    reply = deliver(world, fc, offboarded(owner="again@example.com", hr_event_id="WD-2"))
    assert reply.status == "completed" and reply.plan["job"]["job_id"] != first
    drain(world, fc)
    no_way_in(world, later, "P0D")


def run_queued(world: World, fc: Invocations, count: int) -> None:
    """FC runs the first `count` queued units (and no more, for now)."""
    for _ in range(count):
        event = CloudEvent.model_validate(json.loads(fc.queued.pop(0)))
        process_event(event, FLOWS, runtime(world, fc), owner=uuid.uuid4().hex, lease_until=time.time() + 600)


def test_reconcile_in_the_middle_of_a_job_deletes_none_of_its_users(world: World) -> None:
    """A job deleting now schedules its users' deletion at once, in its first wave: the timer firing
    while other users of the job can still sign in deletes nobody; the job's delete wave does."""
    names = leavers(world, "big@example.com", "big", count=5)
    fc = Invocations()
    assert deliver(world, fc, offboarded(owner="big@example.com")).status == "completed"
    run_queued(world, fc, 2)  # two users closed; three still have a password, a key, policies
    assert all((world.holds(n) or {}).get("login_profile") for n in names[2:])
    seq = world.emulator.recorder.last_seq

    report = reconcile(world.runtime())

    assert report.deletions == {}
    assert [c for c in world.emulator.recorder.since(seq) if c.action == "DeleteUser"] == []
    assert all(world.holds(n) is not None for n in names)
    drain(world, fc)
    no_way_in(world, names, "P0D")  # the job's own delete wave, once every user was disabled


def test_a_stalled_job_is_resumed_a_few_units_a_tick_and_never_keeps_reconcile_from_delivering(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layoff whose units FC lost: each tick runs at most RAMFLOW_RECONCILE_JOB_UNITS of them, none
    once its deadline is near, and still delivers; the next tick goes on where the last one stopped."""
    from shared.flows import reconcile as reconcile_module
    from shared.runtime import invocation_deadline

    world = make_world(emulator, root_clients, cloud_settings, fanout_threshold=2, reconcile_job_units=4)
    names = leavers(world, "lost@example.com", "lost", count=6)
    fc = Invocations()
    job_id = deliver(world, fc, offboarded(owner="lost@example.com")).plan["job"]["job_id"]
    fc.queued.clear()  # every unit lost after FC's retries
    world.clock.advance(STALLED_AFTER + timedelta(seconds=1))
    deliveries: list[int] = []
    real = reconcile_module.deliver_due

    def deliver_due(rt: Runtime) -> None:
        deliveries.append(1)
        real(rt)

    monkeypatch.setattr(reconcile_module, "deliver_due", deliver_due)
    rt = world.runtime()

    def units_run() -> int:
        return sum(len(world.store.jobs.units(job_id, wave)) for wave in ("close", "disable", "delete"))

    token = invocation_deadline.set(time.time() + 5)  # inside the tick's margin: no time for units
    try:
        report = reconcile(rt)
    finally:
        invocation_deadline.reset(token)
    assert units_run() == 0 and deliveries == [1] and report.resumed_jobs == []

    ticks = 0
    while (job := world.store.jobs.get(job_id)) is not None and job.wave != "finished":
        before = units_run()
        report = reconcile(rt)
        ticks += 1
        assert report.resumed_jobs == [job_id] and units_run() - before <= 4
        assert len(deliveries) == ticks + 1
        assert ticks < 10
    assert ticks == 5  # 18 units (6 users, 3 waves), 4 a tick, with no clock moved between ticks
    no_way_in(world, names, "P0D")


def test_a_later_hr_event_with_a_shorter_grace_brings_the_running_jobs_deletion_forward(world: World) -> None:
    """P30D, then "terminated for cause", P0D, while the job runs: its users are deleted by the job,
    still every user disabled before any is deleted; the deletion is never postponed."""
    names = leavers(world, "cause@example.com", "cause", count=4)
    fc = Invocations()
    first = deliver(world, fc, offboarded(owner="cause@example.com", grace="P30D", hr_event_id="WD-1"))
    job_id = first.plan["job"]["job_id"]
    run_queued(world, fc, 4)  # the close wave ends; the disable wave's units are queued
    run_queued(world, fc, 1)
    assert world.store.jobs.get(job_id).wave == "disable"
    seq = world.emulator.recorder.last_seq

    later = deliver(world, fc, offboarded(owner="cause@example.com", grace="P0D", hr_event_id="WD-2"))

    assert later.status == "completed" and later.plan["job"]["job_id"] == job_id
    job = world.store.jobs.get(job_id)
    assert job is not None and job.grace_seconds == 0 and job.deleting
    disabled = [
        r for r in map(world.store.ledger.get_user, names) if r is not None and r.status == "disabled"
    ]
    assert disabled and all(r.delete_after is not None and r.delete_after <= world.clock() for r in disabled)
    drain(world, fc)
    no_way_in(world, names, "P0D")
    calls = [c.action for c in world.emulator.recorder.since(seq)]
    rights = [i for i, a in enumerate(calls) if a in ("DetachPolicyFromUser", "RemoveUserFromGroup")]
    assert max(rights) < calls.index("DeleteUser")

    again = leavers(world, "slow@example.com", "slow", count=3)
    fc = Invocations()
    job_id = deliver(world, fc, offboarded(owner="slow@example.com", hr_event_id="WD-3")).plan["job"][
        "job_id"
    ]
    later = deliver(world, fc, offboarded(owner="slow@example.com", grace="P30D", hr_event_id="WD-4"))
    assert later.status == "completed" and world.store.jobs.get(job_id).grace_seconds == 0
    drain(world, fc)
    no_way_in(world, again, "P0D")


def test_a_later_hr_event_finding_users_the_running_job_lacks_comes_back_until_it_finishes(
    world: World,
) -> None:
    names = leavers(world, "late@example.com", "late", count=3)
    fc = Invocations()
    job_id = deliver(world, fc, offboarded(owner="late@example.com")).plan["job"]["job_id"]
    world.store.ledger.clear_leaver("late@example.com")  # a user the first listing missed
    missed = leavers(world, "late@example.com", "missed", count=1)
    event = offboarded(owner="late@example.com", hr_event_id="WD-late")

    waiting = deliver(world, fc, event)

    assert waiting.status == "in_progress" and waiting.plan["waiting"] == missed
    assert waiting.plan["job"]["job_id"] == job_id and waiting.errors[0].field == "data.owner"
    job = world.store.jobs.get(job_id)
    assert job is not None and job.users == names
    drain(world, fc)
    assert deliver(world, fc, event).status == "completed"  # delivered again: the job has finished
    drain(world, fc)
    no_way_in(world, names + missed, "P0D")
