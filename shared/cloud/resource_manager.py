"""ResourceManager (2020-03-31): policy attachments scoped to a resource group."""

from __future__ import annotations

from typing import Literal

from alibabacloud_resourcemanager20200331 import models as rm

from shared.cloud.base import CloudModel, SdkGateway, Timestamp, by_page_number, nested
from shared.errors import CloudError
from shared.scope import UserScope

PrincipalType = Literal["IMSUser", "IMSGroup", "ServiceRole"]

# AttachPolicy answers this (409) for a group "being created or deleted" (AttachPolicy's error codes,
# https://www.alibabacloud.com/help/en/resource-management/developer-reference/api-attachpolicy). A
# new group answers `Creating` for a while before it is usable (CreateResourceGroup's example), so a
# grant on a group created just before the ticket waits for it, for up to READY_WAIT_SECONDS.
GROUP_NOT_READY = "Invalid.ResourceGroup.Status"
READY_WAIT_SECONDS = 30.0


class PolicyAttachment(CloudModel):
    resource_group_id: str
    policy_name: str
    policy_type: str
    principal_name: str
    principal_type: str
    description: str = ""
    attach_date: Timestamp = None


class ResourceGroup(CloudModel):
    id: str
    name: str = ""
    status: str = ""


class ResourceManagerGateway(SdkGateway):
    """`principal_name` is as ResourceManager spells it: `alice@<alias>.onaliyun.com` for a RAM user."""

    scope: UserScope = UserScope()  # Cloud sets the configured one: grants outside it are refused

    ready_wait_seconds = READY_WAIT_SECONDS

    def get_resource_group(self, resource_group_id: str) -> ResourceGroup | None:
        """None when it does not exist (EntityNotExists.ResourceGroup / NotFound.ResourceGroup).
        https://www.alibabacloud.com/help/en/resource-management/resource-group/developer-reference/api-resourcemanager-2020-03-31-getresourcegroup"""
        body = self._find(
            self._sdk.get_resource_group, rm.GetResourceGroupRequest(resource_group_id=resource_group_id)
        )
        if body is None:
            return None
        group = body.resource_group
        return ResourceGroup(id=group.id, name=group.name or "", status=group.status or "")

    def attach_policy(
        self,
        resource_group_id: str,
        policy_name: str,
        policy_type: str,
        principal_name: str,
        principal_type: PrincipalType = "IMSUser",
    ) -> None:
        if principal_type == "IMSUser":
            self.scope.check(principal_name.split("@", 1)[0], "AttachPolicy")
        request = rm.AttachPolicyRequest(
            resource_group_id=resource_group_id,
            policy_name=policy_name,
            policy_type=policy_type,
            principal_name=principal_name,
            principal_type=principal_type,
        )
        waited, delay = 0.0, 0.25
        while True:
            try:
                self._call(self._sdk.attach_policy, request)
                return
            except CloudError as exc:
                if exc.code != GROUP_NOT_READY or waited + delay > self.ready_wait_seconds:
                    raise
            self._runner.wait(delay)  # the group is still Creating: it turns OK on its own
            waited, delay = waited + delay, min(delay * 2, 4.0)

    def detach_policy(
        self,
        resource_group_id: str,
        policy_name: str,
        policy_type: str,
        principal_name: str,
        principal_type: PrincipalType = "IMSUser",
    ) -> None:
        if principal_type == "IMSUser":
            self.scope.check(principal_name.split("@", 1)[0], "DetachPolicy")
        request = rm.DetachPolicyRequest(
            resource_group_id=resource_group_id,
            policy_name=policy_name,
            policy_type=policy_type,
            principal_name=principal_name,
            principal_type=principal_type,
        )
        self._call(self._sdk.detach_policy, request)

    def list_policy_attachments(
        self,
        principal_name: str | None = None,
        policy_name: str | None = None,
        resource_group_id: str | None = None,
        *,
        principal_type: PrincipalType | None = None,
        policy_type: str | None = None,
    ) -> list[PolicyAttachment]:
        request = rm.ListPolicyAttachmentsRequest(
            principal_name=principal_name,
            principal_type=principal_type,
            policy_name=policy_name,
            policy_type=policy_type,
            resource_group_id=resource_group_id,
            page_number=1,
            page_size=self.page_size,
        )
        return self._pages(
            self._sdk.list_policy_attachments,
            request,
            lambda body: (
                PolicyAttachment(
                    resource_group_id=a.resource_group_id,
                    policy_name=a.policy_name,
                    policy_type=a.policy_type,
                    principal_name=a.principal_name,
                    principal_type=a.principal_type,
                    description=a.description or "",
                    attach_date=a.attach_date,
                )
                for a in nested(body.policy_attachments, "policy_attachment")
            ),
            by_page_number,
        )
