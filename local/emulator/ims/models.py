"""IMS user tags. The tags themselves live on the RAM users (`User.tags`); this module holds the
tagging rules and limits of the IMS 2019-08-15 TagResources family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from local.emulator.errors import MissingParameter
from local.emulator.ims import exceptions as errors
from local.emulator.ram.exceptions import EntityNotExistUser
from local.emulator.ram.models import RamBackend, User

RESOURCE_TYPE_USER = "user"
MAX_RESOURCES_PER_REQUEST = 50
MAX_TAGS_PER_REQUEST = 20
MAX_TAGS_PER_USER = 20
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 128
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
_RESERVED_KEY_PREFIXES = ("aliyun", "acs:")
_URL_MARKERS = ("http://", "https://")


@dataclass(frozen=True)
class TagRow:
    """One (resource, tag) pair, as ListTagResources reports it."""

    resource_id: str
    tag_key: str
    tag_value: str


def check_resource_type(value: str | None, *, required: bool) -> str:
    if value is None or value == "":
        if required:
            raise errors.MissingResourceType()
        return RESOURCE_TYPE_USER
    if value != RESOURCE_TYPE_USER:
        raise errors.InvalidResourceType()
    return value


def check_tag_key(key: str | None) -> str:
    if (
        not key
        or len(key) > MAX_TAG_KEY_LENGTH
        or key.lower().startswith(_RESERVED_KEY_PREFIXES)
        or any(marker in key.lower() for marker in _URL_MARKERS)
    ):
        raise errors.InvalidTagKey()
    return key


def check_tag_value(value: str | None) -> str:
    value = value or ""
    if len(value) > MAX_TAG_VALUE_LENGTH or any(marker in value.lower() for marker in _URL_MARKERS):
        raise errors.InvalidTagValue()
    return value


def tags_to_set(pairs: list[dict[str, str]]) -> dict[str, str]:
    """TagResources' `Tag.N.Key` / `Tag.N.Value` list as a dict, checked against the limits."""
    if not pairs:
        raise MissingParameter("Tag")
    if len(pairs) > MAX_TAGS_PER_REQUEST:
        raise errors.TooManyTagsInRequest(MAX_TAGS_PER_REQUEST)
    tags: dict[str, str] = {}
    for pair in pairs:
        key = check_tag_key(pair.get("Key"))
        if key in tags:
            raise errors.DuplicateTagKey()
        tags[key] = check_tag_value(pair.get("Value"))
    return tags


def tag_filters(pairs: list[dict[str, str]]) -> list[tuple[str, str | None]]:
    """ListTagResources' tag filter: every key must be present; a value, when given, must match."""
    if len(pairs) > MAX_TAGS_PER_REQUEST:
        raise errors.TooManyTagsInRequest(MAX_TAGS_PER_REQUEST)
    filters: list[tuple[str, str | None]] = []
    for pair in pairs:
        key = pair.get("Key")
        if not key:
            raise errors.InvalidTagKey()
        filters.append((key, pair.get("Value")))
    return filters


class UserTags:
    """Tagging over the RAM users of one account."""

    def __init__(self, ram: RamBackend):
        self.ram = ram

    # --- which users a request names ----------------------------------------------------------
    def resolve(self, ids: list[str], names: list[str], *, required: bool = True) -> list[User] | None:
        """Users named by `ResourceId.N` (user ids) or `ResourcePrincipalName.N` (logon names).

        Exactly one of the two lists may be given; with `required=False` neither is fine (None).
        """
        if ids and names:
            raise errors.BothResourceIdAndName()
        if not ids and not names:
            if required:
                raise errors.MissingResourceIds()
            return None
        if len(ids) + len(names) > MAX_RESOURCES_PER_REQUEST:
            raise errors.TooManyResourceIds()
        users = [self._by_id(i) for i in ids] if ids else [self._by_principal_name(n) for n in names]
        return list({id(u): u for u in users}.values())

    def principal_name(self, user: User) -> str:
        return f"{user.user_name}@{self.ram.alias}.onaliyun.com"

    def _by_id(self, user_id: str) -> User:
        for user in self.ram.users.values():
            if user.user_id == user_id:
                return user
        raise EntityNotExistUser(user_id)

    def _by_principal_name(self, principal_name: str) -> User:
        """`<user>@<alias>.onaliyun.com`; the account id may stand for the alias."""
        name, at, domain = principal_name.rpartition("@")
        domains = {f"{self.ram.alias}.onaliyun.com".lower(), f"{self.ram.account_id}.onaliyun.com"}
        user = self.ram.users.get(name) if at and domain.lower() in domains else None
        if user is None:
            raise EntityNotExistUser(principal_name)
        return user

    # --- changes ------------------------------------------------------------------------------
    def tag(self, users: list[User], tags: dict[str, str]) -> None:
        """Add or overwrite; all or nothing when a user would pass the per-user limit."""
        for user in users:
            if len(set(user.tags) | set(tags)) > MAX_TAGS_PER_USER:
                raise errors.TooManyTagsOnResource(MAX_TAGS_PER_USER)
        for user in users:
            user.tags.update(tags)

    def untag(self, users: list[User], keys: list[str] | None) -> None:
        """Remove the given keys (absent keys are fine), or every tag when `keys` is None."""
        for user in users:
            if keys is None:
                user.tags.clear()
            else:
                for key in keys:
                    user.tags.pop(key, None)

    # --- queries ------------------------------------------------------------------------------
    def rows(self, users: list[User] | None, filters: list[tuple[str, str | None]]) -> list[TagRow]:
        """Every tag of the selected users that carry all the filter tags, in a stable order."""
        candidates: Iterable[User] = users if users is not None else self.ram.users.values()
        found: list[TagRow] = []
        for user in candidates:
            if all(key in user.tags and (value is None or user.tags[key] == value) for key, value in filters):
                found.extend(TagRow(user.user_id, k, v) for k, v in user.tags.items())
        return found


# --- NextToken ----------------------------------------------------------------------------------
def page_token(offset: int, query: object) -> str:
    """An opaque 32-hex-digit token bound to the query it continues."""
    return f"{offset:08x}{_fingerprint(query)}"


def token_offset(token: str | None, query: object) -> int:
    if not token:
        return 0
    if len(token) != 32 or token[8:] != _fingerprint(query):
        raise errors.InvalidNextToken()
    try:
        return int(token[:8], 16)
    except ValueError:
        raise errors.InvalidNextToken() from None


def _fingerprint(query: object) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:24]
