"""`access.revoked`: remove exactly one ticket's grants, at both scopes, and nothing another ticket granted.

Only grants RAM may hold are taken away: `active` ones, and the `planned` ones of an approved
ticket whose provisioning has not finished (some may be attached). A grant never approved is only
marked revoked in the ledger. Users not tagged `managed-by=ramflow` are never changed: reported.

In dependency order, each level's calls side by side:

  1  read the tags of every user concerned (and the keys of a user left without any active grant)
  2  for managed users: detach the grants (one that another active ticket holds too stays attached:
     RAM has one attachment for both); disable a user left without grants — delete the login
     profile, set its keys Inactive
  3  see who still uses the ramflow custom policies the detached grants named
  4  delete those custom policies nothing uses any more

`reconcile` revokes grants whose duration has ended through the same `revoke_grants`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from shared.audit import audit
from shared.cloud.ram import AccessKeyInfo
from shared.flows.keys import cancel_rotation
from shared.flows.provision import access_key_intent
from shared.flows.saga import (
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
from shared.flows.users import confirmed_gone, is_managed, made_by_ramflow, user_locks
from shared.models.events import AccessRevoked, CloudEvent
from shared.models.results import Result
from shared.runtime import Runtime
from shared.store.ledger import Ledger
from shared.store.records import AccessKeyRecord, EarlyRevocation, GrantRecord, TicketRecord, UserRecord

UNMANAGED = "not tagged managed-by=ramflow: ramflow changes nothing of it, its grants stay"


@dataclass
class Revocation:
    """What `revoke_grants` achieved: grants now revoked, users whose access was disabled, and
    users left as they were because they are not managed by ramflow."""

    revoked: set[str] = field(default_factory=set)
    disabled: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)


def revoke_event(data: AccessRevoked, event: CloudEvent, rt: Runtime) -> Result:
    """The `access.revoked` event flow."""
    ledger = rt.store.ledger
    ticket = ledger.get_ticket(data.ticket_id)
    if ticket is None:
        kept = _keep_early_revocation(rt, data, event)
        # The request records its ticket, then looks for a kept revocation; this revocation was kept,
        # then looks for the ticket: whichever came second sees the other. A request recorded
        # between the read above and the keeping did not see it, so it is revoked here.
        ticket = ledger.get_ticket(data.ticket_id)
        if ticket is None:
            return kept
    stepper = Stepper(rt.settings.max_concurrency)
    revocation = Revocation()
    with user_locks(rt, [ticket.user_name]) as (_, busy):
        if busy:
            stepper.journal.error(
                ticket.user_name, "lock", "another ramflow flow is changing this user; retry"
            )
        else:
            # Decide on the ticket as it is now: an approval that finished since the read above made
            # its grants active, and they are what must go.
            ticket = ledger.get_ticket(data.ticket_id) or ticket
            revocation = revoke_grants(rt, ticket.grants, stepper)
            if not stepper.journal.errors and not revocation.unmanaged:
                ledger.update_ticket(data.ticket_id, lambda t: setattr(t, "status", "revoked"))
    journal = stepper.journal
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


def _keep_early_revocation(rt: Runtime, data: AccessRevoked, event: CloudEvent) -> Result:
    """Deliveries are not ordered: a revocation whose request has not arrived (it was parked and
    will be replayed) is kept, never dropped, so that request records its ticket revoked."""
    rt.store.ledger.keep_early_revocation(
        EarlyRevocation(
            ticket_id=data.ticket_id,
            revocation=data.model_dump(mode="json"),
            received_at=rt.clock(),
            source=event.source,
        )
    )
    audit(
        "ticket.revocation_kept",
        actor=event.source,
        ticket_id=data.ticket_id,
        outcome="pending_request",
        reason=data.reason,
    )
    return Result(
        status="pending_request",
        ticket_id=data.ticket_id,
        actions=["kept the revocation: the ticket's request, when it comes, is refused"],
    )


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
    and record it in the ledger (not in a dry run). Users not managed by ramflow are not changed."""
    ledger, ram = rt.store.ledger, rt.cloud.ram
    journal: Journal = stepper.journal
    tickets = list(tickets) if tickets is not None else tickets_concerned(ledger, grants)
    status_of = {t.ticket_id: t.status for t in tickets}
    ids = {g.grant_id for g in grants}
    others = [g for t in tickets for g in t.grants if g.status == "active" and g.grant_id not in ids]
    still_held = {_attachment(g) for g in others}
    in_ram = [g for g in grants if _may_be_attached(g, status_of)]
    attachable = {g.grant_id for g in in_ram}
    never_granted = {g.grant_id for g in grants if g.status == "planned" and g.grant_id not in attachable}
    # a user whose grants an earlier, partial run already revoked may still have its way in
    left_enabled = {
        g.user_name
        for g in grants
        if g.status == "revoked" and (r := ledger.get_user(g.user_name)) is not None and r.status == "active"
    }
    users = sorted({g.user_name for g in in_ram} | left_enabled)
    bare = {u for u in users if not any(g.user_name == u for g in others)}

    # Level 1: whose users are these (only ramflow's are changed); what a user left without grants has
    level: list[Step] = []
    for user in users:
        level.append(Step(user, "ListTagResources", "tags", partial(rt.cloud.ims.list_user_tags, user)))
        if user in bare:
            level.append(Step(user, "ListAccessKeys", "", partial(ram.list_access_keys, user)))
    reads = by_subject(stepper.run("read the users", level))
    # IMS "no such user" is believed only once RAM's GetUser agrees
    absent_tags = [
        user
        for user in users
        if all_ok(reads.get(user, []))
        and any(d.step.action == "ListTagResources" and d.absent for d in reads.get(user, []))
    ]
    gone = confirmed_gone(rt, stepper, absent_tags)
    ours: list[str] = []
    unmanaged: list[str] = []
    for user in users:
        found = reads.get(user, [])
        if not all_ok(found) or user in gone:
            continue  # unreadable (recorded): its grants stay for a replay; gone: nothing to take away
        tags = next(d for d in found if d.step.action == "ListTagResources")
        if tags.absent:
            continue  # RAM has the user, IMS does not know its name: recorded, left for a replay
        elif not is_managed(tags.value) and not made_by_ramflow(rt, user, tags.value or {}):
            journal.human(user, UNMANAGED)
            unmanaged.append(user)
        else:
            ours.append(user)

    # Level 2: detach; disable managed users left without grants
    detach = [g for g in in_ram if g.user_name in ours and _attachment(g) not in still_held]
    level = [detach_step(rt, g) for g in detach]
    disabling = [u for u in ours if u in bare]
    unrecorded: dict[str, set[str]] = {}
    for user in disabling:
        keys: list[AccessKeyInfo] = next(
            (d.value for d in reads[user] if d.step.action == "ListAccessKeys" and not d.absent), []
        )
        level.append(Step(user, "DeleteLoginProfile", "", partial(ram.delete_login_profile, user)))
        unrecorded[user] = _unrecorded_keys(rt, user, keys)
        for key in keys:
            if key.access_key_id in unrecorded[user]:
                level.append(
                    Step(
                        user,
                        "DeleteAccessKey",
                        key.access_key_id,
                        partial(ram.delete_access_key, user, key.access_key_id),
                    )
                )
            elif key.status == "Active":
                level.append(
                    Step(
                        user,
                        "UpdateAccessKey",
                        f"{key.access_key_id} Inactive",
                        partial(ram.update_access_key, user, key.access_key_id, "Inactive"),
                    )
                )
    second = stepper.run("detach grants, disable access", level)
    detached = dict(zip((g.grant_id for g in detach), second[: len(detach)], strict=True))
    revoked = never_granted | {
        g.grant_id
        for g in in_ram
        if g.user_name in gone
        or (g.user_name in ours and (g.grant_id not in detached or detached[g.grant_id].ok))
    }

    # Level 3: who still uses the custom policies (a replay checks those an earlier run detached)
    custom = sorted(
        {
            g.policy_name
            for g in grants
            if g.created_by_ramflow
            and g.policy_type == "Custom"
            and g.grant_id not in never_granted
            and (g.grant_id in revoked or g.status == "revoked")
        }
    )
    if stepper.dry_run:
        level = [
            Step(f"policy {p}", "DeletePolicy", f"{p} (if nothing else uses it)", lambda: None)
            for p in custom
        ]
    else:
        level = policy_usage_steps(rt, custom)
    third = stepper.run("see who uses the custom policies", level)

    # Level 4: delete custom policies nothing uses
    unused, _ = unused_policies(third)
    stepper.run("delete unused policies", delete_policy_steps(rt, unused))

    by_user = by_subject(second[len(detach) :])
    disabled = [u for u in disabling if all_ok(by_user.get(u, []))]
    if not stepper.dry_run:
        ledger.mark_revoked(tickets, revoked)
        for user in disabled:
            if ledger.get_user(user) is not None:
                ledger.update_user(user, _disable)
            if unrecorded.get(user):  # its keys were deleted: the approval's intent has nothing left to do
                ledger.delete_intent(access_key_intent(user))
            # under the user's lock: a rotation must not make a key for a user left without access
            cancel_rotation(rt, user, reason="access revoked: no grant left", actor="ramflow")
        for user in sorted(gone & set(bare)):
            # the rotation first: a replay after a crash in between finds the record deleted
            cancel_rotation(rt, user, reason="access revoked: the user does not exist", actor="ramflow")
            if (record := ledger.get_user(user)) is not None and record.status != "deleted":
                ledger.update_user(user, _absent)
    return Revocation(revoked=revoked, disabled=disabled, unmanaged=unmanaged)


def _unrecorded_keys(rt: Runtime, user: str, keys: Sequence[AccessKeyInfo]) -> set[str]:
    """Keys an approval created but never recorded (its CreateAccessKey's reply was lost, and the
    revoked ticket's approval will not run again to delete them): under the user's lock, an intent
    left `started` is a stopped attempt's, and a key it does not know has a secret nobody holds."""
    intent = rt.store.ledger.get_intent(access_key_intent(user))
    if intent is None or intent.state != "started":
        return set()
    record = rt.store.ledger.get_user(user)
    recorded = (
        record.credential.access_key_id if record and isinstance(record.credential, AccessKeyRecord) else None
    )
    return {
        k.access_key_id
        for k in keys
        if k.access_key_id not in intent.known_key_ids and k.access_key_id != recorded
    }


def tickets_concerned(ledger: Ledger, grants: Sequence[GrantRecord]) -> list[TicketRecord]:
    """The tickets of the grants' users (whatever else those users hold decides what stays), and
    the grants' own tickets, by id."""
    found: dict[str, TicketRecord] = {}
    for user in sorted({g.user_name for g in grants}):
        found.update((t.ticket_id, t) for t in ledger.tickets_of_user(user))
    for ticket_id in sorted({g.ticket_id for g in grants} - set(found)):
        if (ticket := ledger.get_ticket(ticket_id)) is not None:
            found[ticket_id] = ticket
    return [found[ticket_id] for ticket_id in sorted(found)]


def _may_be_attached(grant: GrantRecord, ticket_status: Mapping[str, str]) -> bool:
    """Active grants, and the planned ones of an approved ticket whose provisioning stopped part way;
    a ticket never approved attached nothing."""
    if grant.status == "active":
        return True
    return grant.status == "planned" and ticket_status.get(grant.ticket_id) == "approved"


def _absent(record: UserRecord) -> None:
    """RAM has no such user: its CreateUser never took effect (the approval recorded it first and
    will not run again once the ticket is revoked), or someone deleted it by hand."""
    record.status, record.credential, record.delete_after = "deleted", None, None


def _disable(record: UserRecord) -> None:
    if record.status == "active":
        record.status = "disabled"


def _attachment(grant: GrantRecord) -> tuple[str, str, str, str | None]:
    """RAM holds one attachment per user, policy and scope, however many tickets granted it."""
    return (grant.user_name, grant.policy_type, grant.policy_name, grant.resource_group_id)
