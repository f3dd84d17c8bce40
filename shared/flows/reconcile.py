"""`reconcile` (timer): what must happen because time passed, and what drifted from the ledger.

1. grants whose duration has ended are revoked (`revoke_grants`, as `access.revoked` does);
2. deletions whose grace has ended are finished (`take_apart`, deleting now) — and so is any
   offboarding an event left unfinished, since its deletion date is written before anything changes —
   except a running job's users, whom only its delete wave deletes, after every one is disabled;
   bulk offboarding jobs that stopped moving are resumed (`shared/flows/fanout.py`), a few units a
   tick and within half of what is left of it;
3. drift: every managed user (the ledger's, and IMS's `managed-by=ramflow`) is locked, then read
   and compared with the ledger — policies at either scope the ledger did not grant, AccessKeys it did not make,
   groups (ramflow never adds any), a login profile the access mode rules out; grants the ledger
   has and RAM lacks; users only one side knows. With `Settings.reconcile_remediate` the first
   kind is undone (detach, leave the group, key Inactive, login profile deleted); everything
   else — and everything when not remediating — is reported as needing a human. The fixes run
   before the locks are released; a user another flow is changing waits for the next pass.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from shared.audit import audit
from shared.cloud.resource_manager import PolicyAttachment
from shared.concurrency import run_all
from shared.delivery import deliver_due
from shared.errors import BudgetExhausted
from shared.flows.fanout import resume_stalled
from shared.flows.holdings import Holdings
from shared.flows.keys import Finding, UserKeyReport, check_user_keys, describe_rotation, keys_in_rotation
from shared.flows.offboard import UserOutcome, learn_alias, take_apart
from shared.flows.provision import access_key_intent
from shared.flows.revoke import revoke_grants
from shared.flows.saga import (
    Journal,
    Progress,
    Step,
    Stepper,
    is_resource_group,
)
from shared.flows.users import MANAGED_BY, user_locks
from shared.models.results import Result
from shared.notify import deleted_notices, expiry_notices, revoked_notice, send_all
from shared.runtime import Runtime, invocation_deadline
from shared.store.records import AccessKeyRecord, GrantRecord, KeyFindingsRecord, UserRecord
from shared.store.sweep import SweepLog, SweepRecord

REFERENCE = "reconcile"
BUSY = "another ramflow flow is changing this user; next pass"
TICK_MARGIN = 30.0
"""Seconds before the invocation's deadline at which a tick stops taking new slices of the sweep."""


@dataclass(frozen=True)
class Drift:
    """One difference between RAM and the ledger; `fix` undoes it, when ramflow may."""

    user_name: str
    kind: str
    target: str = ""
    fix: Step | None = field(default=None, compare=False)

    def describe(self, remediated: bool) -> dict[str, Any]:
        return {
            "user_name": self.user_name,
            "kind": self.kind,
            "target": self.target,
            "remediated": remediated,
        }


@dataclass
class ReconcileReport:
    journal: Journal
    expired: list[GrantRecord] = field(default_factory=list)
    deletions: dict[str, UserOutcome] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    keys: dict[str, UserKeyReport] = field(default_factory=dict)
    remediate: bool = False
    dry_run: bool = False
    busy: bool = False
    """Another sweep holds the lease: this tick did nothing."""
    resumed_jobs: list[str] = field(default_factory=list)
    sweep: dict[str, Any] | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for report in self.keys.values() for f in report.findings]

    def result(self) -> Result:
        if self.busy:
            return Result(status="in_progress", plan={"reason": "another reconcile sweep is running"})
        fixed = self.remediate and not self.dry_run
        return self.journal.result(
            plan={
                "dry_run": self.dry_run,
                **({"sweep": self.sweep} if self.sweep else {}),
                **({"resumed_jobs": self.resumed_jobs} if self.resumed_jobs else {}),
                "expired_grants": [g.grant_id for g in self.expired],
                "deletions": {name: outcome.state for name, outcome in self.deletions.items()},
                "drift": [d.describe(fixed and d.fix is not None) for d in self.drift],
                "findings": [f.describe() for f in self.findings],
                "rotations": {
                    name: describe_rotation(r.rotation) for name, r in self.keys.items() if r.rotation
                },
                "deactivated_unused_keys": {n: r.deactivated for n, r in self.keys.items() if r.deactivated},
                "rotations_handed_off": {n: r.handed_off for n, r in self.keys.items() if r.handed_off},
                **({"calls": self.journal.planned} if self.dry_run else {}),
            }
        )


def reconcile(
    rt: Runtime,
    *,
    dry_run: bool = False,
    remediate: bool | None = None,
    progress: Progress | None = None,
    actor: str = REFERENCE,
    max_users: int | None = None,
) -> ReconcileReport:
    """One tick: expiries and due deletions, then the drift sweep from its cursor for as long as the
    invocation allows (or `max_users`). Ticks never overlap: one that finds another holding the
    sweep's lease answers `in_progress` and does nothing. A dry run reads every user, holds no lease
    and leaves the cursor alone."""
    remediate = rt.settings.reconcile_remediate if remediate is None else remediate
    stepper = Stepper(rt.settings.max_concurrency, dry_run=dry_run, progress=progress)
    report = ReconcileReport(stepper.journal, remediate=remediate, dry_run=dry_run)
    if dry_run:  # reads only: no lease, no cursor, every user
        return _pass(rt, stepper, report, actor=actor, sweep=None, sweeps=None, max_users=max_users)
    sweeps = SweepLog(rt.store.backend)
    sweep = sweeps.claim(uuid.uuid4().hex, rt.settings.sweep_lease_seconds)
    if sweep is None:
        report.busy = True
        return report
    try:
        return _pass(rt, stepper, report, actor=actor, sweep=sweep, sweeps=sweeps, max_users=max_users)
    finally:
        report.sweep = sweep.progress(time.time())
        sweeps.release(sweep)


def _pass(
    rt: Runtime,
    stepper: Stepper,
    report: ReconcileReport,
    *,
    actor: str,
    sweep: SweepRecord | None,
    sweeps: SweepLog | None,
    max_users: int | None,
) -> ReconcileReport:
    """Expiries and due deletions first, always; then as much of the drift sweep as time allows."""
    remediate, dry_run = report.remediate, report.dry_run
    ledger = rt.store.ledger
    now = rt.clock()
    deadline = invocation_deadline.get()
    stop_at = deadline - TICK_MARGIN if deadline is not None else float("inf")
    stepper.run("learn the account alias", [Step("account", "GetAccountAlias", "", lambda: learn_alias(rt))])

    # 1. grants whose duration ended
    report.expired = ledger.expired_grants(now)
    if report.expired:
        with _locked(rt, sorted({g.user_name for g in report.expired}), stepper) as held:
            revocation = revoke_grants(rt, [g for g in report.expired if g.user_name in held], stepper)
        audit(
            "grants.expired",
            actor=actor,
            ticket_id=None,
            outcome="planned" if dry_run else ("partial" if stepper.journal.errors else "revoked"),
            grants=sorted(revocation.revoked),
            disabled=revocation.disabled,
        )

    # 2. deletions whose grace ended; a running job's users are its delete wave's, once every user
    # of the job is disabled (a job deleting now schedules them due at once, in its first wave)
    in_jobs = rt.store.jobs.running_users()
    due = [entry.user_name for entry in ledger.due_deletions(now) if entry.user_name not in in_jobs]
    report.deletions = take_apart(
        rt, due, grace=timedelta(0), actor=actor, reference=REFERENCE, stepper=stepper
    )

    # 2b. bulk offboarding jobs that stopped moving (a unit dead after FC's retries): sent on again
    if not dry_run:
        try:
            # half of what is left of the tick at most, so the drift sweep and deliveries still run
            share = stop_at if stop_at == float("inf") else time.time() + (stop_at - time.time()) / 2
            report.resumed_jobs = resume_stalled(rt, stop_at=share)
        except Exception as exc:  # the job records stay; the next tick tries again
            stepper.journal.error("jobs", "resume", type(exc).__name__)

    # 3. drift
    skip = set(report.deletions) | ({g.user_name for g in report.expired} if dry_run else set())
    report.drift = find_drift(
        rt,
        stepper,
        now=now,
        skip=skip,
        remediate=remediate,
        sweep=sweep,
        sweeps=sweeps,
        stop_at=stop_at,
        max_users=max_users,
    )
    for d in report.drift:
        if not (remediate and d.fix is not None):
            stepper.journal.human(d.user_name, f"{d.kind} {d.target}".strip())
    if report.drift:
        audit(
            "drift.found",
            actor=actor,
            ticket_id=None,
            outcome="remediated" if remediate and not dry_run else "reported",
            drift=[d.describe(remediate and not dry_run and d.fix is not None) for d in report.drift],
        )
    # AccessKey hygiene: the Cloud Config rules, rotations due, unused keys
    report.keys = key_hygiene(rt, stepper, now=now, skip=set(report.deletions))
    if not dry_run:
        tell_and_deliver(rt, report, now)
    return report


def tell_and_deliver(rt: Runtime, report: ReconcileReport, now: datetime) -> None:
    """4. notices (grants ending in 7 days and in 1 day, grants expired, deletions finished), each
    once; then one pass over results and notices still waiting to be delivered (FC has no other
    delivery loop: the timer is it)."""
    expired = sorted({g.ticket_id for g in report.expired})
    deleted = [name for name, outcome in report.deletions.items() if outcome.state == "deleted"]
    send_all(
        rt,
        [
            *expiry_notices(rt, now),
            *(revoked_notice(rt, ticket_id, "expired") for ticket_id in expired),
            *deleted_notices(rt, deleted),
        ],
    )
    try:
        deliver_due(rt)
    except Exception as exc:  # the records stay; the next pass tries again
        audit(
            "delivery.pass_failed",
            actor=REFERENCE,
            ticket_id=None,
            outcome="failed",
            error=type(exc).__name__,
        )


def key_hygiene(rt: Runtime, stepper: Stepper, *, now: datetime, skip: set[str]) -> dict[str, UserKeyReport]:
    """`check_user_keys` for every managed user the ledger holds as active; findings, rotations and
    held rotations are reported, errors wait for the next pass."""
    reports: dict[str, UserKeyReport] = {}
    names = sorted(
        r.user_name for r in rt.store.ledger.all_users() if r.status == "active" and r.user_name not in skip
    )
    for name in names:
        report = reports[name] = check_user_keys(rt, name, now=now, dry_run=stepper.dry_run)
        for error in report.errors:
            stepper.journal.error(name, "access keys", error)
        if report.busy and not any(e.get("field") == f"{name}:lock" for e in stepper.journal.errors):
            stepper.journal.error(name, "lock", BUSY)
        for finding in report.findings:
            stepper.journal.human(name, f"{finding.rule}: {finding.access_key_id} {finding.detail}")
        if report.rotation is not None and report.rotation.state == "held":
            stepper.journal.human(name, f"key rotation held: {report.rotation.hold_reason}")
        if not stepper.dry_run and not report.errors and not report.busy and not report.missing:
            rt.store.ledger.put_key_findings(
                KeyFindingsRecord(
                    user_name=name,
                    evaluated_at=now,
                    findings=[f.describe() for f in report.findings],
                    rotation_state=report.rotation.state if report.rotation else None,
                    hold_reason=report.rotation.hold_reason if report.rotation else None,
                )
            )
    findings = [f.describe() for r in reports.values() for f in r.findings]
    if findings:
        audit("keys.findings", actor=REFERENCE, ticket_id=None, outcome="reported", findings=findings)
    return reports


@contextlib.contextmanager
def _locked(rt: Runtime, names: Sequence[str], stepper: Stepper) -> Iterator[set[str]]:
    """The users provisioning is not changing right now; the others wait for the next pass."""
    if stepper.dry_run:
        yield set(names)
        return
    with user_locks(rt, names) as (held, busy):
        for name in busy:
            stepper.journal.error(name, "lock", BUSY)
        yield set(held)


def find_drift(
    rt: Runtime,
    stepper: Stepper,
    *,
    now: datetime,
    skip: set[str],
    remediate: bool = False,
    sweep: SweepRecord | None = None,
    sweeps: SweepLog | None = None,
    stop_at: float = float("inf"),
    max_users: int | None = None,
) -> list[Drift]:
    """Examine managed users one at a time, each under its own lock, and compare what RAM holds with
    what the ledger says it should; with `remediate`, undo what may be undone.

    What can be read in bulk is read once per tick: RAM's users (ListUsers), IMS's
    `managed-by=ramflow` users and every resource-group grant (ListPolicyAttachments). Then, slice by
    slice from the sweep's cursor, each user is locked, its ledger record and grants are read, and
    RAM is asked only what the bulk reads do not answer: its AccessKeys, account-scope policies,
    groups and login profile. What another flow does to a user meanwhile can never look like drift:
    the ledger is read under the lock, and a bulk answer that disagrees with it (a missing or extra
    user, tag or resource-group grant) is read again under the lock before it is believed. A user
    another flow holds is left to the next sweep; the lock is held for one user's few calls, so an
    offboarding never waits for a sweep. After each slice the cursor is saved; at `stop_at` the tick
    ends (as it does after `max_users`) and the next one goes on from there."""
    ledger, ram, rm, ims = rt.store.ledger, rt.cloud.ram, rt.cloud.rm, rt.cloud.ims
    bulk = BulkView()
    found = stepper.run(
        "read RAM's users in bulk",
        [
            Step("account", "ListUsers", "", lambda: ram.list_users()),
            Step(
                "account",
                "ListPolicyAttachments",
                "IMSUser",
                lambda: rm.list_policy_attachments(principal_type="IMSUser"),
            ),
        ],
    )
    if not all(d.ok for d in found):
        return []  # the journal has the error; the next tick tries again
    users = found[0].value
    bulk.existing = {u.name for u in users}
    for attachment in found[1].value:
        if is_resource_group(attachment.resource_group_id):
            bulk.rg_grants.setdefault(attachment.principal_name, []).append(attachment)
    tagged = stepper.run(
        "find managed users",
        [
            Step(
                "account",
                "ListTagResources",
                "=".join(MANAGED_BY),
                lambda: ims.users_with_tag(*MANAGED_BY, users=users),
            )
        ],
    )
    if not tagged[0].ok:
        return []
    bulk.tagged = set(tagged[0].value or [])
    known = {record.user_name for record in ledger.all_users() if record.status != "deleted"}
    candidates = sorted((known | bulk.tagged) - skip)
    cursor = sweep.cursor if sweep is not None else ""
    todo = [name for name in candidates if name > cursor]
    if sweep is not None:
        sweep.total = sweep.checked + len(todo)

    drift: list[Drift] = []
    if stepper.progress is not None:
        stepper.progress.level("examine users", len(todo))
    for start in range(0, len(todo), SLICE):
        if time.time() >= stop_at or (max_users is not None and start >= max_users):
            break
        names = todo[start : start + SLICE]
        examined = run_all(
            [(name, partial(_examine, rt, stepper, name, bulk, now, remediate)) for name in names],
            rt.settings.max_concurrency,
        )
        if any(isinstance(o.error, BudgetExhausted) for o in examined):
            # no API budget left in this tick: the slice is examined again by the next one
            stepper.journal.error("reconcile", "sweep", "the account's API budget is spent; next tick")
            break
        found_here = [d for o in examined for d in o.unwrap()]
        drift += found_here
        if sweep is not None and sweeps is not None:
            sweep.cursor, sweep.checked = names[-1], sweep.checked + len(names)
            sweep.drift += len(found_here)
            if not sweeps.save(sweep, rt.settings.sweep_lease_seconds):
                stepper.journal.error("reconcile", "sweep", "another sweep took over the lease; stopping")
                break
    else:
        if sweep is not None:
            sweep.finished_at = time.time()
    return drift


SLICE = 50
"""Users examined between two saves of the cursor."""


@dataclass
class BulkView:
    """What one tick read in bulk: RAM's users, the managed-by tag, resource-group grants by principal."""

    existing: set[str] = field(default_factory=set)
    tagged: set[str] = field(default_factory=set)
    rg_grants: dict[str, list[PolicyAttachment]] = field(default_factory=dict)


def _examine(
    rt: Runtime, stepper: Stepper, name: str, bulk: BulkView, now: datetime, remediate: bool
) -> list[Drift]:
    """One user, under its lock: read what the bulk view does not answer, compare, maybe fix."""
    own = Stepper(4, stepper.journal, dry_run=stepper.dry_run)
    try:
        with _locked(rt, [name], stepper) as held:
            if name not in held:
                return []
            ledger = rt.store.ledger
            record = ledger.get_user(name)
            holdings = _read_user(rt, own, name, bulk, record)
            if not holdings.readable:
                return []
            drift = _compare(rt, holdings, record, ledger.grants_of_user(name), now)
            if remediate:
                fixes = [d.fix for d in drift if d.fix is not None]
                if fixes:
                    own.run("remediate drift", fixes)
            return drift
    finally:
        if stepper.progress is not None:
            stepper.progress.advance()


def _read_user(
    rt: Runtime, stepper: Stepper, name: str, bulk: BulkView, record: UserRecord | None
) -> Holdings:
    """The user's holdings: per-user reads for what only they answer, the bulk view for the rest,
    re-read under the lock where the bulk view disagrees with the ledger."""
    ram, rm, ims = rt.cloud.ram, rt.cloud.rm, rt.cloud.ims
    principal = rt.logon_principal(name)
    held = Holdings(name)
    expected_rg = record is not None and any(
        g.resource_group_id and g.status == "active" for g in rt.store.ledger.grants_of_user(name)
    )
    rg = bulk.rg_grants.get(principal, [])
    steps: list[Step] = []
    in_ledger = record is not None and record.status != "deleted"
    if name not in bulk.existing and in_ledger:  # made after ListUsers, or really gone?
        steps.append(Step(name, "GetUser", "", lambda: ram.get_user(name)))
    if name in bulk.existing or in_ledger:
        steps += [
            Step(name, "ListAccessKeys", "", lambda: ram.list_access_keys(name)),
            Step(name, "ListPoliciesForUser", "", lambda: ram.list_policies_for_user(name)),
            Step(name, "ListGroupsForUser", "", lambda: ram.list_groups_for_user(name)),
            Step(name, "GetLoginProfile", "", lambda: ram.get_login_profile(name) is not None),
        ]
    if in_ledger and name not in bulk.tagged:  # tagged since the bulk read, or really untagged?
        steps.append(Step(name, "ListTagResources", "tags", lambda: ims.list_user_tags(name)))
    else:
        held.tags = dict([MANAGED_BY]) if name in bulk.tagged else {}
    if rg or expected_rg:  # the bulk view would report drift either way: read it again under the lock
        steps.append(
            Step(
                name,
                "ListPolicyAttachments",
                principal,
                lambda: rm.list_policy_attachments(principal_name=principal, principal_type="IMSUser"),
            )
        )
    held.found = name in bulk.existing
    for d in stepper.run("read what RAM holds", steps):
        if not d.ok:
            held.readable = False
        elif d.step.action == "GetUser":
            held.found = d.value is not None and not d.absent
        elif d.absent:
            if d.step.action in ("ListAccessKeys", "ListPoliciesForUser", "ListGroupsForUser"):
                held.found = False  # deleted since the bulk read
        elif d.step.action == "ListAccessKeys":
            held.keys = list(d.value)
        elif d.step.action == "ListPoliciesForUser":
            held.policies = list(d.value)
        elif d.step.action == "ListGroupsForUser":
            held.groups = list(d.value)
        elif d.step.action == "GetLoginProfile":
            held.login_profile = bool(d.value)
        elif d.step.action == "ListTagResources":
            held.tags = dict(d.value or {})
        elif d.step.action == "ListPolicyAttachments":
            rg = [a for a in d.value if is_resource_group(a.resource_group_id)]
    held.rg_grants = list(rg)
    return held


def _compare(
    rt: Runtime, held: Holdings, record: UserRecord | None, grants: list[GrantRecord], now: datetime
) -> list[Drift]:
    name = held.user_name
    if not held.found:
        return [] if record is None or record.status == "deleted" else [Drift(name, "missing_user")]
    if record is None:
        return [Drift(name, "not_in_ledger", "tagged managed-by=ramflow")]
    if record.status == "deleted":
        return [Drift(name, "deleted_user_present")]
    if not held.managed:
        return [Drift(name, "untagged", "the ledger manages it; RAM lacks managed-by=ramflow")]
    ram, rm = rt.cloud.ram, rt.cloud.rm
    active = [
        g
        for g in grants
        if record.status == "active" and g.status == "active" and (g.expires_at is None or g.expires_at > now)
    ]
    drift: list[Drift] = []

    expected = {(g.policy_type, g.policy_name) for g in active if g.resource_group_id is None}
    actual = {(p.type, p.name) for p in held.policies}
    for policy_type, policy in sorted(actual - expected):
        drift.append(
            Drift(
                name,
                "extra_policy",
                f"{policy_type}:{policy}",
                Step(
                    name,
                    "DetachPolicyFromUser",
                    f"{policy_type}:{policy}",
                    partial(ram.detach_policy_from_user, name, policy, policy_type),
                ),
            )
        )
    drift += [Drift(name, "missing_policy", f"{t}:{p}") for t, p in sorted(expected - actual)]

    expected_rg = {(g.resource_group_id, g.policy_type, g.policy_name) for g in active if g.resource_group_id}
    principal = rt.logon_principal(name)
    for grant in held.rg_grants:
        held_rg = (grant.resource_group_id, grant.policy_type, grant.policy_name)
        if held_rg in expected_rg:
            continue
        target = f"{grant.policy_type}:{grant.policy_name}@{grant.resource_group_id}"
        drift.append(
            Drift(
                name,
                "extra_rg_policy",
                target,
                Step(
                    name,
                    "DetachPolicy",
                    target,
                    partial(
                        rm.detach_policy,
                        grant.resource_group_id,
                        grant.policy_name,
                        grant.policy_type,
                        principal,
                        "IMSUser",
                    ),
                ),
            )
        )
    actual_rg = {(a.resource_group_id, a.policy_type, a.policy_name) for a in held.rg_grants}
    drift += [
        Drift(name, "missing_rg_policy", f"{t}:{p}@{rg}") for rg, t, p in sorted(expected_rg - actual_rg)
    ]

    for group in held.groups:
        drift.append(
            Drift(
                name,
                "extra_group",
                group,
                Step(name, "RemoveUserFromGroup", group, partial(ram.remove_user_from_group, name, group)),
            )
        )

    if rt.store.ledger.get_intent(access_key_intent(name)) is None:  # no AccessKey being made right now
        ours = (
            {record.credential.access_key_id}
            if record.status == "active" and isinstance(record.credential, AccessKeyRecord)
            else set()
        ) | keys_in_rotation(rt, name)
        for key in held.keys:
            if key.access_key_id in ours or (record.status != "active" and key.status != "Active"):
                continue
            fix = (
                Step(
                    name,
                    "UpdateAccessKey",
                    f"{key.access_key_id} Inactive",
                    partial(ram.update_access_key, name, key.access_key_id, "Inactive"),
                )
                if key.status == "Active"
                else None
            )
            drift.append(Drift(name, "extra_access_key", f"{key.access_key_id} ({key.status})", fix))

    console = record.status == "active" and record.access_mode == "console"
    if held.login_profile and not console:
        drift.append(
            Drift(
                name,
                "extra_login_profile",
                "",
                Step(name, "DeleteLoginProfile", "", lambda: ram.delete_login_profile(name)),
            )
        )
    elif console and held.login_profile is False and record.credential is not None:
        drift.append(Drift(name, "missing_login_profile"))
    return drift
