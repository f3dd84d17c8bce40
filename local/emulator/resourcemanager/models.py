"""ResourceManager state of one account: resource groups, and the view of policy grants by scope.

Grants themselves live on the RAM users, groups and roles (`RamBackend.attach_policy(...,
resource_group_id)`), so RAM and ResourceManager can never disagree: a grant made here shows in
RAM's policy evaluation, and a RAM user keeps refusing deletion (`DeleteConflict.User.Policy`)
while any resource-group grant remains: nothing is dropped behind the caller's back, offboarding
detaches such grants explicitly. Account scope is spelled `ResourceGroupId=<account id>` here and
`resource_group_id=""` in RAM.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from local.emulator.ram.models import HolderKind, RamBackend
from local.emulator.resourcemanager import exceptions as errors

if TYPE_CHECKING:
    from local.emulator.core import Account

DEFAULT_REGION = "cn-hangzhou"
MAX_RESOURCE_GROUPS = 30
DELETE_CHECK_SECONDS = 60.0  # the cloud checks a deleted group for resources for up to three days
# A new group answers `Creating` (also in RegionStatuses) until it is usable: the CreateResourceGroup
# reference's example (https://www.alibabacloud.com/help/en/resource-management/resource-group/developer-reference/api-resourcemanager-2020-03-31-createresourcegroup-rg).
# No duration is documented, and the transition is the cloud's own (asynchronous, not driven by reads):
# the official Terraform provider polls GetResourceGroup for `OK` every 10 s for up to 11 minutes
# (aliyun/terraform-provider-alicloud alicloud/resource_alicloud_resource_manager_resource_group.go).
# Locally it is a delay on the emulator's clock (`Emulator(resource_group_ready_seconds=...)`,
# `Emulator.advance` skips it); 0 makes a group OK at once.
DEFAULT_READY_SECONDS = 1.0
POLICY_TYPES = ("System", "Custom")
PRINCIPAL_KINDS: dict[str, HolderKind] = {"IMSUser": "User", "IMSGroup": "Group", "ServiceRole": "Role"}
_ID_ALPHABET = string.ascii_lowercase + string.digits
_CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
_PRINCIPAL = re.compile(r"(?P<name>[^@\s]+)@(?P<domain>[^@\s]+)")


def stamp(ts: float) -> str:
    """ResourceManager dates carry the +08:00 offset, e.g. 2021-06-05T14:39:13+08:00."""
    return datetime.fromtimestamp(ts, _CHINA_STANDARD_TIME).strftime("%Y-%m-%dT%H:%M:%S+08:00")


@dataclass
class ResourceGroup:
    id: str
    name: str
    display_name: str
    account_id: str
    created_at: float
    status: str = "OK"
    is_default: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    resources: set[str] = field(default_factory=set)  # ids of cloud resources placed in the group
    delete_requested_at: float | None = None
    ready_at: float | None = None  # while Creating: when the group turns OK

    @property
    def create_date(self) -> str:
        return stamp(self.created_at)


@dataclass(frozen=True)
class PolicyAttachment:
    """One grant as ListPolicyAttachments reports it."""

    policy_name: str
    policy_type: str
    principal_type: str  # IMSUser | IMSGroup | ServiceRole
    principal_name: str  # in the account's default domain, e.g. alice@demo.onaliyun.com
    entity_name: str  # the bare user, group or role name
    resource_group_id: str  # a resource group id, or the account id for account scope
    attach_date: str
    description: str = ""


@dataclass(frozen=True)
class Principal:
    """An IMSUser / IMSGroup / ServiceRole principal name, parsed."""

    principal_type: str
    entity_name: str

    @property
    def kind(self) -> HolderKind:
        return PRINCIPAL_KINDS[self.principal_type]


class ResourceManagerBackend:
    def __init__(self, account_id: str, ram: RamBackend | None = None, *, now: float | None = None):
        self.account_id = account_id
        self._ram = ram
        self.resource_groups: dict[str, ResourceGroup] = {}
        default = ResourceGroup(
            id=new_group_id(),
            name="default",
            display_name="Default Resource Group",
            account_id=account_id,
            created_at=time.time() if now is None else now,
            is_default=True,
        )
        self.resource_groups[default.id] = default

    def bind(self, ram: RamBackend) -> ResourceManagerBackend:
        """The account's RAM backend, where the grants live."""
        self._ram = ram
        return self

    @property
    def ram(self) -> RamBackend:
        if self._ram is None:
            raise RuntimeError(
                "ResourceManagerBackend is not bound to its account's RAM backend: call bind()"
            )
        return self._ram

    # --- resource groups ----------------------------------------------------------------------
    @property
    def default_resource_group(self) -> ResourceGroup:
        return next(g for g in self.resource_groups.values() if g.is_default)

    def create_resource_group(
        self,
        name: str,
        display_name: str,
        now: float,
        tags: dict[str, str] | None = None,
        *,
        group_id: str | None = None,
        ready_after: float = 0.0,
    ) -> ResourceGroup:
        """A new group: `Creating` for `ready_after` seconds (see DEFAULT_READY_SECONDS), then `OK`.
        `group_id` fixes the id (local seeding of the ids the sample events name); the API never
        passes one."""
        self.settle(now)
        if any(g.name == name for g in self.resource_groups.values()):
            raise errors.ResourceGroupNameExists(name)
        if len(self.resource_groups) >= MAX_RESOURCE_GROUPS:
            raise errors.LimitExceededResourceGroup(MAX_RESOURCE_GROUPS)
        if group_id is not None and group_id in self.resource_groups:
            raise errors.ResourceGroupIdExists(group_id)
        while group_id is None or group_id in self.resource_groups:
            group_id = new_group_id()
        group = ResourceGroup(group_id, name, display_name, self.account_id, now, tags=dict(tags or {}))
        if ready_after > 0:
            group.status, group.ready_at = "Creating", now + ready_after
        self.resource_groups[group.id] = group
        return group

    def get_resource_group(self, group_id: str, now: float) -> ResourceGroup:
        self.settle(now)
        group = self.resource_groups.get(group_id)
        if group is None:
            raise errors.EntityNotExistsResourceGroup()
        return group

    def list_resource_groups(self, now: float) -> list[ResourceGroup]:
        self.settle(now)
        return list(self.resource_groups.values())

    def delete_resource_group(self, group_id: str, now: float) -> ResourceGroup:
        """Start the deletion: the group turns PendingDelete under a temporary name and is gone once
        the emulated resource check has passed (`DELETE_CHECK_SECONDS`, see `settle`)."""
        group = self.get_resource_group(group_id, now)
        if group.is_default:
            raise errors.DeleteConflictResourceGroupDefault()
        if group.status != "OK":
            raise errors.ResourceGroupBusy()
        if group.resources:
            raise errors.DeleteConflictResourceGroupResource()
        group.status = "PendingDelete"
        group.delete_requested_at = now
        group.name = f"{group.name}-{group.id}-{stamp(now)[:10].replace('-', '')}"
        return group

    def settle(self, now: float) -> None:
        """Finish creations whose time has come, and deletions whose resource check is over (grants
        scoped to them go too)."""
        for group in list(self.resource_groups.values()):
            if group.status == "Creating" and group.ready_at is not None and now >= group.ready_at:
                group.status, group.ready_at = "OK", None
            if (
                group.delete_requested_at is not None
                and now >= group.delete_requested_at + DELETE_CHECK_SECONDS
            ):
                del self.resource_groups[group.id]
                if self._ram is not None:
                    for grant in self.attachments(scope=group.id):
                        self.ram.detach_policy(
                            PRINCIPAL_KINDS[grant.principal_type],
                            grant.entity_name,
                            grant.policy_type,
                            grant.policy_name,
                            group.id,
                        )

    def grant_scope(self, scope_id: str, now: float) -> str:
        """RAM's spelling of a grant scope: "" for this account, else a resource group in state OK."""
        if scope_id == self.account_id:
            return ""
        group = self.get_resource_group(scope_id, now)
        if group.status != "OK":
            raise errors.ResourceGroupBusy()
        return group.id

    # --- principals ---------------------------------------------------------------------------
    def principal_domains(self, principal_type: str) -> set[str]:
        """The default-domain spellings a principal name may use (alias or account id)."""
        prefix = {"IMSUser": "", "IMSGroup": "group.", "ServiceRole": "role."}[principal_type]
        suffix = "onaliyunservice.com" if principal_type == "ServiceRole" else "onaliyun.com"
        return {f"{prefix}{base}.{suffix}".lower() for base in (self.ram.alias, self.account_id) if base}

    def principal_name(self, principal_type: str, entity_name: str) -> str:
        prefix = {"IMSUser": "", "IMSGroup": "group.", "ServiceRole": "role."}[principal_type]
        suffix = "onaliyunservice.com" if principal_type == "ServiceRole" else "onaliyun.com"
        return f"{entity_name}@{prefix}{self.ram.alias or self.account_id}.{suffix}"

    def parse_principal(self, principal_type: str, principal_name: str) -> Principal | None:
        match = _PRINCIPAL.fullmatch(principal_name.strip())
        if match is None or match["domain"].lower() not in self.principal_domains(principal_type):
            return None
        return Principal(principal_type, match["name"])

    # --- grants -------------------------------------------------------------------------------
    def attachments(self, *, scope: str | None = None) -> list[PolicyAttachment]:
        """Every grant of the account, oldest first; `scope`: a resource group id or the account id."""
        holders: Iterable[tuple[str, Any, str]] = [
            *(("IMSUser", u, u.user_name) for u in self.ram.users.values()),
            *(("IMSGroup", g, g.group_name) for g in self.ram.groups.values()),
            *(("ServiceRole", r, r.role_name) for r in self.ram.roles.values()),
        ]
        found: list[tuple[int, PolicyAttachment]] = []
        for principal_type, holder, name in holders:
            for attachment in holder.policies.values():
                scope_id = attachment.resource_group_id or self.account_id
                if scope is not None and scope_id != scope:
                    continue
                policy = self.ram.policies[attachment.policy_type].get(attachment.policy_name)
                found.append(
                    (
                        len(found),
                        PolicyAttachment(
                            policy_name=attachment.policy_name,
                            policy_type=attachment.policy_type,
                            principal_type=principal_type,
                            principal_name=self.principal_name(principal_type, name),
                            entity_name=name,
                            resource_group_id=scope_id,
                            attach_date=attachment.attach_date,
                            description=policy.description if policy is not None else "",
                        ),
                    )
                )
        return [a for _, a in sorted(found, key=lambda item: (item[1].attach_date, item[0]))]

    def attachments_for_principal(
        self, principal_name: str, principal_type: str = "IMSUser"
    ) -> list[PolicyAttachment]:
        """Every grant one principal holds, in every scope (account and resource groups).

        `principal_name` is the API spelling (`alice@<alias>.onaliyun.com`, or with the account id
        for the alias) or the bare name (`alice`). For offboarding: detach each with DetachPolicy.
        """
        entity = principal_name.partition("@")[0]
        return [
            a for a in self.attachments() if a.principal_type == principal_type and a.entity_name == entity
        ]


def for_account(account: Account) -> ResourceManagerBackend:
    """The account's ResourceManager state, bound to its RAM backend (where the grants live)."""
    return account.resource_manager.bind(account.ram)


def new_group_id() -> str:
    return "rg-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(15))
