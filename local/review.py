"""Read models over the production ledger: tickets, managed users and the access review.

`ramflow tickets`, `ramflow users` and `ramflow report` read the deployment's state store (never
the cloud, except `report --drift`, which runs a read-only reconcile) and print these models as
tables, JSON, CSV or one HTML page. Per-user findings (`UserView.findings`) are the place for
checks beyond the ledger, e.g. AccessKey hygiene: a finder is a function `(UserView) -> [Finding]`
registered in `FINDERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from shared.flows.keys import RULE_CREATE_DATE, RULE_QUANTITY, RULE_USED
from shared.policy.catalog import Catalog
from shared.policy.risk import KNOWN_HIGH_RISK_POLICIES
from shared.store import StateStore
from shared.store.records import GrantRecord, KeyFindingsRecord, TicketRecord, UserRecord

CUSTOM_PREFIX = "ramflow-"  # rendered templates are named ramflow-<template>-<content hash>


class Finding(BaseModel):
    """Something a reviewer should look at for one user (drift, an old AccessKey, …)."""

    kind: str
    detail: str = ""
    severity: Literal["info", "warning", "high"] = "warning"
    source: str = Field("ledger", description="which check found it (ledger, reconcile, …)")


class GrantRow(BaseModel):
    """One grant held (or once held) by a managed user: the access review's row."""

    user_name: str
    owner: str
    access_mode: str
    user_status: str
    ticket_id: str
    ticket_status: str
    requester: str
    approvers: list[str]
    approved_at: datetime | None
    break_glass: bool
    policy_type: str
    policy_name: str
    scope: str = Field(description="account, or the resource group id")
    status: str
    granted_at: datetime | None
    expires_at: datetime | None
    expiring: bool = Field(description="ends within the review window")
    high_risk: bool
    drift: list[str] = Field(default_factory=list)


class TicketView(BaseModel):
    ticket_id: str
    status: str
    requester: str
    user_name: str
    owner: str
    access_mode: str
    approvers: list[str]
    approved_at: datetime | None
    break_glass: bool
    grants: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class UserView(BaseModel):
    user_name: str
    owner: str
    access_mode: str
    status: str
    delete_after: datetime | None
    tickets: list[str]
    last_change: datetime
    grants: list[GrantRow]
    findings: list[Finding] = Field(default_factory=list)


Finder = Callable[[UserView], list[Finding]]
FINDERS: list[Finder] = []
"""Per-user checks beyond the ledger; each adds its findings to `UserView.findings`."""


def template_of(policy_name: str) -> str | None:
    if not policy_name.startswith(CUSTOM_PREFIX):
        return None
    return policy_name[len(CUSTOM_PREFIX) :].rsplit("-", 1)[0] or None


def high_risk(grant: GrantRecord, ticket: TicketRecord | None, catalog: Catalog | None) -> bool:
    """High-risk as the catalog marks it (or a break-glass ticket, or a known dangerous policy)."""
    if ticket is not None and ticket.break_glass:
        return True
    if grant.policy_name in KNOWN_HIGH_RISK_POLICIES:
        return True
    if catalog is None:
        return False
    if grant.policy_type == "System":
        entry = catalog.policy(grant.policy_name)
        return bool(entry and entry.high_risk)
    template = template_of(grant.policy_name)
    found = catalog.template(template) if template else None
    return bool(found and found.high_risk)


def ticket_view(ticket: TicketRecord) -> TicketView:
    return TicketView(
        ticket_id=ticket.ticket_id,
        status=ticket.status,
        requester=ticket.requester,
        user_name=ticket.user_name,
        owner=ticket.owner,
        access_mode=ticket.access_mode,
        approvers=list(ticket.approvers),
        approved_at=approved_at(ticket),
        break_glass=ticket.break_glass,
        grants=len(ticket.grants),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        expires_at=ticket.expires_at,
    )


def approved_at(ticket: TicketRecord) -> datetime | None:
    """Recorded at approval; tickets approved before that field existed fall back to their last change."""
    if ticket.approved_at is not None:
        return ticket.approved_at
    return ticket.updated_at if ticket.approvers else None


def tickets(
    store: StateStore,
    *,
    status: str | None = None,
    owner: str | None = None,
    expiring_within: timedelta | None = None,
    now: datetime,
) -> list[TicketView]:
    found = store.ledger.all_tickets()
    if status:
        found = [t for t in found if t.status == status]
    if owner:
        found = [t for t in found if t.owner.lower() == owner.lower()]
    if expiring_within is not None:
        until = now + expiring_within
        found = [
            t
            for t in found
            if t.expires_at is not None and now <= t.expires_at <= until and t.status != "revoked"
        ]
    return [ticket_view(t) for t in sorted(found, key=lambda t: (t.created_at, t.ticket_id))]


def grant_rows(
    user: UserRecord,
    tickets_of_user: Iterable[TicketRecord],
    *,
    catalog: Catalog | None,
    now: datetime,
    window: timedelta,
) -> list[GrantRow]:
    rows = []
    for ticket in tickets_of_user:
        for grant in ticket.grants:
            rows.append(
                GrantRow(
                    user_name=user.user_name,
                    owner=user.owner,
                    access_mode=user.access_mode,
                    user_status=user.status,
                    ticket_id=ticket.ticket_id,
                    ticket_status=ticket.status,
                    requester=ticket.requester,
                    approvers=list(ticket.approvers),
                    approved_at=approved_at(ticket),
                    break_glass=ticket.break_glass,
                    policy_type=grant.policy_type,
                    policy_name=grant.policy_name,
                    scope=grant.resource_group_id or "account",
                    status=grant.status,
                    granted_at=approved_at(ticket),
                    expires_at=grant.expires_at,
                    expiring=grant.status == "active"
                    and grant.expires_at is not None
                    and grant.expires_at <= now + window,
                    high_risk=high_risk(grant, ticket, catalog),
                )
            )
    return rows


def users(
    store: StateStore,
    *,
    name: str | None = None,
    owner: str | None = None,
    catalog: Catalog | None = None,
    now: datetime,
    window: timedelta = timedelta(days=7),
) -> list[UserView]:
    ledger = store.ledger
    if name:
        record = ledger.get_user(name)
        records = [record] if record is not None else []
    else:
        records = ledger.all_users()
    if owner:
        records = [u for u in records if u.owner.lower() == owner.lower()]
    views = []
    for user in sorted(records, key=lambda u: u.user_name):
        held = ledger.tickets_of_user(user.user_name)
        view = UserView(
            user_name=user.user_name,
            owner=user.owner,
            access_mode=user.access_mode,
            status=user.status,
            delete_after=user.delete_after,
            tickets=list(user.tickets),
            last_change=max([user.updated_at, *(t.updated_at for t in held)]),
            grants=grant_rows(user, held, catalog=catalog, now=now, window=window),
        )
        view.findings.extend(key_findings(ledger.get_key_findings(user.user_name)))
        for finder in FINDERS:
            view.findings.extend(finder(view))
        views.append(view)
    return views


KEY_RULE_SEVERITY = {RULE_CREATE_DATE: "high", RULE_USED: "warning", RULE_QUANTITY: "warning"}


def key_findings(record: KeyFindingsRecord | None) -> list[Finding]:
    """The AccessKey rules' findings of the last reconcile pass, named by the Cloud Config rule, and a
    held rotation (shared/flows/keys.py)."""
    if record is None:
        return []
    source = f"reconcile {record.evaluated_at:%Y-%m-%d %H:%M}Z"
    found = [
        Finding(
            kind=f["rule"],
            detail=f"{f['access_key_id']}: {f['detail']}",
            severity=KEY_RULE_SEVERITY.get(f["rule"], "warning"),  # type: ignore[arg-type]
            source=source,
        )
        for f in record.findings
    ]
    if record.rotation_state == "held":
        found.append(
            Finding(kind="key-rotation-held", detail=record.hold_reason or "", severity="high", source=source)
        )
    return found


def add_key_findings(views: list[UserView], findings: Iterable[tuple[str, str, str, str]]) -> None:
    """Attach a read-only reconcile's AccessKey findings (user, rule, key, detail), replacing those of the
    last pass for the users it evaluated."""
    by_user = {v.user_name: v for v in views}
    fresh: dict[str, list[Finding]] = {}
    for user_name, rule, key, detail in findings:
        fresh.setdefault(user_name, []).append(
            Finding(
                kind=rule,
                detail=f"{key}: {detail}",
                severity=KEY_RULE_SEVERITY.get(rule, "warning"),  # type: ignore[arg-type]
                source="reconcile",
            )
        )
    for user_name, view in by_user.items():
        if user_name in fresh:
            view.findings = [f for f in view.findings if f.kind not in KEY_RULE_SEVERITY] + fresh[user_name]


def add_drift(views: list[UserView], drift: Iterable[tuple[str, str, str]]) -> None:
    """Attach reconcile's drift (user, kind, target) to the users and the grants it concerns."""
    by_user = {v.user_name: v for v in views}
    for user_name, kind, target in drift:
        view = by_user.get(user_name)
        if view is None:
            continue
        view.findings.append(Finding(kind=kind, detail=target, severity="high", source="reconcile"))
        for row in view.grants:
            if target and row.policy_name in target:
                row.drift.append(f"{kind} {target}".strip())
