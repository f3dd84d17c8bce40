"""What RAM holds for a user, read in one level of calls: offboarding and reconcile take it apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shared.cloud.ram import AccessKeyInfo, PolicyRef, RamGateway
from shared.cloud.resource_manager import PolicyAttachment
from shared.flows.saga import Step, Stepper, is_ramflow_policy, is_resource_group
from shared.flows.users import is_managed
from shared.runtime import Runtime


def _has_login_profile(ram: RamGateway, name: str) -> bool:
    return ram.get_login_profile(name) is not None


@dataclass
class Holdings:
    """What RAM holds for one user, as read just now."""

    user_name: str
    found: bool = True
    readable: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    login_profile: bool | None = None
    keys: list[AccessKeyInfo] = field(default_factory=list)
    policies: list[PolicyRef] = field(default_factory=list)
    rg_grants: list[PolicyAttachment] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    mfa_serial: str | None = None

    @property
    def managed(self) -> bool:
        return is_managed(self.tags)

    def ramflow_policies(self) -> set[str]:
        """Custom policies ramflow rendered, attached at either scope."""
        return {p.name for p in self.policies if is_ramflow_policy(p.type, p.name)} | {
            a.policy_name for a in self.rg_grants if is_ramflow_policy(a.policy_type, a.policy_name)
        }

    def summary(self) -> dict[str, Any]:
        return {
            "login_profile": self.login_profile,
            "access_keys": [f"{k.access_key_id} ({k.status})" for k in self.keys],
            "policies": [f"{p.type}:{p.name}" for p in self.policies],
            "resource_group_policies": [
                f"{a.policy_type}:{a.policy_name}@{a.resource_group_id}" for a in self.rg_grants
            ],
            "groups": list(self.groups),
            "mfa_device": self.mfa_serial,
        }


def discover(
    rt: Runtime, names: Sequence[str], stepper: Stepper, *, login_profile: bool = False
) -> dict[str, Holdings]:
    """One level of reads for every user; a user whose tags are missing does not exist."""
    ram, rm, ims = rt.cloud.ram, rt.cloud.rm, rt.cloud.ims
    steps: list[Step] = []
    for name in names:
        principal = rt.logon_principal(name)
        steps += [
            Step(name, "ListTagResources", "tags", partial(ims.list_user_tags, name)),
            Step(name, "ListAccessKeys", "", partial(ram.list_access_keys, name)),
            Step(name, "ListPoliciesForUser", "", partial(ram.list_policies_for_user, name)),
            Step(
                name,
                "ListPolicyAttachments",
                principal,
                partial(rm.list_policy_attachments, principal_name=principal, principal_type="IMSUser"),
            ),
            Step(name, "ListGroupsForUser", "", partial(ram.list_groups_for_user, name)),
            Step(name, "GetUserMFAInfo", "", partial(ram.get_user_mfa_info, name)),
        ]
        if login_profile:
            steps.append(Step(name, "GetLoginProfile", "", partial(_has_login_profile, ram, name)))
    holdings = {name: Holdings(name) for name in names}
    for d in stepper.run("read what RAM holds", steps):
        found = holdings[d.step.subject]
        if not d.ok:
            found.readable = False
        elif d.step.action == "ListTagResources":
            found.found, found.tags = not d.absent, dict(d.value or {})
        elif d.absent:
            continue
        elif d.step.action == "ListAccessKeys":
            found.keys = list(d.value)
        elif d.step.action == "ListPoliciesForUser":
            found.policies = list(d.value)
        elif d.step.action == "ListPolicyAttachments":
            found.rg_grants = [a for a in d.value if is_resource_group(a.resource_group_id)]
        elif d.step.action == "ListGroupsForUser":
            found.groups = list(d.value)
        elif d.step.action == "GetUserMFAInfo":
            found.mfa_serial = d.value
        elif d.step.action == "GetLoginProfile":
            found.login_profile = bool(d.value)
    return holdings
