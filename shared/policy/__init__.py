"""The reviewed catalog of grants, template rendering, and the safety rules (guard)."""

from shared.policy.catalog import Catalog, PolicyEntry, TemplateEntry
from shared.policy.guard import Plan, PlannedGrant, check_access_mode, check_approval, plan_request
from shared.policy.templates import is_high_risk, render

__all__ = [
    "Catalog",
    "Plan",
    "PlannedGrant",
    "PolicyEntry",
    "TemplateEntry",
    "check_access_mode",
    "check_approval",
    "is_high_risk",
    "plan_request",
    "render",
]
