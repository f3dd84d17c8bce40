"""`access.revoked`: remove exactly one ticket's grants, at both scopes, and nothing another ticket granted.

In dependency order, each level's calls side by side:

  1  detach the grants (one that another active ticket holds too stays attached: RAM has one
     attachment for both); for a user left without any active grant, read its tags and keys
  2  disable that user's access — delete the login profile, set its keys Inactive (managed users
     only) — and see who still uses the ramflow custom policies the grants named
  3  delete those custom policies nothing uses any more

`reconcile` revokes grants whose duration has ended through the same `revoke_grants`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.audit import audit
from shared.flows.offboard import mark_revoked
from shared.flows.offboard_steps import (
    Journal,
    Step,
    Stepper,
    all_ok,
    by_subject,
    delete_policy_steps,
    detach_step,
    policy_usage_steps,
    retried_until_complete,
    unused_policies,
)
from shared.flows.users import is_managed, user_locks
from shared.models.events import AccessRevoked, CloudEvent
from shared.models.results import Result
from shared.runtime import Runtime
from shared.store.records import GrantRecord, TicketRecord, UserRecord

UNMANAGED = "left without grants but not tagged managed-by=ramflow: access not disabled"


@dataclass
class Revocation:
    """What `revoke_grants` achieved: grants now revoked and users whose access was disabled."""

    revoked: set[str] = field(default_factory=set)
    disabled: list[str] = field(default_factory=list)


def revoke_event(data: AccessRevoked, event: CloudEvent, rt: Runtime) -> Result:
    """The `access.revoked` event flow."""
    ledger = rt.store.ledger
    ticket = ledger.get_ticket(data.ticket_id)
    if ticket is None:
        return Result.rejected(
            [{"field": "data.ticket_id", "reason": "no such ticket in the ledger"}], ticket_id=data.ticket_id
        )
    stepper = Stepper(rt.settings.max_concurrency)
    with user_locks(rt, [ticket.user_name]) as (_, busy):
        if busy:
            stepper.journal.error(
                ticket.user_name, "lock", "another ramflow flow is changing this user; retry"
            )
        else:
            revoke_grants(rt, ticket.grants, stepper)
    journal = stepper.journal
    if not journal.errors:
        ledger.update_ticket(data.ticket_id, lambda t: setattr(t, "status", "revoked"))
    audit(
        "ticket.revoked",
        actor=event.source,
        ticket_id=data.ticket_id,
        outcome="partial" if journal.errors else "revoked",
        user=ticket.user_name,
        reason=data.reason,
        actions=[f"{a['action']} {a['target']}".strip() for a in journal.actions],
        errors=journal.errors,
    )
    return journal.result(ticket_id=data.ticket_id, user_name=ticket.user_name)


revoke = retried_until_complete(revoke_event)
"""What the handler runs: a `partial` outcome is raised, so the event is delivered again."""


def revoke_grants(
    rt: Runtime,
    grants: Sequence[GrantRecord],
    stepper: Stepper,
    *,
    tickets: Sequence[TicketRecord] | None = None,
) -> Revocation:
    """Detach these grants, disable users left without any, delete custom policies left unused,
    and record it in the ledger (not in a dry run)."""
    ledger, ram = rt.store.ledger, rt.cloud.ram
    journal: Journal = stepper.journal
    tickets = list(tickets) if tickets is not None else ledger.all_tickets()
    ids = {g.grant_id for g in grants}
    others = [g for t in tickets for g in t.grants if g.status == "active" and g.grant_id not in ids]
    still_held = {_attachment(g) for g in others}
    detach = [g for g in grants if g.status != "revoked" and _attachment(g) not in still_held]
    users = sorted({g.user_name for g in grants})
    bare = [u for u in users if not any(g.user_name == u for g in others)]

    # Level 1: detach; read what a user left without grants still has
    level = [detach_step(rt, g) for g in detach]
    for user in bare:
        level += [
            Step(user, "ListTagResources", "tags", lambda u=user: rt.cloud.ims.list_user_tags(u)),
            Step(user, "ListAccessKeys", "", lambda u=user: ram.list_access_keys(u)),
        ]
    first = stepper.run("detach grants", level)
    detached = dict(zip((g.grant_id for g in detach), first[: len(detach)], strict=True))
    revoked = {g.grant_id for g in grants if g.grant_id not in detached or detached[g.grant_id].ok}

    # Level 2: disable users left without grants; who still uses the custom policies
    reads = by_subject(first[len(detach) :])
    level = []
    disabling: list[str] = []
    for user in bare:
        found = reads.get(user, [])
        if not all_ok(found) or any(d.absent and d.step.action == "ListTagResources" for d in found):
            continue  # unreadable (recorded) or the user is gone already
        tags = next(d.value for d in found if d.step.action == "ListTagResources")
        if not is_managed(tags):
            journal.human(user, UNMANAGED)
            continue
        keys = next((d.value for d in found if d.step.action == "ListAccessKeys" and not d.absent), [])
        level.append(Step(user, "DeleteLoginProfile", "", lambda u=user: ram.delete_login_profile(u)))
        for key in keys:
            if key.status == "Active":
                level.append(
                    Step(
                        user,
                        "UpdateAccessKey",
                        f"{key.access_key_id} Inactive",
                        lambda u=user, k=key.access_key_id: ram.update_access_key(u, k, "Inactive"),
                    )
                )
        disabling.append(user)
    custom = sorted(
        {
            g.policy_name
            for g in grants
            if g.created_by_ramflow and g.policy_type == "Custom" and g.grant_id in revoked
        }
    )
    if stepper.dry_run:
        level += [
            Step(f"policy {p}", "DeletePolicy", f"{p} (if nothing else uses it)", lambda: None)
            for p in custom
        ]
    else:
        level += policy_usage_steps(rt, custom)
    second = stepper.run("disable access", level)

    # Level 3: delete custom policies nothing uses
    unused, _ = unused_policies(second)
    stepper.run("delete unused policies", delete_policy_steps(rt, unused))

    by_user = by_subject(second)
    disabled = [u for u in disabling if all_ok(by_user.get(u, []))]
    if not stepper.dry_run:
        mark_revoked(ledger, tickets, revoked)
        for user in disabled:
            if ledger.get_user(user) is not None:
                ledger.update_user(user, _disable)
    return Revocation(revoked=revoked, disabled=disabled)


def _disable(record: UserRecord) -> None:
    if record.status == "active":
        record.status = "disabled"


def _attachment(grant: GrantRecord) -> tuple[str, str, str, str | None]:
    """RAM holds one attachment per user, policy and scope, however many tickets granted it."""
    return (grant.user_name, grant.policy_type, grant.policy_name, grant.resource_group_id)
