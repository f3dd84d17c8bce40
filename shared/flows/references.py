"""Every cloud reference a ticket names is checked with read calls before the first write.

A request naming a resource group or policy that does not exist (or a custom policy name held by
other content) is refused with the field and the reason — at request time, and again at approval,
since the world may have changed in between — so a bad reference never stops a saga half-way.
A read that fails for a transient reason raises (the event is delivered again); only a definite
"does not exist" is a refusal.
"""

from __future__ import annotations

from shared.errors import GuardDenied, PolicyContentMismatch
from shared.policy.guard import Plan
from shared.runtime import Runtime


def check_references(rt: Runtime, plan: Plan) -> None:
    """Raise GuardDenied naming each grant whose resource group or system policy does not exist, or
    PolicyContentMismatch when a custom policy of ramflow's content-derived name holds other content."""
    errors: list[dict[str, str]] = []
    squatted: list[str] = []
    groups: dict[str, bool] = {}
    for index, grant in enumerate(plan.grants):
        where = f"data.grants[{index}]"
        if grant.resource_group:
            if grant.resource_group not in groups:
                groups[grant.resource_group] = (
                    rt.cloud.rm.get_resource_group(grant.resource_group) is not None
                )
            if not groups[grant.resource_group]:
                errors.append(
                    {"field": f"{where}.resource_group", "reason": "no such resource group in this account"}
                )
        policy = rt.cloud.ram.get_policy(grant.policy_name, grant.policy_type)
        if grant.policy_type == "System" and policy is None:
            errors.append({"field": f"{where}.policy", "reason": "no such system policy in RAM"})
        elif grant.document is not None and policy is not None and policy.document != grant.document:
            squatted.append(grant.policy_name)
    if errors:
        raise GuardDenied(errors)
    if squatted:
        raise PolicyContentMismatch(squatted[0])  # the name promises this content: a person must look
