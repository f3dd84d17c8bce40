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
from functools import partial
from typing import Any, Literal

from shared.audit import audit
from shared.flows.holdings import Holdings, discover
from shared.flows.saga import (
    Done,
    Journal,
    Progress,
    Step,
    Stepper,
    all_ok,
    by_subject,
    delete_policy_steps,
    policy_usage_steps,
    retried_until_complete,
    unused_policies,
)
from shared.flows.users import made_by_ramflow, owner_lock, user_locks
from shared.models.events import CloudEvent, UserOffboarded, UserRehired
from shared.models.results import Result
from shared.runtime import Runtime
from shared.store.ledger import Ledger
from shared.store.records import GrantRecord, Intent, TicketRecord

MEMO = "offboard/"
LOCK_WAIT = 10.0
"""Seconds an offboarding waits for a user's lock: reconcile holds one for a user's few calls only,
so a leaver is never turned away because a sweep happens to be looking at them."""
UNMANAGED = "not tagged managed-by=ramflow: ramflow never changes it"

State = Literal["deleted", "disabled", "gone", "needs_human", "busy", "failed", "planned"]


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
    if data.owner is not None and not dry_run:
        # Under the owner's lock (see shared/flows/users.py): the leaver is recorded and the users
        # are listed while no approval for the owner is half-way, so none is missed.
        with owner_lock(rt, data.owner):
            record_leaver(rt, data, actor=actor)
            names = find_users(rt, data, stepper)
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
    with user_locks(rt, names, wait=LOCK_WAIT) as (held, busy):
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
            elif not found.managed and not made_by_ramflow(rt, name, found.tags):
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

        tickets = self.ledger.tickets_of_users([*(h.user_name for h in ours), *gone])
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
            Step(name, "DeleteUser", "", partial(ram.delete_user, name))
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
                        partial(ram.delete_virtual_mfa_device, serial),
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
        ledger.mark_users_revoked(tickets, revoked_users)

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
            steps.append(Step(name, "DeleteAccessKey", key_id, partial(ram.delete_access_key, name, key_id)))
        elif key.status == "Active":
            steps.append(
                Step(
                    name,
                    "UpdateAccessKey",
                    f"{key_id} Inactive",
                    partial(ram.update_access_key, name, key_id, "Inactive"),
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
                partial(
                    rm.detach_policy,
                    grant.resource_group_id,
                    grant.policy_name,
                    grant.policy_type,
                    principal,
                    "IMSUser",
                ),
            )
        )
    for group in h.groups:
        steps.append(
            Step(name, "RemoveUserFromGroup", group, partial(ram.remove_user_from_group, name, group))
        )
    if delete and h.mfa_serial:
        steps.append(Step(name, "UnbindMFADevice", h.mfa_serial, lambda: ram.unbind_mfa_device(name)))
    return steps


def _grants_by_user(tickets: Sequence[TicketRecord]) -> dict[str, list[GrantRecord]]:
    found: dict[str, list[GrantRecord]] = {}
    for ticket in tickets:
        for grant in ticket.grants:
            found.setdefault(grant.user_name, []).append(grant)
    return found
