"""Taking a leaver's RAM users apart: every way in is closed for every user before anything slower.

The work runs in phases; each phase visits every user (at most `max_concurrency` users at a time,
paced by the account's API budget) before the next one starts, in the order that ends exposure
soonest:

  1 console   read the tags (is it ramflow's?), delete the login profile
  2 keys      list the AccessKeys; set each Inactive (deleting now: delete it)
  3 rights    list policies at both scopes and groups; detach every policy, leave every group
  -- nobody can sign in or use a key any more; what is left is cleanup --
  4 delete    (deleting now) unbind the MFA device, delete what keys remain, delete the user
  5 shared    delete the unbound MFA devices, and ramflow's custom policies nothing uses any more

Each user's progress is kept in the ledger (`intent/offboard/<user>`) as it goes, together with the
memo of MFA devices and custom policies to clean up: a run that is killed resumes where it stopped
and never repeats a finished phase. Progress belongs to one offboarding (its reference, the HR
event): another event, or the reconcile pass that deletes a user once its grace has ended, closes
the doors again (a few cheap calls) rather than trust what may have changed since.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.audit import audit
from shared.concurrency import run_all
from shared.errors import BudgetExhausted
from shared.flows.holdings import Holdings
from shared.flows.keys import cancel_rotation
from shared.flows.saga import (
    Done,
    Journal,
    Step,
    Stepper,
    all_ok,
    delete_policy_steps,
    is_resource_group,
    policy_usage_steps,
    unused_policies,
)
from shared.flows.users import confirmed_gone, made_by_ramflow
from shared.runtime import Runtime
from shared.store.ledger import Ledger
from shared.store.records import GrantRecord, Intent, TicketRecord

MEMO = "offboard/"
UNMANAGED = "not tagged managed-by=ramflow: ramflow never changes it"
CONSOLE, KEYS, RIGHTS, KEYS_DELETED, MFA_UNBOUND = "console", "keys", "rights", "keys_deleted", "mfa_unbound"
PHASE_CALLS = 4
"""Calls one user's phase may run side by side (its detaches, say)."""

State = Literal["deleted", "disabled", "closed", "gone", "needs_human", "busy", "failed", "planned"]
"""`closed`: no login profile and no usable key (policies still attached); `disabled`: nothing left."""
StopAfter = Literal["keys", "rights"] | None


@dataclass
class UserOutcome:
    user_name: str
    state: State
    holdings: Holdings | None = None
    due_at: datetime | None = None


@dataclass
class _User:
    """One user on its way out: what RAM was found to hold, and its progress (from the ledger)."""

    name: str
    held: Holdings
    due_at: datetime
    reference: str
    done: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    state: State | None = None
    """Set once the user leaves the pipeline: gone, needs_human, failed, deleted."""
    failed: bool = False
    """A disabling call failed: the user is not deleted in this run (a replay finishes it)."""
    revoked: bool = False

    @property
    def active(self) -> bool:
        return self.state is None

    def memo(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "done": sorted(self.done),
            "policies": sorted(self.policies),
            "mfa_devices": sorted(self.devices),
        }


@dataclass
class Teardown:
    """Disable every user named, and delete those whose deletion date has come (see the module)."""

    rt: Runtime
    stepper: Stepper
    grace: timedelta
    actor: str
    reference: str
    _tickets: list[TicketRecord] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return self.rt.store.ledger

    @property
    def journal(self) -> Journal:
        return self.stepper.journal

    @property
    def dry_run(self) -> bool:
        return self.stepper.dry_run

    def run(self, names: list[str], *, stop_after: StopAfter = None) -> dict[str, UserOutcome]:
        """`stop_after`: end after the `keys` phase (nobody can sign in or use a key: a job's first
        wave) or the `rights` phase (disabled: its second); None: to the end."""
        now = self.rt.clock()
        self._tickets = self.ledger.tickets_of_users(names)
        grants = _grants_by_user(self._tickets)
        users = [self._load(name, grants.get(name, []), now) for name in names]
        if not self.dry_run:  # under the users' locks: no rotation makes a key for a user on its way out
            for name in names:
                cancel_rotation(self.rt, name, reason=f"offboarded ({self.reference})", actor=self.actor)

        self._phase("close console access", users, self._console)
        self._phase("disable access keys", users, self._keys)
        if stop_after != "keys":
            self._phase("detach policies and groups", users, self._rights)
        if stop_after is None:
            deleting = [u for u in users if u.active and not u.failed and u.due_at <= now]
            self._phase("delete users", deleting, self._delete)
        self._shared_cleanup(users)
        return {u.name: self._outcome(u, now, stop_after) for u in users}

    # --- phases -----------------------------------------------------------------------------------
    def _phase(self, description: str, users: Sequence[_User], work: Callable[[_User], None]) -> None:
        """`work` for every user still in the pipeline; a user's progress is saved as it finishes.
        Out of API budget: the phase ends, then the event is handed back (progress is kept)."""
        todo = [u for u in users if u.active]
        if not todo:
            return
        progress = self.stepper.progress
        if progress is not None:
            progress.level(description, len(todo))

        def visit(user: _User) -> None:
            try:
                work(user)
            finally:
                if progress is not None:
                    progress.advance()

        outcomes = run_all([(u.name, lambda u=u: visit(u)) for u in todo], self.rt.settings.max_concurrency)  # type: ignore[misc]
        errors = [o.error for o in outcomes if o.error is not None]
        for error in errors:
            if isinstance(error, BudgetExhausted):
                raise error
        if errors:
            raise errors[0]

    def _console(self, u: _User) -> None:
        """Is it ramflow's? Then its login profile goes first: a password is the quickest way in."""
        if CONSOLE in u.done:
            return
        own = self._own()
        tags = own.run("read tags", [Step(u.name, "ListTagResources", "tags", lambda: self._tags(u.name))])
        if not tags[0].ok:
            u.state, u.held.readable = "failed", False
            return
        if tags[0].absent:
            if u.name in confirmed_gone(self.rt, own, [u.name]):
                u.state, u.held.found = "gone", False
            else:  # RAM has it after all, or could not say: recorded, for a replay
                u.state, u.held.readable = "failed", False
            return
        u.held.tags = dict(tags[0].value or {})
        if not u.held.managed and not made_by_ramflow(self.rt, u.name, u.held.tags):
            self.journal.human(u.name, UNMANAGED)
            audit(
                "user.unmanaged",
                actor=self.actor,
                ticket_id=None,
                outcome="needs_human",
                user=u.name,
                hr_event=self.reference,
            )
            u.state = "needs_human"
            return
        if not self.dry_run:
            u.due_at = self.ledger.schedule_deletion(u.name, u.due_at)  # first: a disabled user is never left
            self._save(u)
        ram = self.rt.cloud.ram
        if self.dry_run:  # plans only what it sees; a real run deletes it blind ("does not exist" is done)
            seen = own.run(
                "read",
                [Step(u.name, "GetLoginProfile", "", lambda: ram.get_login_profile(u.name) is not None)],
            )
            u.held.login_profile = bool(seen[0].value) if seen[0].ok and not seen[0].absent else False
            if not u.held.login_profile:
                return
        done = own.run(
            "delete login profile",
            [Step(u.name, "DeleteLoginProfile", "", lambda: ram.delete_login_profile(u.name))],
        )
        self._advance(u, done, CONSOLE)

    def _keys(self, u: _User) -> None:
        if KEYS in u.done:
            return
        ram, own = self.rt.cloud.ram, self._own()
        listed = own.run(
            "list keys", [Step(u.name, "ListAccessKeys", "", lambda: ram.list_access_keys(u.name))]
        )
        if not self._readable(u, listed):
            return
        u.held.keys = list(listed[0].value)
        delete = u.due_at <= self.rt.clock()
        steps: list[Step] = []
        for key in u.held.keys:
            key_id = key.access_key_id
            if delete:
                steps.append(
                    Step(u.name, "DeleteAccessKey", key_id, lambda k=key_id: ram.delete_access_key(u.name, k))  # type: ignore[misc]
                )
            elif key.status == "Active":
                steps.append(
                    Step(
                        u.name,
                        "UpdateAccessKey",
                        f"{key_id} Inactive",
                        lambda k=key_id: ram.update_access_key(u.name, k, "Inactive"),  # type: ignore[misc]
                    )
                )
        done = own.run("disable keys", steps)
        self._advance(u, done, KEYS, *((KEYS_DELETED,) if delete else ()))

    def _rights(self, u: _User) -> None:
        if RIGHTS in u.done:
            return
        ram, rm, own = self.rt.cloud.ram, self.rt.cloud.rm, self._own()
        name, principal = u.name, self.rt.logon_principal(u.name)
        read = own.run(
            "read rights",
            [
                Step(name, "ListPoliciesForUser", "", lambda: ram.list_policies_for_user(name)),
                Step(
                    name,
                    "ListPolicyAttachments",
                    principal,
                    lambda: rm.list_policy_attachments(principal_name=principal, principal_type="IMSUser"),
                ),
                Step(name, "ListGroupsForUser", "", lambda: ram.list_groups_for_user(name)),
            ],
        )
        if not self._readable(u, read):
            return
        u.held.policies = list(read[0].value or [])
        u.held.rg_grants = [a for a in read[1].value or [] if is_resource_group(a.resource_group_id)]
        u.held.groups = list(read[2].value or [])
        if u.held.ramflow_policies() - u.policies:  # RAM forgets them once detached: remembered first
            u.policies |= u.held.ramflow_policies()
            self._save(u)
        steps = [
            Step(
                name,
                "DetachPolicyFromUser",
                f"{p.type}:{p.name}",
                lambda p=p: ram.detach_policy_from_user(name, p.name, p.type),  # type: ignore[misc]
            )
            for p in u.held.policies
        ]
        steps += [
            Step(
                name,
                "DetachPolicy",
                f"{g.policy_type}:{g.policy_name}@{g.resource_group_id}",
                lambda g=g: rm.detach_policy(  # type: ignore[misc]
                    g.resource_group_id, g.policy_name, g.policy_type, principal, "IMSUser"
                ),
            )
            for g in u.held.rg_grants
        ]
        steps += [
            Step(name, "RemoveUserFromGroup", group, lambda g=group: ram.remove_user_from_group(name, g))  # type: ignore[misc]
            for group in u.held.groups
        ]
        done = own.run("detach", steps)
        if all_ok(done) and not self.dry_run:
            self._disabled(u)  # the ledger first: a replay that skips this phase finds it written
        self._advance(u, done, RIGHTS)

    def _delete(self, u: _User) -> None:
        """Cleanup, once nothing lets the user in: the MFA device is unbound, the keys a grace period
        left Inactive are deleted, then the user."""
        ram, own = self.rt.cloud.ram, self._own()
        reads = [Step(u.name, "GetUserMFAInfo", "", lambda: ram.get_user_mfa_info(u.name))]
        if KEYS_DELETED not in u.done:
            reads.append(Step(u.name, "ListAccessKeys", "", lambda: ram.list_access_keys(u.name)))
        read = own.run("read", reads)
        if not self._readable(u, read):
            return
        u.held.mfa_serial = read[0].value
        if u.held.mfa_serial and u.held.mfa_serial not in u.devices:
            u.devices.add(u.held.mfa_serial)
            self._save(u)  # RAM forgets whose it was once unbound
        steps: list[Step] = []
        if u.held.mfa_serial:
            steps.append(
                Step(u.name, "UnbindMFADevice", u.held.mfa_serial, lambda: ram.unbind_mfa_device(u.name))
            )
        if len(read) > 1:
            u.held.keys = list(read[1].value)
            steps += [
                Step(
                    u.name,
                    "DeleteAccessKey",
                    k.access_key_id,
                    lambda k=k.access_key_id: ram.delete_access_key(u.name, k),  # type: ignore[misc]
                )
                for k in u.held.keys
            ]
        cleared = own.run("unbind and delete keys", steps)
        unbound = [d for d in cleared if d.step.action == "UnbindMFADevice"]
        if all_ok(unbound):
            u.done.add(MFA_UNBOUND)
        if not all_ok(cleared):
            self._save(u)
            u.failed = True
            return
        deleted = own.run("delete user", [Step(u.name, "DeleteUser", "", lambda: ram.delete_user(u.name))])
        if deleted[0].ok and not self.dry_run:
            u.state = "deleted"
            self._set_user(u.name, "deleted", None)
            self._revoked(u)
        elif self.dry_run:
            u.state = "planned"
        else:
            u.failed = True

    def _shared_cleanup(self, users: Sequence[_User]) -> None:
        """MFA devices and custom policies outlive their user in RAM: each is deleted once unbound,
        and once nothing else uses it. A user's memo goes when all of its cleanup is done."""
        ram = self.rt.cloud.ram
        cleaning = [
            u for u in users if u.state in ("deleted", "gone") or (self.dry_run and u.state == "planned")
        ]
        steps: list[Step] = []
        for u in cleaning:
            if u.state == "planned" or (
                u.state == "deleted" and MFA_UNBOUND not in u.done and u.held.mfa_serial
            ):
                continue
            for serial in sorted(u.devices):
                steps.append(
                    Step(
                        u.name,
                        "DeleteVirtualMFADevice",
                        serial,
                        lambda s=serial: ram.delete_virtual_mfa_device(s),  # type: ignore[misc]
                        settled_by=("DeleteConflict",),  # bound again meanwhile, to someone: not ours now
                    )
                )
        candidates = sorted({p for u in cleaning for p in u.policies})
        if self.dry_run:
            steps += [
                Step(f"policy {p}", "DeletePolicy", f"{p} (if nothing else uses it)", lambda: None)
                for p in candidates
            ]
        else:
            steps += policy_usage_steps(self.rt, candidates)
        second = self.stepper.run("clean up", steps)
        unused, unknown = unused_policies(second)
        third = self.stepper.run("delete unused policies", delete_policy_steps(self.rt, unused))
        policy_failed = unknown | {d.step.target for d in third if not d.ok}
        if self.dry_run:
            return
        for u in cleaning:
            mine = [d for d in second if d.step.subject == u.name]
            if all_ok(mine) and not (u.policies & policy_failed):
                self.ledger.delete_intent(MEMO + u.name)
                self.ledger.clear_deletion(u.name)
            if u.state == "gone":
                self._set_user(u.name, "deleted", None)
                self._revoked(u)

    # --- helpers ----------------------------------------------------------------------------------
    def _own(self) -> Stepper:
        return Stepper(PHASE_CALLS, self.journal, dry_run=self.dry_run)

    def _tags(self, name: str) -> dict[str, str]:
        return self.rt.cloud.ims.list_user_tags(name)

    def _readable(self, u: _User, read: list[Done]) -> bool:
        """A user deleted meanwhile is gone; a read that failed leaves the user for a replay."""
        if not all_ok(read):
            u.failed = True
            if u.state is None and any(d.step.action.startswith("List") for d in read if not d.ok):
                u.held.readable = False
            return False
        if any(d.absent for d in read):
            u.state, u.held.found = "gone", False
            return False
        return True

    def _advance(self, u: _User, done: list[Done], *phases: str) -> bool:
        """The phase is finished for `u` once every call is: saved at once, so a replay skips it."""
        if not all_ok(done):
            u.failed = True
            return False
        u.done.update(phases)
        self._save(u)
        return True

    def _load(self, name: str, grants: list[GrantRecord], now: datetime) -> _User:
        """The user's memo and progress: progress counts only for the same offboarding."""
        memo = self.ledger.get_intent(MEMO + name)
        kept = memo.result if memo is not None and memo.result else {}
        u = _User(name, Holdings(name), now + self.grace, self.reference)
        u.policies = set(kept.get("policies", [])) | {
            g.policy_name for g in grants if g.created_by_ramflow and g.policy_type == "Custom"
        }
        u.devices = set(kept.get("mfa_devices", []))
        if kept.get("reference") == self.reference:
            u.done = set(kept.get("done", []))
        if u.done:  # it was found ours and scheduled by this same offboarding
            scheduled = self.ledger.scheduled_deletion(name)
            u.due_at = scheduled.due_at if scheduled is not None else u.due_at
            u.held.tags = {"managed-by": "ramflow"}
        return u

    def _save(self, u: _User) -> None:
        if not self.dry_run:
            self.ledger.put_intent(Intent(key=MEMO + u.name, ticket_id=self.reference, result=u.memo()))

    def _disabled(self, u: _User) -> None:
        """Every way in is closed: the ledger says so now, not at the end of the run."""
        self._set_user(u.name, "disabled", u.due_at)
        self._revoked(u)
        if u.due_at > self.rt.clock():
            audit(
                "user.disabled",
                actor=self.actor,
                ticket_id=None,
                outcome="disabled",
                user=u.name,
                hr_event=self.reference,
                delete_after=u.due_at.isoformat(),
                actions=[f"{a['action']} {a['target']}".strip() for a in self.journal.actions_of(u.name)],
            )

    def _revoked(self, u: _User) -> None:
        if u.revoked:
            return  # this run said so already (the ledger write is not repeated)
        self.ledger.mark_users_revoked([t for t in self._tickets if _names_user(t, u.name)], {u.name})
        u.revoked = True

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

    def _outcome(self, u: _User, now: datetime, stop_after: StopAfter = None) -> UserOutcome:
        state: State
        if self.dry_run and u.state in (None, "planned"):
            state = "planned"
        elif u.state is not None:
            state = u.state
        elif u.failed:
            state = "failed"
        elif stop_after == "keys":
            state = "closed"
        elif u.due_at > now or stop_after == "rights":
            state = "disabled"
        else:
            state = "failed"  # due, not failed, yet not deleted: cannot happen, kept honest
        if state in ("deleted", "gone"):
            audit(
                "user.offboarded",
                actor=self.actor,
                ticket_id=None,
                outcome=state,
                user=u.name,
                hr_event=self.reference,
                actions=[f"{a['action']} {a['target']}".strip() for a in self.journal.actions_of(u.name)],
            )
        held = u.held if state not in ("gone",) else None
        return UserOutcome(u.name, state, held, u.due_at if state != "gone" else now)


def _names_user(ticket: TicketRecord, name: str) -> bool:
    return ticket.user_name == name or any(g.user_name == name for g in ticket.grants)


def _grants_by_user(tickets: Sequence[TicketRecord]) -> dict[str, list[GrantRecord]]:
    found: dict[str, list[GrantRecord]] = {}
    for ticket in tickets:
        for grant in ticket.grants:
            found.setdefault(grant.user_name, []).append(grant)
    return found
