"""ResourceManager 2020-03-31: request parsing and response shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from local.emulator.core import CallContext, Service
from local.emulator.errors import InvalidParameter
from local.emulator.ram.exceptions import EntityNotExistAttachment
from local.emulator.resourcemanager import exceptions as errors
from local.emulator.resourcemanager import models
from local.emulator.resourcemanager.models import PolicyAttachment, ResourceGroup, ResourceManagerBackend

service = Service("resourcemanager", "2020-03-31", "resourcemanager.aliyuncs.com")

_GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_MAX_TAGS = 20
_RESERVED_TAG_PREFIXES = ("aliyun", "acs:")
_URL_MARKERS = ("http://", "https://")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def _backend(ctx: CallContext) -> ResourceManagerBackend:
    return models.for_account(ctx.account)


# --- resource groups ------------------------------------------------------------------------------
@service.action("CreateResourceGroup")
def create_resource_group(ctx: CallContext) -> dict[str, Any]:
    name = ctx.get("Name")
    if name is None:
        raise errors.MissingName()
    if not 2 <= len(name) <= 50:
        raise errors.NameLength()
    if not _GROUP_NAME.fullmatch(name):
        raise errors.NameInvalidChars()
    display_name = ctx.get("DisplayName")
    if display_name is None:
        raise errors.MissingDisplayName()
    if len(display_name) > 50:
        raise errors.DisplayNameLength()
    tags = _tags(ctx.indexed_maps("Tag"))
    group = _backend(ctx).create_resource_group(
        name, display_name, ctx.now(), tags, ready_after=ctx.emulator.resource_group_ready_seconds
    )
    return {"ResourceGroup": _group(group, region_statuses=True)}


@service.action("GetResourceGroup")
def get_resource_group(ctx: CallContext) -> dict[str, Any]:
    group = _backend(ctx).get_resource_group(_group_id(ctx.require("ResourceGroupId")), ctx.now())
    return {"ResourceGroup": _group(group, region_statuses=True, tags=ctx.boolean("IncludeTags"))}


@service.action("ListResourceGroups")
def list_resource_groups(ctx: CallContext) -> dict[str, Any]:
    page_number = ctx.integer("PageNumber", 1, low=1)
    page_size = ctx.integer("PageSize", DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    one = ctx.get("ResourceGroupId")
    ids = ctx.indexed("ResourceGroupIds") or ([one] if one else [])
    name, display_name, status = ctx.get("Name"), ctx.get("DisplayName"), ctx.get("Status")
    tag_filters = [(t.get("Key", ""), t.get("Value")) for t in ctx.indexed_maps("Tag")]
    if len(tag_filters) > _MAX_TAGS:
        raise errors.TooManyTags(_MAX_TAGS)

    def wanted(group: ResourceGroup) -> bool:
        return (
            (not ids or group.id in ids)
            and (name is None or name.lower() in group.name.lower())
            and (display_name is None or display_name.lower() in group.display_name.lower())
            and (status is None or group.status == status)
            and all(k in group.tags and (v is None or group.tags[k] == v) for k, v in tag_filters)
        )

    found = [g for g in _backend(ctx).list_resource_groups(ctx.now()) if wanted(g)]
    start = (page_number - 1) * page_size
    with_tags = ctx.boolean("IncludeTags") or bool(tag_filters)
    return {
        "PageNumber": page_number,
        "PageSize": page_size,
        "TotalCount": len(found),
        "ResourceGroups": {
            "ResourceGroup": [_group(g, tags=with_tags) for g in found[start : start + page_size]]
        },
    }


@service.action("DeleteResourceGroup")
def delete_resource_group(ctx: CallContext) -> dict[str, Any]:
    group = _backend(ctx).delete_resource_group(_group_id(ctx.require("ResourceGroupId")), ctx.now())
    return {"ResourceGroup": _group(group, region_statuses=True)}


def _group_id(value: str) -> str:
    if not value.startswith("rg-") or len(value) > 18:
        raise errors.InvalidResourceGroupId()
    return value


def _group(group: ResourceGroup, *, region_statuses: bool = False, tags: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AccountId": group.account_id,
        "CreateDate": group.create_date,
        "DisplayName": group.display_name,
        "Id": group.id,
        "Name": group.name,
        "Status": group.status,
    }
    if region_statuses:
        body["RegionStatuses"] = {
            "RegionStatus": [{"RegionId": models.DEFAULT_REGION, "Status": group.status}]
        }
    if tags:
        body["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in group.tags.items()]}
    return body


def _tags(pairs: list[dict[str, str]]) -> dict[str, str]:
    if len(pairs) > _MAX_TAGS:
        raise errors.TooManyTags(_MAX_TAGS)
    tags: dict[str, str] = {}
    for pair in pairs:
        key, value = pair.get("Key", ""), pair.get("Value", "")
        if not key or len(key) > 128 or _reserved(key):
            raise errors.InvalidTagKey()
        if len(value) > 128 or _reserved(value):
            raise errors.InvalidTagValue()
        if key in tags:
            raise errors.DuplicateTagKey()
        tags[key] = value
    return tags


def _reserved(text: str) -> bool:
    lowered = text.lower()
    return lowered.startswith(_RESERVED_TAG_PREFIXES) or any(m in lowered for m in _URL_MARKERS)


# --- policy attachments ---------------------------------------------------------------------------
@service.action("AttachPolicy")
def attach_policy(ctx: CallContext) -> dict[str, Any]:
    backend, grant = _grant(ctx)
    scope = backend.grant_scope(ctx.require("ResourceGroupId"), ctx.now())
    principal = _principal(backend, grant)
    backend.ram.attach_policy(
        principal.kind, principal.entity_name, grant.policy_type, grant.policy_name, scope
    )
    return {}


@service.action("DetachPolicy")
def detach_policy(ctx: CallContext) -> dict[str, Any]:
    backend, grant = _grant(ctx)
    scope_id = ctx.require("ResourceGroupId")
    scope = "" if scope_id == backend.account_id else backend.get_resource_group(scope_id, ctx.now()).id
    principal = _principal(backend, grant)
    try:
        backend.ram.detach_policy(
            principal.kind, principal.entity_name, grant.policy_type, grant.policy_name, scope
        )
    except EntityNotExistAttachment:
        raise errors.EntityNotExistPolicy() from None
    return {}


@service.action("ListPolicyAttachments")
def list_policy_attachments(ctx: CallContext) -> dict[str, Any]:
    backend = _backend(ctx)
    page_number = ctx.integer("PageNumber", 1, low=1)
    page_size = ctx.integer("PageSize", DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    policy_type = _policy_type(ctx.get("PolicyType"))
    principal_type = _principal_type(ctx.get("PrincipalType"))
    policy_name, principal_name = ctx.get("PolicyName"), ctx.get("PrincipalName")
    scope = ctx.get("ResourceGroupId")
    if scope is not None and scope != backend.account_id:
        backend.get_resource_group(scope, ctx.now())

    def wanted(a: PolicyAttachment) -> bool:
        if principal_name is not None:
            parsed = backend.parse_principal(a.principal_type, principal_name)
            if parsed is None or parsed.entity_name != a.entity_name:
                return False
        return (
            (policy_type is None or a.policy_type == policy_type)
            and (principal_type is None or a.principal_type == principal_type)
            and (policy_name is None or a.policy_name == policy_name)
        )

    backend.settle(ctx.now())
    found = [a for a in backend.attachments(scope=scope) if wanted(a)]
    start = (page_number - 1) * page_size
    return {
        "PageNumber": page_number,
        "PageSize": page_size,
        "TotalCount": len(found),
        "PolicyAttachments": {"PolicyAttachment": [_attachment(a) for a in found[start : start + page_size]]},
    }


@dataclass(frozen=True)
class _Grant:
    """AttachPolicy / DetachPolicy's what-to-whom, checked."""

    policy_name: str
    policy_type: str
    principal_type: str
    principal_name: str


def _grant(ctx: CallContext) -> tuple[ResourceManagerBackend, _Grant]:
    policy_name = ctx.require("PolicyName")
    policy_type = ctx.require("PolicyType")
    principal_type = ctx.require("PrincipalType")
    _policy_type(policy_type)
    _principal_type(principal_type)
    return _backend(ctx), _Grant(policy_name, policy_type, principal_type, ctx.require("PrincipalName"))


def _principal(backend: ResourceManagerBackend, grant: _Grant) -> models.Principal:
    principal = backend.parse_principal(grant.principal_type, grant.principal_name)
    if principal is None:
        raise InvalidParameter("PrincipalName", f"not a {grant.principal_type} name of this account")
    return principal


def _policy_type(value: str | None) -> str | None:
    if value is not None and value not in models.POLICY_TYPES:
        raise errors.InvalidPolicyType()
    return value


def _principal_type(value: str | None) -> str | None:
    if value is not None and value not in models.PRINCIPAL_KINDS:
        raise errors.InvalidPrincipalType()
    return value


def _attachment(a: PolicyAttachment) -> dict[str, Any]:
    return {
        "AttachDate": a.attach_date,
        "Description": a.description,
        "PolicyName": a.policy_name,
        "PolicyType": a.policy_type,
        "PrincipalName": a.principal_name,
        "PrincipalType": a.principal_type,
        "ResourceGroupId": a.resource_group_id,
    }
