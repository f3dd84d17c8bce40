"""IMS (2019-08-15) user tags: the facts (managed-by, ticket, owner) ramflow mirrors onto RAM users.

IMS names a user by its principal name, `<user>@<account alias>.onaliyun.com`, and answers tag
queries with user ids; the gateway speaks logon names both ways, asking RAM for the alias and for
the id-to-name map when it needs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alibabacloud_ims20190815 import models as ims

from shared.cloud.base import SdkGateway, by_next_token, nested
from shared.cloud.ram import RamGateway, RamUser
from shared.cloud.retry import CloudRunner

USER = "user"


class ImsGateway(SdkGateway):
    def __init__(self, sdk: Any, runner: CloudRunner, *, ram: RamGateway, account_alias: str | None = None):
        super().__init__(sdk, runner)
        self._ram = ram
        self._alias = account_alias

    @property
    def account_alias(self) -> str:
        """Read once, then remembered: it names every principal."""
        if self._alias is None:
            self._alias = self._ram.get_account_alias()
        return self._alias

    def principal_name(self, name: str) -> str:
        """`alice` → `alice@<alias>.onaliyun.com`."""
        return f"{name}@{self.account_alias}.onaliyun.com"

    def tag_user(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite these tags; others stay."""
        self._ram.scope.check(name, "TagResources")
        if not tags:
            return
        request = ims.TagResourcesRequest(
            resource_type=USER,
            resource_principal_name=[self.principal_name(name)],
            tag=[ims.TagResourcesRequestTag(key=k, value=v) for k, v in tags.items()],
        )
        self._call(self._sdk.tag_resources, request)

    def untag_user(self, name: str, keys: Iterable[str]) -> None:
        """Remove these tag keys; keys the user does not carry are fine."""
        self._ram.scope.check(name, "UntagResources")
        keys = list(keys)
        if not keys:
            return
        request = ims.UntagResourcesRequest(
            resource_type=USER, resource_principal_name=[self.principal_name(name)], tag_key=keys
        )
        self._call(self._sdk.untag_resources, request)

    def list_user_tags(self, name: str) -> dict[str, str]:
        request = ims.ListTagResourcesRequest(
            resource_type=USER, resource_principal_name=[self.principal_name(name)], page_size=self.page_size
        )
        rows = self._list_tag_rows(request)
        return {row.tag_key: row.tag_value or "" for row in rows}

    def users_with_tag(self, key: str, value: str, *, users: Sequence[RamUser] | None = None) -> list[str]:
        """Logon names of every user tagged `key=value`, in the order IMS lists them. IMS answers user
        ids: `users` (a ListUsers the caller made already) names them, else ListUsers is called."""
        request = ims.ListTagResourcesRequest(
            resource_type=USER,
            tag=[ims.ListTagResourcesRequestTag(key=key, value=value)],
            page_size=self.page_size,
        )
        user_ids = list(dict.fromkeys(row.resource_id for row in self._list_tag_rows(request)))
        if not user_ids:
            return []
        names = {user.user_id: user.name for user in (self._ram.list_users() if users is None else users)}
        return [names[user_id] for user_id in user_ids if user_id in names]

    def _list_tag_rows(self, request: ims.ListTagResourcesRequest) -> list[Any]:
        return self._pages(
            self._sdk.list_tag_resources,
            request,
            lambda body: nested(body.tag_resources, "tag_resource"),
            by_next_token,
        )
