"""The reviewed catalog of grants, template rendering, and the safety rules (guard).

Names are loaded on first access (PEP 562): a function that only renders or hashes a document
does not load the catalog or the guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from shared.policy.catalog import Catalog, PolicyEntry, TemplateEntry
    from shared.policy.guard import Plan, PlannedGrant, check_access_mode, check_approval, plan_request
    from shared.policy.templates import is_high_risk, render

_MODULE_OF = {
    "Catalog": "catalog",
    "PolicyEntry": "catalog",
    "TemplateEntry": "catalog",
    "Plan": "guard",
    "PlannedGrant": "guard",
    "check_access_mode": "guard",
    "check_approval": "guard",
    "plan_request": "guard",
    "is_high_risk": "templates",
    "render": "templates",
}

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


__getattr__ = lazy_attributes(__name__, _MODULE_OF, globals())
