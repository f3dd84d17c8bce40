"""Large offboardings as jobs: per-user units carried out by other invocations of `user-offboarded`.

An owner with more than `RAMFLOW_FANOUT_THRESHOLD` users (a layoff is many such events at once)
would outlast one invocation and hold every user's lock the whole time. Instead the invocation that
receives the HR event (the coordinator), still under the owner's lock, records a job
(shared/store/jobs.py) and hands one unit per user to `user-offboarded` itself through an
asynchronous InvokeFunction. Why InvokeFunction rather than EventBridge: the unit goes to one known
function, FC's asynchronous invocation already retries it (s.yaml `asyncInvokeConfig`) and parks it
in the failed-events queue after that, it needs only `fc:InvokeFunction` on that one function, and
`ramflow serve`'s local FC runtime answers the same API, so the same code path runs locally.

Units come in waves, in the order that ends exposure soonest (as the in-process teardown's phases):

  close     per user: login profile, then keys (shared/flows/teardown.py phases 1-2)
  disable   per user: policies at both scopes, groups (phase 3)
  delete    (deleting now) per user: MFA device, keys left, the user, unused policies

so nobody can sign in or use a key before any policy is read, and every user has nothing left
before any user is deleted. The unit that finishes the last unit of a wave hands on the next. Every unit is
idempotent three times over: its event id (`<job>/<wave>/<user>`) is deduplicated by the function's
idempotency records, the user's progress in the ledger says which phases are done, and its record
in the job is a compare-and-set. A job that stalls (a unit that died after FC's retries, a
coordinator killed half-way through handing units on) is resumed by the HR event's redelivery (the
counters are recounted from the units' records and every unit of the current wave not done is sent
again), or by the next reconcile tick, which runs the outstanding units itself.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from shared.audit import audit
from shared.concurrency import run_all
from shared.errors import FlowFailed
from shared.flows.saga import Stepper
from shared.flows.teardown import StopAfter
from shared.models.events import OFFBOARD_UNIT, CloudEvent, OffboardUnit, UserOffboarded
from shared.models.results import Result
from shared.runtime import Runtime, invocation_deadline
from shared.store.jobs import WAVES, JobRecord, Wave
from shared.store.records import UserRecord

UNIT_FUNCTION = "user-offboarded"
SOURCE = "ramflow.jobs"
STOP_AFTER: dict[Wave, StopAfter] = {"close": "keys", "disable": "rights", "delete": None}
STALLED_AFTER = timedelta(minutes=15)
"""A running job whose record has not moved for this long is resumed by reconcile (FC retries a
failed unit three times within minutes; a unit finishes well inside its function's timeout)."""
SETTLED = {"closed", "disabled", "deleted", "gone", "needs_human"}
"""Unit outcomes that end the unit: anything else (failed, busy) is retried."""


def fans_out(rt: Runtime, data: UserOffboarded, names: Sequence[str]) -> bool:
    """Whether an owner's offboarding becomes a job: many users, and FC to hand them to (or a job of
    the owner's already running, which a second HR event joins rather than overlap)."""
    if data.owner is None or rt.functions is None:
        return False
    threshold = rt.settings.fanout_threshold
    if threshold > 0 and len(names) > threshold:
        return True
    running = rt.store.jobs.running_of(data.owner)
    job = rt.store.jobs.get(running) if running is not None else None
    return job is not None and job.wave != "finished"


def start_job(rt: Runtime, data: UserOffboarded, names: Sequence[str], *, actor: str) -> JobRecord:
    """Under the owner's lock: the owner's running job (or a new one) and its current wave's units
    handed on. Safe to repeat: a redelivered HR event resumes the same job.

    A later HR event joins the running job: a grace ending sooner brings its deletion forward
    (`bring_forward`). Users it finds that the job does not hold are not added to the job: the
    caller answers `in_progress` and the event is delivered again until the job has finished, then
    offboards them as any event does. Why not add them: a user joining a wave already in flight
    would miss the waves before it (its password closed while others' policies are read, or it not
    yet disabled while others are deleted), and the unit ending a wave could hand on the next one
    before the newcomer's unit was sent; such users are rare (approvals stop once the leaver is
    recorded), and a job finishes within minutes."""
    assert data.owner is not None
    jobs = rt.store.jobs
    job_id = jobs.claim_owner(data.owner, f"job-{uuid.uuid4().hex[:12]}")
    found = jobs.get(job_id)
    if found is not None and found.wave == "finished":  # its unit died before letting go of the owner
        jobs.close(found)
        job_id = jobs.claim_owner(data.owner, f"job-{uuid.uuid4().hex[:12]}")
        found = jobs.get(job_id)
    job = found or jobs.create(
        JobRecord(
            job_id=job_id,
            owner=data.owner.strip().casefold(),
            reference=data.hr_event_id,
            grace_seconds=data.grace.total_seconds(),
            users=sorted(set(names)),
            total=len(set(names)),
            started=rt.clock(),
            updated=rt.clock(),
        )
    )
    if found is not None:
        job = bring_forward(rt, job, data, actor=actor)
    audit(
        "job.started",
        actor=actor,
        ticket_id=None,
        outcome=job.wave,
        job=job.job_id,
        owner=job.owner,
        hr_event=job.reference,
        users=job.total,
    )
    return resume(rt, job)


def bring_forward(rt: Runtime, job: JobRecord, data: UserOffboarded, *, actor: str) -> JobRecord:
    """A later HR event for the owner of a running job whose grace ends sooner (P30D, then
    "terminated for cause", P0D): its users' deletion dates first (the ledger keeps the earliest, so
    one finishing its units now is deleted by the new date), then the job's grace by compare-and-set,
    so a job that was only disabling gains its delete wave. Never postponed; audited once."""
    due = rt.clock() + data.grace
    if due >= job.started + timedelta(seconds=job.grace_seconds):
        return job
    ledger = rt.store.ledger
    for name in job.users:
        ledger.schedule_deletion(name, due)
        record = ledger.get_user(name)
        if record is not None and record.delete_after is not None and record.delete_after > due:
            ledger.update_user(name, partial(_delete_after, due=due))  # disabled already: its date too
    changed, brought = rt.store.jobs.bring_forward(job.job_id, data.grace.total_seconds(), due)
    if brought:
        audit(
            "job.brought_forward",
            actor=actor,
            ticket_id=None,
            outcome=changed.wave,
            job=job.job_id,
            owner=job.owner,
            hr_event=data.hr_event_id,
            delete_at=due.isoformat(),
            grace_seconds=changed.grace_seconds,
        )
    return changed


def _delete_after(record: UserRecord, *, due: datetime) -> None:
    if record.delete_after is not None and record.delete_after > due:
        record.delete_after = due


def resume(rt: Runtime, job: JobRecord) -> JobRecord:
    """Recount the job from its units' records and send every unit of its current wave not done."""
    job, _ = rt.store.jobs.recount(job.job_id, rt.clock())
    if job.wave == "finished":
        rt.store.jobs.close(job)
        return job
    wave: Wave = job.wave
    done = {name for name, unit in rt.store.jobs.units(job.job_id, wave).items() if unit.state == "done"}
    dispatch(rt, job, wave, [name for name in job.users if name not in done])
    return job


def resume_stalled(rt: Runtime, *, stop_at: float = float("inf"), limit: int | None = None) -> list[str]:
    """Reconcile's part: a job that has not moved for `STALLED_AFTER` (its units dead after FC's
    retries, or a wave never handed on) has its outstanding units run here, in this invocation,
    under reconcile's own role (which holds the same RAM duties and no InvokeFunction on
    user-offboarded); a unit that still fails waits for the next tick. At most `limit` units
    (RAMFLOW_RECONCILE_JOB_UNITS) and none once `stop_at` has passed: a stalled layoff never keeps a
    tick from its other duties, and a job left part-way is marked so the next tick goes on with it.
    The ids of the jobs resumed (begun on) in this tick."""
    jobs = rt.store.jobs
    limit = rt.settings.reconcile_job_units if limit is None else limit
    now = rt.clock()
    stalled = [
        j for j in jobs.all() if j.wave != "finished" and (j.resuming or now - j.updated > STALLED_AFTER)
    ]
    resumed: list[str] = []
    ran = 0
    for job in stalled:
        if ran >= limit or time.time() >= stop_at:
            break  # untouched, so still stalled at the next tick
        resumed.append(job.job_id)
        cut = False
        for _ in WAVES:  # the current wave, then the next ones
            job, _ = jobs.recount(job.job_id, rt.clock())
            if job.wave == "finished":
                jobs.close(job)
                break
            wave: Wave = job.wave
            done = {name for name, unit in jobs.units(job.job_id, wave).items() if unit.state == "done"}
            for name in job.users:
                if name in done:
                    continue
                if ran >= limit or time.time() >= stop_at:
                    cut = True
                    break
                _run_here(rt, job, wave, name)
                ran += 1
            if cut:
                break
        if cut or job.resuming:
            jobs.mark_resuming(job.job_id, cut)
    return resumed


def _run_here(rt: Runtime, job: JobRecord, wave: Wave, user: str) -> None:
    from shared.handler import process_event

    event = CloudEvent.model_validate(json.loads(unit_event(job, wave, user)))
    lease = invocation_deadline.get() or time.time() + rt.settings.user_lock_seconds
    with contextlib.suppress(FlowFailed):  # the unit's record says it failed; the next tick tries again
        process_event(event, {OFFBOARD_UNIT: run_unit_here}, rt, owner=uuid.uuid4().hex, lease_until=lease)


def dispatch(rt: Runtime, job: JobRecord, wave: Wave, names: Sequence[str]) -> None:
    """One asynchronous invocation per user; any that could not be handed on fails the caller, whose
    own retry hands them on again (the others are deduplicated by their event ids)."""
    functions = rt.functions
    if functions is None or not names:
        return
    tasks = [
        (name, partial(functions.invoke, UNIT_FUNCTION, unit_event(job, wave, name), asynchronous=True))
        for name in names
    ]
    outcomes = run_all(tasks, rt.settings.max_concurrency)
    for outcome in outcomes:
        outcome.unwrap()


def unit_event(job: JobRecord, wave: Wave, user: str) -> bytes:
    event = {
        "specversion": "1.0",
        "id": f"{job.job_id}/{wave}/{user}",
        "source": SOURCE,
        "type": OFFBOARD_UNIT,
        "datacontenttype": "application/json",
        "data": {"job_id": job.job_id, "user_name": user, "wave": wave},
    }
    return json.dumps(event).encode()


def run_unit(data: OffboardUnit, event: CloudEvent, rt: Runtime) -> Result:
    """One user's part of a job (the handler's flow for `ramflow.offboard.unit`); the unit that
    ends a wave hands on the next."""
    return _unit(data, event, rt, hand_on=True)


def run_unit_here(data: OffboardUnit, event: CloudEvent, rt: Runtime) -> Result:
    """The same, run by reconcile in its own invocation: the next wave is left to its loop."""
    return _unit(data, event, rt, hand_on=False)


def _unit(data: OffboardUnit, event: CloudEvent, rt: Runtime, *, hand_on: bool) -> Result:
    from shared.flows.offboard import take_apart

    jobs = rt.store.jobs
    job = jobs.get(data.job_id)
    if job is None or data.user_name not in job.users:
        return Result.rejected(
            [{"field": "data.user_name", "reason": "not a user of that job"}], event_id=event.id
        )
    if job.wave != "finished" and WAVES.index(data.wave) > WAVES.index(job.wave):
        reason = f"the job is still in its {job.wave} wave"
        return Result.rejected([{"field": "data.wave", "reason": reason}], event_id=event.id)
    stepper = Stepper(rt.settings.max_concurrency)
    outcomes = take_apart(
        rt,
        [data.user_name],
        grace=timedelta(seconds=job.grace_seconds),
        actor=f"{SOURCE}/{job.job_id}",
        reference=job.reference,
        stepper=stepper,
        stop_after=STOP_AFTER[data.wave],
    )
    state = outcomes[data.user_name].state
    result = stepper.journal.result(
        user_name=data.user_name, plan={"job_id": job.job_id, "wave": data.wave, "state": state}
    )
    ok = result.status == "completed" and state in SETTLED
    job, advanced = jobs.finish_unit(
        job.job_id, data.wave, data.user_name, ok=ok, outcome=state, now=rt.clock()
    )
    if advanced and job.wave != "finished" and hand_on:
        dispatch(rt, job, job.wave, job.users)
    if job.wave == "finished":
        jobs.close(job)
        if advanced:
            audit(
                "job.finished",
                actor=SOURCE,
                ticket_id=None,
                outcome="finished",
                job=job.job_id,
                users=job.total,
            )
    if not ok:
        if result.status == "completed":  # busy, or nothing failed yet the user is not settled
            result = result.model_copy(update={"status": "partial"})
        result.event_id = event.id
        raise FlowFailed(result)  # FC retries the asynchronous invocation
    return result
