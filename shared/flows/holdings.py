"""What RAM holds for a user, as offboarding and reconcile read it before taking it apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.cloud.ram import AccessKeyInfo, PolicyRef
from shared.cloud.resource_manager import PolicyAttachment
from shared.flows.saga import is_ramflow_policy
from shared.flows.users import is_managed


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
