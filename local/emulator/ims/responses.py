"""IMS 2019-08-15 (user tags, the default domain): request parsing and response shapes."""

from __future__ import annotations

from typing import Any

from local.emulator.core import CallContext, Service
from local.emulator.errors import MissingParameter
from local.emulator.ims import exceptions as errors
from local.emulator.ims import models

service = Service("ims", "2019-08-15", "ims.aliyuncs.com")


@service.action("GetDefaultDomain")
def get_default_domain(ctx: CallContext) -> dict[str, Any]:
    """`<alias>.onaliyun.com`; it follows Set/ClearAccountAlias, so it is read on every call."""
    return {"DefaultDomainName": ctx.account.ram.default_domain}


@service.action("TagResources")
def tag_resources(ctx: CallContext) -> dict[str, Any]:
    models.check_resource_type(ctx.get("ResourceType"), required=True)
    tags = models.tags_to_set(ctx.indexed_maps("Tag"))
    backend = models.UserTags(ctx.account.ram)
    users = backend.resolve(ctx.indexed("ResourceId"), ctx.indexed("ResourcePrincipalName")) or []
    backend.tag(users, tags)
    return {}


@service.action("UntagResources")
def untag_resources(ctx: CallContext) -> dict[str, Any]:
    models.check_resource_type(ctx.get("ResourceType"), required=True)
    keys = ctx.indexed("TagKey")
    if len(keys) > models.MAX_TAGS_PER_REQUEST:
        raise errors.TooManyTagKeys()
    remove_all = ctx.boolean("All")
    if not keys and not remove_all:
        raise MissingParameter("TagKey")
    backend = models.UserTags(ctx.account.ram)
    users = backend.resolve(ctx.indexed("ResourceId"), ctx.indexed("ResourcePrincipalName")) or []
    backend.untag(users, keys or None)
    return {}


@service.action("ListTagResources")
def list_tag_resources(ctx: CallContext) -> dict[str, Any]:
    resource_type = models.check_resource_type(ctx.get("ResourceType"), required=False)
    page_size = ctx.integer("PageSize", models.DEFAULT_PAGE_SIZE, low=1, high=models.MAX_PAGE_SIZE)
    ids, names = ctx.indexed("ResourceId"), ctx.indexed("ResourcePrincipalName")
    filters = models.tag_filters(ctx.indexed_maps("Tag"))
    backend = models.UserTags(ctx.account.ram)
    users = backend.resolve(ids, names, required=False)
    if users is None and not filters:
        raise errors.MissingQueryTarget()

    query = {"ids": ids, "names": names, "filters": filters, "page_size": page_size}
    offset = models.token_offset(ctx.get("NextToken"), query)
    rows = backend.rows(users, filters)
    page = rows[offset : offset + page_size]
    truncated = offset + page_size < len(rows)
    body: dict[str, Any] = {
        "IsTruncated": truncated,
        "TagResources": {
            "TagResource": [
                {
                    "ResourceId": row.resource_id,
                    "ResourceType": resource_type,
                    "TagKey": row.tag_key,
                    "TagValue": row.tag_value,
                }
                for row in page
            ]
        },
    }
    if truncated:
        body["NextToken"] = models.page_token(offset + page_size, query)
    return body
