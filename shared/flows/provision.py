"""Provisioning: `user.requested` records and plans a ticket; `access.approved` carries it out.

`approve` is a saga of idempotent steps — user, tags, grants, access — so a replay after a
failure at any point finishes the job. The two calls the cloud cannot repeat safely are handled
apart: CreateAccessKey is bracketed by an intent in the ledger, so on replay a key created but
never recorded is deleted (its secret is lost) before a new one is made; a login profile whose
password was never recorded simply gets a fresh password, sealed and recorded with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from pydantic import SecretStr

from shared.audit import audit
from shared.cloud.ram import NewAccessKey
from shared.concurrency import failures, run_all
from shared.errors import (
    CloudError,
    EntityAlreadyExists,
    EntityNotFound,
    GuardDenied,
    NeedsHuman,
    PolicyContentMismatch,
    UserBusy,
)
from shared.flows.references import check_references
from shared.flows.users import MANAGED_BY, is_managed, owner_lock, user_locks
from shared.models.events import AccessApproved, CloudEvent, UserRequested
from shared.models.results import AccessKeyReply, FieldError, LoginProfileReply, Result
from shared.passwords import generate_password
from shared.policy.guard import Plan, PlannedGrant, check_access_mode, check_approval, plan_request
from shared.runtime import Runtime
from shared.scope import check_managed_name
from shared.sealing import seal
from shared.store.records import (
    AccessKeyRecord,
    EarlyApproval,
    GrantRecord,
    Intent,
    LoginProfileRecord,
    TicketRecord,
    UserRecord,
)

AUTO_APPROVER = "catalog:auto-approve"


# --- user.requested --------------------------------------------------------------------------------
def request(data: UserRequested, event: CloudEvent, rt: Runtime) -> Result:
    """Validate, record the ticket, return the plan; go on at once when the catalog auto-approves."""
    try:
        plan = plan_request(data, rt.catalog, now=rt.clock())
        check_managed_name(data.user.logon_name, rt.settings.managed_user_prefix)
        existing_user = rt.store.ledger.get_user(data.user.logon_name)
        check_access_mode(existing_user.access_mode if existing_user else None, data.access_mode)
        _check_owner(existing_user, data)
    except GuardDenied as exc:
        audit(
            "ticket.rejected",
            actor=data.requester,
            ticket_id=data.ticket_id,
            outcome="rejected",
            errors=exc.errors,
        )
        return Result.rejected(exc, ticket_id=data.ticket_id, user_name=data.user.logon_name)

    try:
        check_references(rt, plan)
    except PolicyContentMismatch as exc:
        return _squatted(data, exc)
    except GuardDenied as exc:
        audit(
            "ticket.rejected",
            actor=data.requester,
            ticket_id=data.ticket_id,
            outcome="rejected",
            errors=exc.errors,
        )
        return Result.rejected(exc, ticket_id=data.ticket_id, user_name=data.user.logon_name)
    with owner_lock(rt, data.user.owner):
        return _request_locked(rt, data, event, plan)


def _request_locked(rt: Runtime, data: UserRequested, event: CloudEvent, plan: Plan) -> Result:
    """Under the owner's lock: a leaver's request is refused, an approval kept early is applied."""
    leaver = _leaver_refusal(rt, data.user.owner, data.ticket_id, data.user.logon_name, data.requester)
    if leaver is not None:
        return leaver
    recorded = data.model_dump(mode="json")
    ticket = rt.store.ledger.get_ticket(data.ticket_id)
    if ticket is not None and ticket.request != recorded:
        return Result.rejected(
            [
                {
                    "field": "data.ticket_id",
                    "reason": "this ticket was already requested with different content",
                }
            ],
            ticket_id=data.ticket_id,
            user_name=data.user.logon_name,
        )
    if ticket is None:
        ticket = rt.store.ledger.save_ticket(
            TicketRecord(
                ticket_id=data.ticket_id,
                requester=data.requester,
                user_name=data.user.logon_name,
                owner=data.user.owner,
                access_mode=data.access_mode,
                request=recorded,
                grants=[_grant_record(data.ticket_id, data.user.logon_name, g) for g in plan.grants],
            )
        )
        audit(
            "ticket.requested",
            actor=data.requester,
            ticket_id=data.ticket_id,
            outcome="recorded",
            user=data.user.logon_name,
            access_mode=data.access_mode,
            auto_approved=plan.auto_approved,
            grants=[g.policy_name for g in plan.grants],
        )
    ticket = _revoked_before_request(rt, ticket)
    if ticket.status in {"revoked", "rejected"}:
        return Result.rejected(
            [{"field": "data.ticket_id", "reason": f"the ticket is {ticket.status}"}],
            ticket_id=data.ticket_id,
            user_name=data.user.logon_name,
        )
    if plan.auto_approved and ticket.status in {"pending_approval", "approved"}:  # "approved": a replay
        return _carry_out(rt, data, plan, approvers=[AUTO_APPROVER], break_glass=False)
    early = rt.store.ledger.get_early_approval(data.ticket_id)
    if early is not None and ticket.status in {"pending_approval", "approved"}:
        audit(
            "ticket.early_approval_applied",
            actor=early.source or "unknown",
            ticket_id=data.ticket_id,
            outcome="applying",
        )
        result = _approve_locked(rt, AccessApproved.model_validate(early.approval))
        if result.status != "rejected" or rt.store.ledger.get_ticket(data.ticket_id) is not None:
            rt.store.ledger.drop_early_approval(data.ticket_id)
        return result
    if ticket.status == "completed":
        return _completed_reply(rt, ticket, data, ["ticket already completed"])
    return Result(
        status="pending_approval",
        ticket_id=data.ticket_id,
        user_name=data.user.logon_name,
        plan=plan.model_dump(mode="json"),
        actions=["recorded ticket"],
    )


# --- access.approved -------------------------------------------------------------------------------
def approve(data: AccessApproved, event: CloudEvent, rt: Runtime) -> Result:
    """Carry out a ticket; every decision is taken again under the owner's and the user's locks."""
    ledger = rt.store.ledger
    ticket = ledger.get_ticket(data.ticket_id)
    kept = None
    if ticket is None:
        kept = _keep_early_approval(rt, data, event)
        # The request records its ticket, then looks for a kept approval; this approval was kept,
        # then looks for the ticket: whichever came second sees the other. A request recorded
        # between the read above and the keeping did not see it, so it is applied here.
        ticket = ledger.get_ticket(data.ticket_id)
        if ticket is None:
            return kept
    with owner_lock(rt, ticket.owner):
        result = _approve_locked(rt, data)
    if kept is not None:
        ledger.drop_early_approval(data.ticket_id)  # applied (or refused) here: never applied again
    return result


def _keep_early_approval(rt: Runtime, data: AccessApproved, event: CloudEvent) -> Result:
    """Deliveries are not ordered: an approval whose request has not arrived is kept (never
    dropped) and applied, with every check, when the request comes."""
    rt.store.ledger.keep_early_approval(
        EarlyApproval(
            ticket_id=data.ticket_id,
            approval=data.model_dump(mode="json"),
            received_at=rt.clock(),
            source=event.source,
        )
    )
    audit(
        "ticket.approval_kept",
        actor=",".join(data.approvers),
        ticket_id=data.ticket_id,
        outcome="pending_request",
    )
    return Result(
        status="pending_request",
        ticket_id=data.ticket_id,
        actions=["kept the approval until the ticket's request arrives"],
    )


def _approve_locked(rt: Runtime, data: AccessApproved) -> Result:
    """Under the owner's lock, on the ticket as read under it."""
    ticket = rt.store.ledger.get_ticket(data.ticket_id)
    if ticket is None:
        return Result.rejected(
            [{"field": "data.ticket_id", "reason": "no such ticket was requested"}], ticket_id=data.ticket_id
        )
    request_data = UserRequested.model_validate(ticket.request)
    ticket = _revoked_before_request(rt, ticket)
    if ticket.status == "completed":
        return _completed_reply(rt, ticket, request_data, ["ticket already completed"])
    if ticket.status in {"revoked", "rejected"}:
        return Result.rejected(
            [{"field": "data.ticket_id", "reason": f"the ticket is {ticket.status}"}],
            ticket_id=data.ticket_id,
            user_name=ticket.user_name,
        )
    leaver = _leaver_refusal(rt, ticket.owner, ticket.ticket_id, ticket.user_name, ",".join(data.approvers))
    if leaver is not None:
        return leaver
    try:
        plan = plan_request(request_data, rt.catalog, now=rt.clock())
        check_approval(plan, request_data, data)
        check_references(rt, plan)
    except PolicyContentMismatch as exc:
        return _squatted(request_data, exc)
    except GuardDenied as exc:
        audit(
            "ticket.approval_refused",
            actor=",".join(data.approvers),
            ticket_id=data.ticket_id,
            outcome="rejected",
            errors=exc.errors,
        )
        return Result.rejected(exc, ticket_id=data.ticket_id, user_name=ticket.user_name)
    return _carry_out(rt, request_data, plan, approvers=list(data.approvers), break_glass=data.break_glass)


def _leaver_refusal(rt: Runtime, owner: str, ticket_id: str, user_name: str, actor: str) -> Result | None:
    """A leaver gets nothing: the refusal (audited, and the ticket closed) or None."""
    leaver = rt.store.ledger.get_leaver(owner)
    if leaver is None:
        return None
    reason = (
        f"the owner left on {leaver.left_at.date().isoformat()} (HR event {leaver.hr_event_id}); "
        "a ramflow.user.rehired event must come first"
    )
    if rt.store.ledger.get_ticket(ticket_id) is not None:
        close_ticket(rt, ticket_id, reason)
    audit("ticket.refused_leaver", actor=actor, ticket_id=ticket_id, outcome="rejected", reason=reason)
    return Result.rejected(
        [{"field": "data.user.owner", "reason": reason}], ticket_id=ticket_id, user_name=user_name
    )


def _revoked_before_request(rt: Runtime, ticket: TicketRecord) -> TicketRecord:
    """Under the owner's lock: a revocation kept before the ticket was requested closes it, so no
    approval (early, late or the catalog's) carries it out. A request that stopped between recording
    its ticket and this check is covered by the approval making it too."""
    if ticket.status != "pending_approval" or rt.store.ledger.get_early_revocation(ticket.ticket_id) is None:
        return ticket
    close_ticket(rt, ticket.ticket_id, "revoked before its request arrived")
    return rt.store.ledger.get_ticket(ticket.ticket_id) or ticket


def close_ticket(rt: Runtime, ticket_id: str, reason: str) -> bool:
    """A ticket that never reached RAM (pending, or approved with nothing attached yet) becomes
    `revoked` with its grants: no later approval can carry it out. True if it changed."""
    changed = False

    def close(t: TicketRecord) -> None:
        nonlocal changed
        if t.status == "pending_approval":
            t.status, changed = "revoked", True
            for grant in t.grants:
                grant.status = "revoked"

    rt.store.ledger.update_ticket(ticket_id, close)
    if changed:
        audit("ticket.closed", actor="ramflow", ticket_id=ticket_id, outcome="revoked", reason=reason)
    return changed


# --- the saga --------------------------------------------------------------------------------------
@dataclass
class _Provisioning:
    rt: Runtime
    request: UserRequested
    plan: Plan
    actions: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.request.user.logon_name

    @property
    def ticket_id(self) -> str:
        return self.request.ticket_id

    def inspect_user(self) -> tuple[UserRecord | None, bool]:
        """Read-only: may ramflow act on this user? Returns (ledger record to build on, exists in RAM).

        Runs under the user's lock and before the ticket is marked approved, so a refusal leaves
        the ticket as it was and a concurrent ticket for the same name cannot slip in between."""
        ledger = self.rt.store.ledger
        record = ledger.get_user(self.name)
        in_ram = self.rt.cloud.ram.get_user(self.name) is not None
        if ledger.scheduled_deletion(self.name) is not None:
            reason = "this user is being offboarded; a new ticket can follow once the deletion has finished"
            raise GuardDenied([{"field": "data.user.logon_name", "reason": reason}])
        if record is not None and record.status == "deleted":
            record = None  # a former user of this name: what exists in RAM now is someone else's
        if record is None:
            if in_ram:
                tags = self.rt.cloud.ims.list_user_tags(self.name)
                if not is_managed(tags):
                    raise NeedsHuman(self.name)
                if tags.get("owner", "").casefold() != self.request.user.owner.casefold():
                    raise GuardDenied(
                        [{"field": "data.user.owner", "reason": "the RAM user is managed for another owner"}]
                    )
        else:
            _check_owner(record, self.request)
            check_access_mode(record.access_mode, self.request.access_mode)
        return record, in_ram

    def ensure_user(self, record: UserRecord | None, in_ram: bool) -> UserRecord:
        """The ledger learns of the user before CreateUser, so a replay knows the user is ours."""
        ledger = self.rt.store.ledger
        if record is None:
            record = ledger.save_user(
                UserRecord(
                    user_name=self.name,
                    owner=self.request.user.owner,
                    access_mode=self.request.access_mode,
                    tickets=[self.ticket_id],
                )
            )
        elif self.ticket_id not in record.tickets:
            record = ledger.update_user(self.name, lambda u: u.tickets.append(self.ticket_id))
        if not in_ram:
            user = self.request.user
            with contextlib.suppress(EntityAlreadyExists):  # an earlier attempt's reply was lost
                self.rt.cloud.ram.create_user(
                    self.name,
                    display_name=user.display_name,
                    email=user.email,
                    comments=f"managed by ramflow; ticket {record.tickets[0]}",
                )
                self.actions.append(f"created RAM user {self.name}")
        tags = {
            **self.request.user.tags,
            MANAGED_BY[0]: MANAGED_BY[1],
            "owner": record.owner.casefold(),
            "ticket": record.tickets[0],
        }
        self.rt.cloud.ims.tag_user(self.name, tags)
        self.actions.append(f"tagged {self.name}: " + ", ".join(sorted(tags)))
        return record

    def attach_grants(self) -> None:
        """Grants are independent of one another: attach them concurrently, then report."""
        outcomes = run_all(
            [(g.policy_name, partial(self._attach, g)) for g in self.plan.grants],
            self.rt.settings.max_concurrency,
        )
        self.actions.extend(o.value for o in outcomes if o.ok and o.value)
        failed = failures(outcomes)
        if failed:
            raise failed[0].error  # type: ignore[misc]

    def _attach(self, grant: PlannedGrant) -> str:
        ram = self.rt.cloud.ram
        if grant.policy_type == "Custom" and grant.document is not None:
            existing = ram.get_policy(grant.policy_name)
            if existing is None:
                with contextlib.suppress(
                    EntityAlreadyExists
                ):  # a concurrent ticket rendered the same content
                    ram.create_policy(
                        grant.policy_name,
                        grant.document,
                        description=f"ramflow template {grant.template}; content-named, shared",
                    )
            elif existing.document != grant.document:  # the name promises this content: never trust squatters
                raise PolicyContentMismatch(grant.policy_name)
        try:
            if grant.resource_group:
                self.rt.cloud.rm.attach_policy(
                    grant.resource_group,
                    grant.policy_name,
                    grant.policy_type,
                    self.rt.logon_principal(self.name),
                )
                return f"attached {grant.policy_name} on {grant.resource_group}"
            ram.attach_policy_to_user(self.name, grant.policy_name, grant.policy_type)
            return f"attached {grant.policy_name} to {self.name}"
        except EntityAlreadyExists:
            return ""
        except CloudError as exc:
            if "AlreadyExist" in exc.code:  # ResourceManager spells its duplicate differently
                return ""
            raise

    def enable_access(self, record: UserRecord) -> UserRecord:
        """One credential per user, delivered in the reply of the ticket that made it."""
        if record.status == "disabled":  # every earlier grant was revoked: this ticket brings access back
            record = self._reactivate(record)
        if record.credential is not None:
            self.rt.store.ledger.delete_intent(access_key_intent(self.name))
            return record
        if self.request.access_mode == "programmatic":
            return self._enable_access_key(record)
        return self._enable_console(record)

    def _reactivate(self, record: UserRecord) -> UserRecord:
        """Revocation set keys Inactive and deleted the login profile; the recorded key comes back,
        a console user gets a fresh password (delivered to this ticket's requester)."""
        ram = self.rt.cloud.ram
        credential = record.credential
        if isinstance(credential, AccessKeyRecord) and credential.access_key_id in {
            k.access_key_id for k in ram.list_access_keys(self.name)
        }:
            ram.update_access_key(self.name, credential.access_key_id, "Active")
            self.actions.append(f"reactivated AccessKey {credential.access_key_id}")
        else:
            credential = None

        def active(user: UserRecord) -> None:
            user.status, user.credential = "active", credential

        return self.rt.store.ledger.update_user(self.name, active)

    def _enable_access_key(self, record: UserRecord) -> UserRecord:
        ledger, ram = self.rt.store.ledger, self.rt.cloud.ram
        intent_key = access_key_intent(self.name)
        keys = [k.access_key_id for k in ram.list_access_keys(self.name)]
        intent = ledger.get_intent(intent_key)
        if intent is not None and intent.state == "started":
            for orphan in (k for k in keys if k not in intent.known_key_ids):
                # its secret was never recorded: nobody can use it ("no such key": a retry after a lost reply)
                with contextlib.suppress(EntityNotFound):
                    ram.delete_access_key(self.name, orphan)
                self.actions.append(f"deleted unrecorded AccessKey {orphan}")
            keys = [k for k in keys if k in intent.known_key_ids]
        ledger.put_intent(Intent(key=intent_key, ticket_id=self.ticket_id, known_key_ids=keys))
        key: NewAccessKey = ram.create_access_key(self.name)
        sealed = seal(self.request.delivery_public_key, key.secret.get_secret_value())
        credential = AccessKeyRecord(
            access_key_id=key.access_key_id,
            sealed_secret=sealed,
            ticket_id=self.ticket_id,
            delivery_public_key=self.request.delivery_public_key,
            recipient=self.request.requester,
        )
        record = ledger.update_user(self.name, lambda u: setattr(u, "credential", credential))
        ledger.delete_intent(intent_key)
        self.actions.append(f"created AccessKey {key.access_key_id} (secret sealed to the requester)")
        return record

    def _enable_console(self, record: UserRecord) -> UserRecord:
        """A password is only ever set together with recording its sealed copy; a login profile
        left by a failed attempt holds a password nobody has, so it is replaced."""
        ram = self.rt.cloud.ram
        password = generate_password(ram.get_password_policy())
        sealed = seal(self.request.delivery_public_key, password.get_secret_value())
        if ram.get_login_profile(self.name) is None:
            try:
                ram.create_login_profile(
                    self.name, password, password_reset_required=True, mfa_bind_required=True
                )
            except EntityAlreadyExists:
                self._reset_login_profile(password)
        else:
            self._reset_login_profile(password)
        credential = LoginProfileRecord(sealed_password=sealed, ticket_id=self.ticket_id)
        record = self.rt.store.ledger.update_user(self.name, lambda u: setattr(u, "credential", credential))
        self.actions.append(
            f"created console login for {self.rt.logon_principal(self.name)} "
            "(password sealed; reset and MFA required at first login)"
        )
        return record

    def _reset_login_profile(self, password: SecretStr) -> None:
        self.rt.cloud.ram.update_login_profile(
            self.name, password=password, password_reset_required=True, mfa_bind_required=True
        )


def access_key_intent(user_name: str) -> str:
    """The ledger key of the intent written before CreateAccessKey (reconcile reads it too)."""
    return f"access_key/{user_name}"


def _carry_out(
    rt: Runtime, data: UserRequested, plan: Plan, *, approvers: list[str], break_glass: bool
) -> Result:
    """Under the user's lock: another ticket, revocation or offboarding of this user waits its turn."""
    with user_locks(rt, [data.user.logon_name]) as (held, _):
        if not held:
            raise UserBusy(data.user.logon_name)
        return _provision(rt, data, plan, approvers=approvers, break_glass=break_glass)


def _provision(
    rt: Runtime, data: UserRequested, plan: Plan, *, approvers: list[str], break_glass: bool
) -> Result:
    ledger = rt.store.ledger
    current = ledger.get_ticket(data.ticket_id)  # under the locks: a revocation may have come first
    if current is not None and current.status in {"revoked", "rejected"}:
        return Result.rejected(
            [{"field": "data.ticket_id", "reason": f"the ticket is {current.status}"}],
            ticket_id=data.ticket_id,
            user_name=data.user.logon_name,
        )
    if current is not None and current.status == "completed":
        return _completed_reply(rt, current, data, ["ticket already completed"])
    saga = _Provisioning(rt, data, plan)
    try:
        existing, in_ram = saga.inspect_user()
    except NeedsHuman:
        audit(
            "user.unmanaged",
            actor="ramflow",
            ticket_id=data.ticket_id,
            outcome="needs_human",
            user=data.user.logon_name,
        )
        reason = "a RAM user of this name exists and is not managed by ramflow"
        result = Result.rejected(
            [{"field": "data.user.logon_name", "reason": reason}],
            ticket_id=data.ticket_id,
            user_name=data.user.logon_name,
        )
        result.needs_human = [data.user.logon_name]
        return result
    except GuardDenied as exc:
        return Result.rejected(exc, ticket_id=data.ticket_id, user_name=data.user.logon_name)

    def approved(t: TicketRecord) -> None:
        t.status, t.approvers, t.break_glass = "approved", approvers, break_glass
        t.approved_at = t.approved_at or rt.clock()
        t.grants = [_grant_record(data.ticket_id, data.user.logon_name, g) for g in plan.grants]
        t.expires_at = max((g.expires_at for g in plan.grants), default=None)

    try:
        return _carry_out_saga(rt, saga, data, plan, existing, in_ram, approvers, break_glass, approved)
    except CloudError as exc:
        from shared.handler import FlowFailed  # (the handler imports the flows' registry lazily)

        audit(
            "ticket.failed",
            actor="ramflow",
            ticket_id=data.ticket_id,
            outcome="failed",
            user=data.user.logon_name,
            code=exc.code,
            call=exc.action,
            retryable=exc.retryable,
            actions=saga.actions,
        )
        failed = Result(
            status="failed",
            ticket_id=data.ticket_id,
            user_name=data.user.logon_name,
            actions=saga.actions,
            errors=[FieldError(field=exc.action or "cloud", reason=exc.code)],
        )
        raise FlowFailed(failed, retryable=exc.retryable) from exc


def _carry_out_saga(
    rt: Runtime,
    saga: _Provisioning,
    data: UserRequested,
    plan: Plan,
    existing: UserRecord | None,
    in_ram: bool,
    approvers: list[str],
    break_glass: bool,
    approved: Callable[[TicketRecord], None],
) -> Result:
    ledger = rt.store.ledger
    ledger.update_ticket(data.ticket_id, approved)
    audit(
        "ticket.approved",
        actor=",".join(approvers),
        ticket_id=data.ticket_id,
        outcome="approved",
        break_glass=break_glass,
    )
    record = saga.ensure_user(existing, in_ram)
    try:
        saga.attach_grants()
    except PolicyContentMismatch as exc:
        return _squatted(data, exc)
    ledger.update_ticket(data.ticket_id, _activate_grants)
    record = saga.enable_access(record)
    ticket = ledger.update_ticket(data.ticket_id, lambda t: setattr(t, "status", "completed"))
    audit(
        "ticket.completed",
        actor="ramflow",
        ticket_id=data.ticket_id,
        outcome="completed",
        user=data.user.logon_name,
        actions=saga.actions,
    )
    return _completed_reply(rt, ticket, data, saga.actions, record=record)


def _squatted(data: UserRequested, exc: PolicyContentMismatch) -> Result:
    audit(
        "policy.mismatch",
        actor="ramflow",
        ticket_id=data.ticket_id,
        outcome="needs_human",
        policy=str(exc),
    )
    reason = f"custom policy {exc} exists with other content than ramflow renders; a person must look"
    result = Result.rejected(
        [{"field": "data.grants", "reason": reason}],
        ticket_id=data.ticket_id,
        user_name=data.user.logon_name,
    )
    result.needs_human = [str(exc)]
    return result


def _activate_grants(ticket: TicketRecord) -> None:
    for grant in ticket.grants:
        if grant.status == "planned":
            grant.status = "active"


def _completed_reply(
    rt: Runtime,
    ticket: TicketRecord,
    data: UserRequested,
    actions: list[str],
    record: UserRecord | None = None,
) -> Result:
    """The credential is in the reply of the ticket that created it, as ciphertext only."""
    record = record or rt.store.ledger.get_user(ticket.user_name)
    credential: AccessKeyReply | LoginProfileReply | None = None
    if record is not None and record.credential is not None and _delivered_by(record, ticket.ticket_id):
        stored = record.credential
        if isinstance(stored, AccessKeyRecord):
            credential = AccessKeyReply(
                access_key_id=stored.access_key_id, sealed_secret=stored.sealed_secret
            )
        else:
            credential = LoginProfileReply(
                logon_principal=rt.logon_principal(ticket.user_name), sealed_password=stored.sealed_password
            )
    return Result(
        status="completed",
        ticket_id=ticket.ticket_id,
        user_name=ticket.user_name,
        actions=actions,
        credential=credential,
    )


def _delivered_by(record: UserRecord, ticket_id: str) -> bool:
    credential = record.credential
    made_by = credential.ticket_id if credential is not None and credential.ticket_id else record.tickets[0]
    return made_by == ticket_id


def _grant_record(ticket_id: str, user_name: str, grant: PlannedGrant) -> GrantRecord:
    return GrantRecord.plan(
        ticket_id=ticket_id,
        user_name=user_name,
        policy_name=grant.policy_name,
        policy_type=grant.policy_type,
        resource_group_id=grant.resource_group,
        created_by_ramflow=grant.template is not None,
        expires_at=grant.expires_at,
    )


def _check_owner(existing: UserRecord | None, data: UserRequested) -> None:
    if existing is not None and existing.owner.casefold() != data.user.owner.casefold():
        raise GuardDenied([{"field": "data.user.owner", "reason": "the user is managed for another owner"}])
