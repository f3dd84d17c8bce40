"""`user.offboarded`: every RAM user a leaver owns loses all access at once and is deleted soon after.

The owner's users are found (the ledger, the IMS `owner` tag, tickets being approved) under the
owner's lock; an owner with many users becomes a job of per-user units on other invocations
(`shared/flows/fanout.py`); otherwise each user is locked, and `shared/flows/teardown.py` takes them apart: every way in
(login profile, then AccessKeys, then policies at both scopes and groups) is closed for every user
before any slower cleanup (MFA devices, keys, the users, unused custom policies), and each user's
progress is written to the ledger as it goes, so a killed run resumes where it stopped. The
deletion date (now, or after `grace`) is written before the user's first change: a replay, or
`reconcile` once the date has passed, finishes the job even after the user itself is gone. Users
without `managed-by=ramflow` are never changed: they are reported as needing a human, and audited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from shared.audit import audit
from shared.flows.fanout import fans_out, start_job
from shared.flows.saga import Journal, Progress, Step, Stepper, retried_until_complete
from shared.flows.teardown import MEMO, UNMANAGED, State, StopAfter, Teardown, UserOutcome
from shared.flows.users import owner_lock, user_locks
from shared.models.events import CloudEvent, UserOffboarded, UserRehired
from shared.models.results import FieldError, Result
from shared.runtime import Runtime
from shared.store.jobs import JobRecord

__all__ = ["MEMO", "UNMANAGED", "State", "UserOutcome", "offboard", "run_offboarding", "take_apart"]


@dataclass
class OffboardReport:
    """Per-user outcomes and the journal of calls, for the reply, the CLI table and the audit."""

    journal: Journal
    users: dict[str, UserOutcome] = field(default_factory=dict)
    dry_run: bool = False
    job: JobRecord | None = None
    """Set when the users were handed to a job of per-user units (shared/flows/fanout.py)."""
    waiting: list[str] = field(default_factory=list)
    """Users found for the owner that the running job does not hold: the event comes back for them."""

    def result(self, *, user_name: str | None = None) -> Result:
        if self.job is not None and self.waiting:
            return Result(
                status="in_progress",
                user_name=user_name,
                plan={"job": self.job.summary(), "waiting": self.waiting},
                errors=[
                    FieldError(
                        field="data.owner",
                        reason="the owner's running job must finish before users it does not hold "
                        "are offboarded; deliver again",
                    )
                ],
            )
        if self.job is not None:
            return self.journal.result(user_name=user_name, plan={"job": self.job.summary()})
        plan = None
        if self.dry_run:
            plan = {
                "dry_run": True,
                "users": {
                    name: {
                        "state": outcome.state,
                        "holds": outcome.holdings.summary() if outcome.holdings else None,
                        "due_at": outcome.due_at.isoformat() if outcome.due_at else None,
                    }
                    for name, outcome in self.users.items()
                },
                "calls": self.journal.planned,
            }
        return self.journal.result(user_name=user_name, plan=plan)


# --- the flow -------------------------------------------------------------------------------------
def offboard_event(data: UserOffboarded, event: CloudEvent, rt: Runtime) -> Result:
    """The `user.offboarded` event flow."""
    report = run_offboarding(rt, data, actor=event.source)
    return report.result(user_name=data.user_name)


offboard = retried_until_complete(offboard_event)
"""What the handler runs: a `partial` outcome is raised, so the event is delivered again."""


def run_offboarding(
    rt: Runtime,
    data: UserOffboarded,
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
    fan_out: bool = True,
) -> OffboardReport:
    """Offboard one user, or every user of an owner; the CLI calls this directly (`fan_out` False:
    the operator watches the work in this process rather than a job on FC)."""
    stepper = Stepper(rt.settings.max_concurrency, dry_run=dry_run, progress=progress)
    if data.owner is not None and not dry_run:
        # Under the owner's lock (see shared/flows/users.py): the leaver is recorded and the users
        # are listed while no approval for the owner is half-way, so none is missed.
        with owner_lock(rt, data.owner):
            record_leaver(rt, data, actor=actor)
            names = find_users(rt, data, stepper)
            if fan_out and fans_out(rt, data, names):  # many users: per-user units on other invocations
                job = start_job(rt, data, names, actor=actor)
                waiting = sorted(set(names) - set(job.users))
                return OffboardReport(stepper.journal, {}, job=job, waiting=waiting)
            users = take_apart(
                rt, names, grace=data.grace, actor=actor, reference=data.hr_event_id, stepper=stepper
            )
    else:
        names = find_users(rt, data, stepper)
        users = take_apart(
            rt, names, grace=data.grace, actor=actor, reference=data.hr_event_id, stepper=stepper
        )
    if not names:
        audit(
            "offboard.nothing_found",
            actor=actor,
            ticket_id=None,
            outcome="completed",
            owner=data.owner,
            user=data.user_name,
            hr_event=data.hr_event_id,
        )
    return OffboardReport(stepper.journal, users, dry_run=dry_run)


def find_users(rt: Runtime, data: UserOffboarded, stepper: Stepper) -> list[str]:
    """The named user, or the owner's users: the ledger's and the IMS `owner` tag's (the ledger may
    be behind). Learns the account alias at the same time, since principal names need it."""
    steps = [Step("account", "GetAccountAlias", "", lambda: learn_alias(rt))]
    if data.owner is not None:
        owner = data.owner.strip().casefold()
        steps.append(
            Step(
                f"owner {owner}",
                "ListTagResources",
                f"owner={owner}",
                lambda: rt.cloud.ims.users_with_tag("owner", owner),
            )
        )
    done = stepper.run("find the users", steps)
    if data.user_name is not None:
        return [data.user_name]
    tagged = [name for d in done[1:] if d.ok and not d.absent for name in d.value]
    assert data.owner is not None
    ledger = rt.store.ledger
    # A ticket approved for the owner names its user before CreateUser: a user being created is found.
    ticketed = [
        t.user_name for t in ledger.tickets_of_owner(data.owner) if t.status in {"approved", "completed"}
    ]
    return sorted(set(ledger.users_of_owner(data.owner)) | set(tagged) | set(ticketed))


def record_leaver(rt: Runtime, data: UserOffboarded, *, actor: str) -> None:
    """The owner has left: a fact in the ledger, so a later request or approval for them is refused;
    their tickets still pending are closed (each audited)."""
    assert data.owner is not None
    from shared.flows.provision import close_ticket

    leaver = rt.store.ledger.record_leaver(
        data.owner, left_at=rt.clock(), hr_event_id=data.hr_event_id, source=actor
    )
    audit(
        "owner.left",
        actor=actor,
        ticket_id=None,
        outcome="recorded",
        owner=leaver.owner,
        hr_event=leaver.hr_event_id,
        left_at=leaver.left_at.isoformat(),
    )
    for ticket in rt.store.ledger.tickets_of_owner(data.owner):
        if ticket.status == "pending_approval":
            close_ticket(rt, ticket.ticket_id, f"the owner left (HR event {leaver.hr_event_id})")


def rehire_event(data: UserRehired, event: CloudEvent, rt: Runtime) -> Result:
    """`user.rehired`: the owner is no longer a leaver; access is requested afresh (nothing returns)."""
    with owner_lock(rt, data.owner):
        cleared = rt.store.ledger.clear_leaver(data.owner)
    audit(
        "owner.rehired",
        actor=event.source,
        ticket_id=None,
        outcome="cleared" if cleared else "not_a_leaver",
        owner=data.owner.strip().casefold(),
        hr_event=data.hr_event_id,
    )
    return Result(
        status="completed",
        actions=["cleared the leaver record" if cleared else "the owner was not recorded as a leaver"],
    )


def learn_alias(rt: Runtime) -> str:
    """Principal names (IMS tags, ResourceManager grants) need the alias; it is read once."""
    return rt.account_alias


def take_apart(
    rt: Runtime,
    names: Sequence[str],
    *,
    grace: timedelta,
    actor: str,
    reference: str,
    stepper: Stepper,
    stop_after: StopAfter = None,
) -> dict[str, UserOutcome]:
    """Disable every managed user named, and delete those whose deletion date has come (unless
    `stop_after`: a job's earlier waves, see `Teardown.run`)."""
    if not names:
        return {}
    outcomes: dict[str, UserOutcome] = {}
    with _locked(rt, names, stepper.dry_run) as (held, busy):
        for name in busy:
            stepper.journal.error(name, "lock", "another ramflow flow is changing this user; retry")
            outcomes[name] = UserOutcome(name, "busy")
        if held:
            work = Teardown(rt, stepper, grace=grace, actor=actor, reference=reference)
            outcomes.update(work.run(held, stop_after=stop_after))
    return {name: outcomes[name] for name in names}


@contextlib.contextmanager
def _locked(rt: Runtime, names: Sequence[str], dry_run: bool) -> Iterator[tuple[list[str], list[str]]]:
    if dry_run:  # a dry run changes nothing, so it needs no lock (and writes nothing)
        yield list(names), []
        return
    # reconcile holds a user's lock for that user's few calls only: waiting for it means a leaver is
    # never turned away because a sweep happens to be looking at them (RAMFLOW_USER_LOCK_WAIT_SECONDS)
    with user_locks(rt, names, wait=rt.settings.user_lock_wait_seconds) as (held, busy):
        yield held, busy
