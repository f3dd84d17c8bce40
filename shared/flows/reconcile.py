"""`reconcile` (timer): what must happen because time passed, and what drifted from the ledger.

1. grants whose duration has ended are revoked (`revoke_grants`, as `access.revoked` does);
2. deletions whose grace has ended are finished (`take_apart`, deleting now) — and so is any
   offboarding an event left unfinished, since its deletion date is written before anything changes;
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.audit import audit
from shared.delivery import deliver_due
from shared.flows.holdings import Holdings, discover
from shared.flows.keys import Finding, UserKeyReport, check_user_keys, describe_rotation, keys_in_rotation
from shared.flows.offboard import UserOutcome, learn_alias, take_apart
from shared.flows.provision import access_key_intent
from shared.flows.revoke import revoke_grants
from shared.flows.saga import (
    Journal,
    Progress,
    Step,
    Stepper,
)
from shared.flows.users import MANAGED_BY, user_locks
from shared.models.results import Result
from shared.notify import deleted_notices, expiry_notices, revoked_notice, send_all
from shared.runtime import Runtime
from shared.store.records import AccessKeyRecord, GrantRecord, KeyFindingsRecord, UserRecord

REFERENCE = "reconcile"
BUSY = "another ramflow flow is changing this user; next pass"


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

    @property
    def findings(self) -> list[Finding]:
        return [f for report in self.keys.values() for f in report.findings]

    def result(self) -> Result:
        fixed = self.remediate and not self.dry_run
        return self.journal.result(
            plan={
                "dry_run": self.dry_run,
                "expired_grants": [g.grant_id for g in self.expired],
                "deletions": {name: outcome.state for name, outcome in self.deletions.items()},
                "drift": [d.describe(fixed and d.fix is not None) for d in self.drift],
                "findings": [f.describe() for f in self.findings],
                "rotations": {
                    name: describe_rotation(r.rotation) for name, r in self.keys.items() if r.rotation
                },
                "deactivated_unused_keys": {n: r.deactivated for n, r in self.keys.items() if r.deactivated},
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
) -> ReconcileReport:
    """One pass; every step is idempotent, so a failed or overlapping pass is finished by the next."""
    remediate = rt.settings.reconcile_remediate if remediate is None else remediate
    stepper = Stepper(rt.settings.max_concurrency, dry_run=dry_run, progress=progress)
    report = ReconcileReport(stepper.journal, remediate=remediate, dry_run=dry_run)
    ledger = rt.store.ledger
    now = rt.clock()
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

    # 2. deletions whose grace ended
    due = [entry.user_name for entry in ledger.due_deletions(now)]
    report.deletions = take_apart(
        rt, due, grace=timedelta(0), actor=actor, reference=REFERENCE, stepper=stepper
    )

    # 3. drift
    skip = set(report.deletions) | ({g.user_name for g in report.expired} if dry_run else set())
    report.drift = find_drift(rt, stepper, now=now, skip=skip, remediate=remediate)
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
        if not stepper.dry_run and not report.errors and not report.busy:
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
    rt: Runtime, stepper: Stepper, *, now: datetime, skip: set[str], remediate: bool = False
) -> list[Drift]:
    """Read every managed user and compare it with what the ledger says it should hold; with
    `remediate`, undo what may be undone.

    Reading, comparing and remediating all happen under the users' locks, with the ledger and RAM
    read after the locks are taken: what another flow does to a user meanwhile (a new key, a grant)
    can never look like drift. Users another flow holds are left to the next pass."""
    ledger = rt.store.ledger
    found = stepper.run(
        "find managed users",
        [
            Step(
                "account",
                "ListTagResources",
                "=".join(MANAGED_BY),
                lambda: rt.cloud.ims.users_with_tag(*MANAGED_BY),
            )
        ],
    )
    tagged = set(found[0].value or []) if found[0].ok else set()
    known = {record.user_name for record in ledger.all_users() if record.status != "deleted"}
    candidates = sorted((known | tagged) - skip)
    if not candidates:
        return []
    drift: list[Drift] = []
    with _locked(rt, candidates, stepper) as held:
        names = [name for name in candidates if name in held]
        records = {record.user_name: record for record in ledger.all_users()}
        holdings = discover(rt, names, stepper, login_profile=True)
        for name in names:
            user = holdings[name]
            if user.readable:
                drift += _compare(rt, user, records.get(name), ledger.grants_of_user(name), now)
        fixes = [d.fix for d in drift if d.fix is not None]
        if remediate and fixes:
            stepper.run("remediate drift", fixes)
    return drift


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
                    lambda t=policy_type, p=policy: ram.detach_policy_from_user(name, p, t),  # type: ignore[arg-type]
                ),
            )
        )
    drift += [Drift(name, "missing_policy", f"{t}:{p}") for t, p in sorted(expected - actual)]

    expected_rg = {(g.resource_group_id, g.policy_type, g.policy_name) for g in active if g.resource_group_id}
    principal = rt.logon_principal(name)
    for grant in held.rg_grants:
        key = (grant.resource_group_id, grant.policy_type, grant.policy_name)
        if key in expected_rg:
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
                    lambda g=grant: rm.detach_policy(
                        g.resource_group_id, g.policy_name, g.policy_type, principal, "IMSUser"
                    ),
                ),
            )
        )
    actual_rg = {(a.resource_group_id, a.policy_type, a.policy_name) for a in held.rg_grants}
    drift += [
        Drift(name, "missing_rg_policy", f"{t}:{p}@{rg}") for rg, t, p in sorted(expected_rg - actual_rg)
    ]  # type: ignore[misc]

    for group in held.groups:
        drift.append(
            Drift(
                name,
                "extra_group",
                group,
                Step(name, "RemoveUserFromGroup", group, lambda g=group: ram.remove_user_from_group(name, g)),
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
                    lambda k=key.access_key_id: ram.update_access_key(name, k, "Inactive"),
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
