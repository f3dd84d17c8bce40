"""The safety rules, as pure functions: what a request resolves to, and whether an approval suffices.

Deny by default: a grant that the catalog does not list, at a scope it does not allow, or with
parameters its schema refuses is an error, and nothing is planned. Every error is reported at
once, with the field it concerns, so a requester can fix a ticket in one round.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.durations import PositiveDuration
from shared.errors import GuardDenied, ValidationFailed
from shared.models.events import AccessApproved, UserRequested
from shared.models.fields import AccessMode, PolicyType
from shared.models.grants import PolicyGrant, TemplateGrant
from shared.policy.catalog import Catalog, Entitlement, Scope
from shared.policy.risk import is_high_risk
from shared.policy.templates import render

MAX_CUSTOM_POLICIES = 10  # RAM: custom policies attached to one user
HIGH_RISK_APPROVERS = 2


class PlannedGrant(BaseModel):
    """One grant, resolved against the catalog: exactly what will be attached, where, until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_name: str
    policy_type: PolicyType
    template: str | None = None
    params: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    scope: Scope
    resource_group: str | None = None
    high_risk: bool
    approvers: int
    auto_approvable: bool
    duration: PositiveDuration
    duration_capped: bool = False
    expires_at: datetime


class Plan(BaseModel):
    """What a request would create; `model_dump(mode="json")` is the `plan` of a reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket_id: str
    user_name: str
    access_mode: AccessMode
    catalog_version: int
    grants: list[PlannedGrant]
    required_approvers: int
    high_risk: bool
    auto_approved: bool


def _deny(field: str, reason: str) -> GuardDenied:
    return GuardDenied([{"field": field, "reason": reason}])


def _reprefixed(exc: ValidationFailed, prefix: str) -> list[dict[str, str]]:
    return [{"field": f"{prefix}.{error['field']}", "reason": error["reason"]} for error in exc.errors]


def _resolve(
    grant: PolicyGrant | TemplateGrant, catalog: Catalog, field: str
) -> tuple[Entitlement, str, PolicyType, dict[str, Any] | None]:
    """The catalog entry, policy name, policy type and (for templates) rendered document."""
    if isinstance(grant, PolicyGrant):
        entry = catalog.policy(grant.policy)
        if entry is None:
            raise _deny(f"{field}.policy", f"'{grant.policy}' is not in the policy catalog")
        if entry.type != grant.type:
            raise _deny(f"{field}.type", f"'{grant.policy}' is a {entry.type} policy in the catalog")
        return entry, grant.policy, entry.type, None
    template = catalog.template(grant.template)
    if template is None:
        raise _deny(f"{field}.template", f"'{grant.template}' is not a template in the policy catalog")
    try:
        rendered = render(grant.template, template, grant.params)
    except ValidationFailed as exc:
        raise GuardDenied(_reprefixed(exc, field)) from None
    return template, rendered.name, "Custom", rendered.document


def _plan_grant(
    grant: PolicyGrant | TemplateGrant,
    catalog: Catalog,
    requested: timedelta | None,
    start: datetime,
    field: str,
) -> PlannedGrant:
    entry, name, policy_type, document = _resolve(grant, catalog, field)
    scope: Scope = "resource_group" if grant.resource_group else "account"
    if scope not in entry.scopes:
        reason = (
            f"'{name}' may only be granted within a resource group: add 'resource_group'"
            if scope == "account"
            else f"'{name}' may only be granted at account scope"
        )
        raise _deny(f"{field}.resource_group", reason)
    high_risk = entry.high_risk or (document is not None and is_high_risk(document))
    if high_risk and requested is None:
        raise _deny("data.duration", f"'{name}' is high-risk: break-glass access needs a duration")
    duration = min(requested or entry.max_duration, entry.max_duration)
    return PlannedGrant(
        policy_name=name,
        policy_type=policy_type,
        template=grant.template if isinstance(grant, TemplateGrant) else None,
        params=dict(grant.params) if isinstance(grant, TemplateGrant) else None,
        document=document,
        scope=scope,
        resource_group=grant.resource_group,
        high_risk=high_risk,
        approvers=max(entry.approvers, HIGH_RISK_APPROVERS) if high_risk else entry.approvers,
        auto_approvable=entry.auto_approve and not high_risk,
        duration=duration,
        duration_capped=requested is not None and requested > entry.max_duration,
        expires_at=start + duration,
    )


def plan_request(request: UserRequested, catalog: Catalog, *, now: datetime | None = None) -> Plan:
    """Resolve every grant of a request, or raise GuardDenied listing everything that is refused.

    `now` is when the access starts (the approval time when re-planned at approval).
    """
    start = now or datetime.now(timezone.utc)
    planned: list[PlannedGrant] = []
    errors: list[dict[str, str]] = []
    for index, grant in enumerate(request.grants):
        try:
            planned.append(_plan_grant(grant, catalog, request.duration, start, f"data.grants[{index}]"))
        except GuardDenied as exc:
            errors.extend(error for error in exc.errors if error not in errors)
    targets = [(grant.policy_type, grant.policy_name, grant.resource_group) for grant in planned]
    if len(set(targets)) != len(targets):
        errors.append(
            {"field": "data.grants", "reason": "two grants resolve to the same policy at the same scope"}
        )
    if sum(grant.policy_type == "Custom" for grant in planned) > MAX_CUSTOM_POLICIES:
        errors.append(
            {"field": "data.grants", "reason": f"RAM allows at most {MAX_CUSTOM_POLICIES} custom policies"}
        )
    high_risk = any(grant.high_risk for grant in planned)
    if high_risk and request.duration is None:
        errors.append(
            {"field": "data.duration", "reason": "high-risk grants are always time-bound: give a duration"}
        )
    if errors:
        raise GuardDenied(errors)
    return Plan(
        ticket_id=request.ticket_id,
        user_name=request.user.logon_name,
        access_mode=request.access_mode,
        catalog_version=catalog.version,
        grants=planned,
        required_approvers=max(grant.approvers for grant in planned),
        high_risk=high_risk,
        auto_approved=not high_risk and all(grant.auto_approvable for grant in planned),
    )


def check_approval(plan: Plan, request: UserRequested, approval: AccessApproved) -> None:
    """Raise GuardDenied unless `approval` satisfies every rule the plan's grants carry.

    Nobody approves access for themselves: neither the requester nor the person receiving it
    (the user's owner or email) counts, and naming either refuses the approval outright.
    """
    if approval.ticket_id != request.ticket_id or plan.ticket_id != request.ticket_id:
        raise _deny("data.ticket_id", "the approval, the request and the plan name different tickets")
    requester = request.requester.casefold()
    beneficiaries = {email.casefold() for email in (request.user.owner, request.user.email) if email}
    approvers = {approver.casefold() for approver in approval.approvers}
    errors: list[dict[str, str]] = []
    if requester in approvers:
        errors.append(
            {"field": "data.approvers", "reason": "the requester may not approve their own request"}
        )
    if approvers & (beneficiaries - {requester}):
        errors.append(
            {"field": "data.approvers", "reason": "the person receiving the access may not approve it"}
        )
    independent = approvers - {requester} - beneficiaries
    needed = max(plan.required_approvers, HIGH_RISK_APPROVERS if plan.high_risk else 0)
    if len(independent) < needed:
        errors.append(
            {
                "field": "data.approvers",
                "reason": f"needs {needed} distinct approvers besides the requester, got {len(independent)}",
            }
        )
    if plan.high_risk:
        risky = ", ".join(grant.policy_name for grant in plan.grants if grant.high_risk)
        if not approval.break_glass:
            errors.append(
                {"field": "data.break_glass", "reason": f"high-risk grants ({risky}) need break_glass: true"}
            )
        if request.duration is None:
            errors.append({"field": "data.duration", "reason": "high-risk grants are always time-bound"})
    if errors:
        raise GuardDenied(errors)


def check_access_mode(existing_mode: str | None, requested: str) -> None:
    """One access mode per user: a console user never also gets an AccessKey, and vice versa."""
    if existing_mode is not None and existing_mode != requested:
        raise _deny(
            "data.access_mode",
            f"the user already has {existing_mode} access; one access mode per user (asked for {requested})",
        )
