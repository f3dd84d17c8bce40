"""`user.offboarded`: every RAM user a leaver owns loses all access at once and is deleted soon after.

What RAM actually holds is read first (keys, policies at both scopes, groups, MFA — whatever was
added by hand too), then taken apart in dependency order, each level's calls side by side:

  read    tags, AccessKeys, account policies, resource-group grants, groups, MFA device
  1       disable: delete the login profile, set every key Inactive (deleting now: delete it),
          detach every policy at account scope and in every resource group, leave every group;
          deleting now also unbinds the MFA device
  2       (deleting now) delete the user and the unbound MFA device; see who still uses the
          ramflow custom policies the user had
  3       (deleting now) delete those custom policies nothing uses any more

Before anything changes, the ledger gets the user's deletion date (now, or after `grace`) and a
memo of the MFA devices and custom policies to clean up: a replay, or `reconcile` once the date
has passed, finishes the job even after the user itself is gone. Users without
`managed-by=ramflow` are never changed: they are reported as needing a human, and audited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.audit import audit
from shared.cloud.ram import AccessKeyInfo, PolicyRef
from shared.cloud.resource_manager import PolicyAttachment
from shared.flows.offboard_steps import (
    Done,
    Journal,
    Progress,
    Step,
    Stepper,
    all_ok,
    by_subject,
    delete_policy_steps,
    is_ramflow_policy,
    is_resource_group,
    policy_usage_steps,
    retried_until_complete,
    unused_policies,
)
from shared.flows.users import is_managed, user_locks
from shared.models.events import CloudEvent, UserOffboarded
from shared.models.results import Result
from shared.runtime import Runtime
from shared.store.ledger import Ledger
from shared.store.records import GrantRecord, Intent, TicketRecord

MEMO = "offboard/"
UNMANAGED = "not tagged managed-by=ramflow: ramflow never changes it"

State = Literal["deleted", "disabled", "gone", "needs_human", "busy", "failed", "planned"]


@dataclass
class Holdings:
    """What RAM holds for one user, as read just now."""

    user_name: str
    found: bool = True
    readable: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    login_profile: bool | None = None
    keys: list[AccessKeyInfo] = field(default_factory=list)
    policies: list[PolicyRef] = field(default_factory=list)
    rg_grants: list[PolicyAttachment] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    mfa_serial: str | None = None

    @property
    def managed(self) -> bool:
        return is_managed(self.tags)

    def ramflow_policies(self) -> set[str]:
        """Custom policies ramflow rendered, attached at either scope."""
        return {p.name for p in self.policies if is_ramflow_policy(p.type, p.name)} | {
            a.policy_name for a in self.rg_grants if is_ramflow_policy(a.policy_type, a.policy_name)
        }

    def summary(self) -> dict[str, Any]:
        return {
            "login_profile": self.login_profile,
            "access_keys": [f"{k.access_key_id} ({k.status})" for k in self.keys],
            "policies": [f"{p.type}:{p.name}" for p in self.policies],
            "resource_group_policies": [
                f"{a.policy_type}:{a.policy_name}@{a.resource_group_id}" for a in self.rg_grants
            ],
            "groups": list(self.groups),
            "mfa_device": self.mfa_serial,
        }


def discover(
    rt: Runtime, names: Sequence[str], stepper: Stepper, *, login_profile: bool = False
) -> dict[str, Holdings]:
    """One level of reads for every user; a user whose tags are missing does not exist."""
    ram, rm, ims = rt.cloud.ram, rt.cloud.rm, rt.cloud.ims
    steps: list[Step] = []
    for name in names:
        principal = rt.logon_principal(name)
        steps += [
            Step(name, "ListTagResources", "tags", lambda n=name: ims.list_user_tags(n)),
            Step(name, "ListAccessKeys", "", lambda n=name: ram.list_access_keys(n)),
            Step(name, "ListPoliciesForUser", "", lambda n=name: ram.list_policies_for_user(n)),
            Step(
                name,
                "ListPolicyAttachments",
                principal,
                lambda p=principal: rm.list_policy_attachments(principal_name=p, principal_type="IMSUser"),
            ),
            Step(name, "ListGroupsForUser", "", lambda n=name: ram.list_groups_for_user(n)),
            Step(name, "GetUserMFAInfo", "", lambda n=name: ram.get_user_mfa_info(n)),
        ]
        if login_profile:
            steps.append(
                Step(name, "GetLoginProfile", "", lambda n=name: ram.get_login_profile(n) is not None)
            )
    holdings = {name: Holdings(name) for name in names}
    for d in stepper.run("read what RAM holds", steps):
        found = holdings[d.step.subject]
        if not d.ok:
            found.readable = False
        elif d.step.action == "ListTagResources":
            found.found, found.tags = not d.absent, dict(d.value or {})
        elif d.absent:
            continue
        elif d.step.action == "ListAccessKeys":
            found.keys = list(d.value)
        elif d.step.action == "ListPoliciesForUser":
            found.policies = list(d.value)
        elif d.step.action == "ListPolicyAttachments":
            found.rg_grants = [a for a in d.value if is_resource_group(a.resource_group_id)]
        elif d.step.action == "ListGroupsForUser":
            found.groups = list(d.value)
        elif d.step.action == "GetUserMFAInfo":
            found.mfa_serial = d.value
        elif d.step.action == "GetLoginProfile":
            found.login_profile = bool(d.value)
    return holdings


@dataclass
class UserOutcome:
    user_name: str
    state: State
    holdings: Holdings | None = None
    due_at: datetime | None = None


@dataclass
class OffboardReport:
    """Per-user outcomes and the journal of calls, for the reply, the CLI table and the audit."""

    journal: Journal
    users: dict[str, UserOutcome] = field(default_factory=dict)
    dry_run: bool = False

    def result(self, *, user_name: str | None = None) -> Result:
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
) -> OffboardReport:
    """Offboard one user, or every user of an owner; the CLI calls this directly."""
    stepper = Stepper(rt.settings.max_concurrency, dry_run=dry_run, progress=progress)
    names = find_users(rt, data, stepper)
    users = take_apart(rt, names, grace=data.grace, actor=actor, reference=data.hr_event_id, stepper=stepper)
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
    return sorted(set(rt.store.ledger.users_of_owner(data.owner)) | set(tagged))


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
) -> dict[str, UserOutcome]:
    """Disable every managed user named, and delete those whose deletion date has come."""
    if not names:
        return {}
    outcomes: dict[str, UserOutcome] = {}
    with _locked(rt, names, stepper.dry_run) as (held, busy):
        for name in busy:
            stepper.journal.error(name, "lock", "another ramflow flow is changing this user; retry")
            outcomes[name] = UserOutcome(name, "busy")
        if held:
            work = _Teardown(rt, stepper, grace=grace, actor=actor, reference=reference)
            outcomes.update(work.run(held))
    return {name: outcomes[name] for name in names}


@contextlib.contextmanager
def _locked(rt: Runtime, names: Sequence[str], dry_run: bool) -> Iterator[tuple[list[str], list[str]]]:
    if dry_run:  # a dry run changes nothing, so it needs no lock (and writes nothing)
        yield list(names), []
        return
    with user_locks(rt, names) as (held, busy):
        yield held, busy


@dataclass
class _Teardown:
    rt: Runtime
    stepper: Stepper
    grace: timedelta
    actor: str
    reference: str

    @property
    def ledger(self) -> Ledger:
        return self.rt.store.ledger

    @property
    def journal(self) -> Journal:
        return self.stepper.journal

    def run(self, names: list[str]) -> dict[str, UserOutcome]:
        rt, ram = self.rt, self.rt.cloud.ram
        now = rt.clock()
        holdings = discover(rt, names, self.stepper, login_profile=self.stepper.dry_run)
        outcomes: dict[str, UserOutcome] = {}
        ours: list[Holdings] = []
        gone: list[str] = []
        for name in names:
            found = holdings[name]
            if not found.readable:
                outcomes[name] = UserOutcome(name, "failed", found)
            elif not found.found:
                gone.append(name)
            elif not found.managed:
                self.journal.human(name, UNMANAGED)
                audit(
                    "user.unmanaged",
                    actor=self.actor,
                    ticket_id=None,
                    outcome="needs_human",
                    user=name,
                    hr_event=self.reference,
                )
                outcomes[name] = UserOutcome(name, "needs_human", found)
            else:
                ours.append(found)

        tickets = tickets_of_users(self.ledger, [*(h.user_name for h in ours), *gone])
        grants = _grants_by_user(tickets)
        due = {h.user_name: self._schedule(h.user_name, now) for h in ours}
        deleting = [h.user_name for h in ours if due[h.user_name] <= now]
        memo = {
            name: self._remember(name, holdings.get(name), grants.get(name, []))
            for name in [*(h.user_name for h in ours), *gone]
        }

        # Level 1: disable (and, deleting now, take apart everything the user holds)
        level = [
            step
            for h in ours
            for step in take_apart_steps(rt, h, delete=due[h.user_name] <= now, dry_run=self.stepper.dry_run)
        ]
        first = by_subject(self.stepper.run("disable", level))

        # Level 2: delete the users, their MFA devices; who still uses the custom policies
        level = [
            Step(name, "DeleteUser", "", lambda n=name: ram.delete_user(n))
            for name in deleting
            if all_ok(first.get(name, []))
        ]
        for name in [*deleting, *gone]:
            unbind = [d for d in first.get(name, []) if d.step.action == "UnbindMFADevice"]
            if not all_ok(unbind):
                continue  # still bound: deleting it would conflict
            for serial in memo[name][1]:
                level.append(
                    Step(
                        name,
                        "DeleteVirtualMFADevice",
                        serial,
                        lambda s=serial: ram.delete_virtual_mfa_device(s),
                        settled_by=("DeleteConflict",),  # bound again meanwhile, to someone: not ours now
                    )
                )
        candidates = sorted({p for name in [*deleting, *gone] for p in memo[name][0]})
        if self.stepper.dry_run:
            level += [
                Step(f"policy {p}", "DeletePolicy", f"{p} (if nothing else uses it)", lambda: None)
                for p in candidates
            ]
        else:
            level += policy_usage_steps(rt, candidates)
        second = self.stepper.run("delete users", level)

        # Level 3: custom policies nothing uses any more
        unused, unknown = unused_policies(second)
        third = self.stepper.run("delete unused policies", delete_policy_steps(rt, unused))
        policy_failed = unknown | {d.step.target for d in third if not d.ok}

        by_user = by_subject(second)
        for h in ours:
            name = h.user_name
            if self.stepper.dry_run:
                outcomes[name] = UserOutcome(name, "planned", h, due[name])
                continue
            mine = first.get(name, []) + by_user.get(name, [])
            if due[name] > now:
                state: State = "disabled" if all_ok(mine) else "failed"
            else:
                deleted = any(d.step.action == "DeleteUser" and d.ok for d in mine)
                state = "deleted" if deleted else "failed"
            outcomes[name] = UserOutcome(name, state, h, due[name])
        for name in gone:
            outcomes[name] = UserOutcome(name, "planned" if self.stepper.dry_run else "gone", None, now)
        if not self.stepper.dry_run:
            self._record(outcomes, memo, by_user, policy_failed, tickets)
        return outcomes

    # --- the ledger -------------------------------------------------------------------------------
    def _schedule(self, name: str, now: datetime) -> datetime:
        """Write the deletion date first: a crash after disabling can never leave a user undeleted."""
        if self.stepper.dry_run:
            return now + self.grace
        return self.ledger.schedule_deletion(name, now + self.grace)

    def _remember(
        self, name: str, found: Holdings | None, grants: list[GrantRecord]
    ) -> tuple[list[str], list[str]]:
        """(custom policies, MFA devices) to clean up once the user is deleted; kept in the ledger
        until done, since RAM forgets them as soon as they are detached and unbound."""
        memo = self.ledger.get_intent(MEMO + name)
        remembered = memo.result if memo is not None and memo.result else {}
        policies = set(remembered.get("policies", [])) | {
            g.policy_name for g in grants if g.created_by_ramflow and g.policy_type == "Custom"
        }
        devices = set(remembered.get("mfa_devices", []))
        if found is not None:
            policies |= found.ramflow_policies()
            if found.mfa_serial:
                devices.add(found.mfa_serial)
        result = {"policies": sorted(policies), "mfa_devices": sorted(devices)}
        if not self.stepper.dry_run and (policies or devices) and result != remembered:
            self.ledger.put_intent(Intent(key=MEMO + name, ticket_id=self.reference, result=result))
        return result["policies"], result["mfa_devices"]

    def _record(
        self,
        outcomes: dict[str, UserOutcome],
        memo: dict[str, tuple[list[str], list[str]]],
        second: dict[str, list[Done]],
        policy_failed: set[str],
        tickets: list[TicketRecord],
    ) -> None:
        ledger = self.ledger
        revoked_users: set[str] = set()
        for name, outcome in outcomes.items():
            if outcome.state in ("deleted", "gone"):
                cleaned = all_ok(second.get(name, [])) and not (set(memo[name][0]) & policy_failed)
                if cleaned:
                    ledger.delete_intent(MEMO + name)
                    ledger.clear_deletion(name)
                self._set_user(name, "deleted", None)
                revoked_users.add(name)
            elif outcome.state == "disabled":
                self._set_user(name, "disabled", outcome.due_at)
                revoked_users.add(name)
            else:
                continue
            audit(
                "user.offboarded" if outcome.state != "disabled" else "user.disabled",
                actor=self.actor,
                ticket_id=None,
                outcome=outcome.state,
                user=name,
                hr_event=self.reference,
                delete_after=outcome.due_at.isoformat()
                if outcome.state == "disabled" and outcome.due_at
                else None,
                actions=[f"{a['action']} {a['target']}".strip() for a in self.journal.actions_of(name)],
            )
        mark_users_revoked(ledger, tickets, revoked_users)

    def _set_user(
        self, name: str, status: Literal["disabled", "deleted"], delete_after: datetime | None
    ) -> None:
        if self.ledger.get_user(name) is None:
            return  # the ledger never knew the user (found by its tags): nothing to update

        def change(record: Any) -> None:
            record.status = status
            record.delete_after = delete_after
            if status == "deleted":
                record.credential = None  # ciphertext of a credential that no longer exists

        self.ledger.update_user(name, change)


def take_apart_steps(rt: Runtime, h: Holdings, *, delete: bool, dry_run: bool) -> list[Step]:
    """Level 1 for one user: disable everything it holds; when it is deleted now, keys are deleted
    rather than deactivated and the MFA device is unbound. The login profile is deleted blind ("does
    not exist" is done), except in a dry run, which only plans what it saw."""
    ram, rm, name = rt.cloud.ram, rt.cloud.rm, h.user_name
    principal = rt.logon_principal(name)
    steps: list[Step] = []
    if not dry_run or h.login_profile:
        steps.append(Step(name, "DeleteLoginProfile", "", lambda: ram.delete_login_profile(name)))
    for key in h.keys:
        key_id = key.access_key_id
        if delete:
            steps.append(
                Step(name, "DeleteAccessKey", key_id, lambda k=key_id: ram.delete_access_key(name, k))
            )
        elif key.status == "Active":
            steps.append(
                Step(
                    name,
                    "UpdateAccessKey",
                    f"{key_id} Inactive",
                    lambda k=key_id: ram.update_access_key(name, k, "Inactive"),
                )
            )
    for policy in h.policies:
        steps.append(
            Step(
                name,
                "DetachPolicyFromUser",
                f"{policy.type}:{policy.name}",
                lambda p=policy: ram.detach_policy_from_user(name, p.name, p.type),  # type: ignore[misc]
            )
        )
    for grant in h.rg_grants:
        steps.append(
            Step(
                name,
                "DetachPolicy",
                f"{grant.policy_type}:{grant.policy_name}@{grant.resource_group_id}",
                lambda g=grant: rm.detach_policy(
                    g.resource_group_id, g.policy_name, g.policy_type, principal, "IMSUser"
                ),
            )
        )
    for group in h.groups:
        steps.append(
            Step(name, "RemoveUserFromGroup", group, lambda g=group: ram.remove_user_from_group(name, g))
        )
    if delete and h.mfa_serial:
        steps.append(Step(name, "UnbindMFADevice", h.mfa_serial, lambda: ram.unbind_mfa_device(name)))
    return steps


def tickets_of_users(ledger: Ledger, names: Sequence[str]) -> list[TicketRecord]:
    """Every ticket naming any of these users, pending ones too (offboarding closes them), by id."""
    found = {t.ticket_id: t for name in sorted(set(names)) for t in ledger.tickets_of_user(name)}
    return [found[ticket_id] for ticket_id in sorted(found)]


def _grants_by_user(tickets: Sequence[TicketRecord]) -> dict[str, list[GrantRecord]]:
    found: dict[str, list[GrantRecord]] = {}
    for ticket in tickets:
        for grant in ticket.grants:
            found.setdefault(grant.user_name, []).append(grant)
    return found


def mark_users_revoked(ledger: Ledger, tickets: Sequence[TicketRecord], users: set[str]) -> None:
    """Every grant of these users is gone from RAM: the ledger says so, ticket by ticket."""
    ids = {g.grant_id for t in tickets for g in t.grants if g.user_name in users and g.status != "revoked"}
    mark_revoked(ledger, tickets, ids)


def mark_revoked(ledger: Ledger, tickets: Sequence[TicketRecord], grant_ids: set[str]) -> None:
    """Grants revoked; a ticket none of whose grants is left becomes `revoked`."""
    for ticket in tickets:
        if not any(g.grant_id in grant_ids for g in ticket.grants):
            continue

        def change(t: TicketRecord) -> None:
            for grant in t.grants:
                if grant.grant_id in grant_ids:
                    grant.status = "revoked"
            if t.grants and all(g.status == "revoked" for g in t.grants) and t.status != "rejected":
                t.status = "revoked"

        ledger.update_ticket(ticket.ticket_id, change)
