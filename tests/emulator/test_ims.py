"""IMS 2019-08-15 user tags and the default domain through the official SDK over loopback."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_ims20190815 import models as ims_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients


def upn(emulator: Emulator, user: str) -> str:
    return f"{user}@{emulator.account.ram.alias}.onaliyun.com"


def tag(
    clients: CloudClients,
    tags: dict[str, str],
    *,
    names: list[str] | None = None,
    ids: list[str] | None = None,
):
    request = ims_models.TagResourcesRequest(
        resource_type="user",
        resource_principal_name=names,
        resource_id=ids,
        tag=[ims_models.TagResourcesRequestTag(key=k, value=v) for k, v in tags.items()],
    )
    return clients.ims.tag_resources(request).body


def untag(clients: CloudClients, names: list[str], keys: list[str] | None = None, all_: bool | None = None):
    request = ims_models.UntagResourcesRequest(
        resource_type="user", resource_principal_name=names, tag_key=keys, all=all_
    )
    return clients.ims.untag_resources(request).body


def listed(clients: CloudClients, **kwargs: Any) -> ims_models.ListTagResourcesResponseBody:
    tags = kwargs.pop("tags", None) or {}
    request = ims_models.ListTagResourcesRequest(
        resource_type="user",
        tag=[ims_models.ListTagResourcesRequestTag(key=k, value=v) for k, v in tags.items()],
        **kwargs,
    )
    return clients.ims.list_tag_resources(request).body


def pairs(body: ims_models.ListTagResourcesResponseBody) -> list[tuple[str, str, str]]:
    return [(r.resource_id, r.tag_key, r.tag_value) for r in body.tag_resources.tag_resource]


def error_of(call) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    return info.value


@pytest.fixture
def users(emulator: Emulator, root_clients: CloudClients) -> dict[str, str]:
    """alice, bob and carol, created through RAM: name -> user id."""
    for name in ("alice", "bob", "carol"):
        root_clients.ram.create_user(ram_models.CreateUserRequest(user_name=name))
    return {name: u.user_id for name, u in emulator.account.ram.users.items()}


def test_tags_round_trip_with_unicode_spaces_and_plus(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tags = {
        "team": "payments",
        "cost center": "a+b = c",
        "负责人": "陈 爱丽丝",
        "owner": "alice+kafka@example.com",
    }
    body = tag(root_clients, tags, names=[upn(emulator, "alice")])
    assert body.request_id

    assert emulator.account.ram.users["alice"].tags == tags
    found = listed(root_clients, resource_id=[users["alice"]])
    assert pairs(found) == [(users["alice"], k, v) for k, v in tags.items()]
    assert {r.resource_type for r in found.tag_resources.tag_resource} == {"user"}
    assert found.is_truncated is False
    assert found.next_token is None


def test_tag_by_user_id_and_overwrite(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tag(root_clients, {"team": "payments", "env": "prod"}, ids=[users["bob"]])
    tag(root_clients, {"team": "risk"}, ids=[users["bob"]])
    assert emulator.account.ram.users["bob"].tags == {"team": "risk", "env": "prod"}


def test_one_request_tags_several_users(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tag(root_clients, {"managed-by": "ramflow"}, names=[upn(emulator, "alice"), upn(emulator, "carol")])
    ram = emulator.account.ram
    assert ram.users["alice"].tags == ram.users["carol"].tags == {"managed-by": "ramflow"}
    assert ram.users["bob"].tags == {}


def test_account_id_domain_names_the_same_user(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tag(root_clients, {"k": "v"}, names=[f"alice@{emulator.account.account_id}.onaliyun.com"])
    assert emulator.account.ram.users["alice"].tags == {"k": "v"}


def test_empty_tag_value_is_allowed(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tag(root_clients, {"flag": ""}, names=[upn(emulator, "alice")])
    assert pairs(listed(root_clients, resource_principal_name=[upn(emulator, "alice")])) == [
        (users["alice"], "flag", "")
    ]


@pytest.mark.parametrize("name", ["nobody@{alias}.onaliyun.com", "alice", "alice@other.onaliyun.com"])
def test_unknown_user(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str], name: str
) -> None:
    principal = name.format(alias=emulator.account.ram.alias)
    err = error_of(lambda: tag(root_clients, {"k": "v"}, names=[principal]))
    assert (err.code, err.status_code) == ("EntityNotExist.User", 404)
    err = error_of(lambda: untag(root_clients, [principal], ["k"]))
    assert err.code == "EntityNotExist.User"


def test_unknown_user_id(root_clients: CloudClients, users: dict[str, str]) -> None:
    assert error_of(lambda: tag(root_clients, {"k": "v"}, ids=["1234"])).code == "EntityNotExist.User"


def test_resources_named_both_ways_or_not_at_all(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    both = error_of(
        lambda: tag(root_clients, {"k": "v"}, names=[upn(emulator, "alice")], ids=[users["alice"]])
    )
    assert both.code == "InvalidParameter"
    assert error_of(lambda: tag(root_clients, {"k": "v"})).code == "MissingParameter.ResourceIds"


def test_more_than_fifty_resources(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    names = [upn(emulator, "alice")] * 51
    assert error_of(lambda: tag(root_clients, {"k": "v"}, names=names)).code == "NumberExceed.ResourceIds"


def test_resource_type_must_be_user(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    request = ims_models.TagResourcesRequest(
        resource_type="role",
        resource_principal_name=[upn(emulator, "alice")],
        tag=[ims_models.TagResourcesRequestTag(key="k", value="v")],
    )
    assert error_of(lambda: root_clients.ims.tag_resources(request)).code == "InvalidParameter.ResourceType"
    request.resource_type = None
    assert error_of(lambda: root_clients.ims.tag_resources(request)).code == "MissingParameter.ResourceType"


@pytest.mark.parametrize(
    "key", ["acs:team", "aliyun-team", "Aliyunteam", "x" * 129, "see http://x", "https://x", ""]
)
def test_invalid_tag_keys(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str], key: str
) -> None:
    err = error_of(lambda: tag(root_clients, {key: "v"}, names=[upn(emulator, "alice")]))
    assert (err.code, err.status_code) == ("InvalidParameter.TagKey", 400)
    assert emulator.account.ram.users["alice"].tags == {}


def test_tag_key_and_value_limits(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    alice = upn(emulator, "alice")
    tag(root_clients, {"k" * 128: "v" * 128, "acsx": "aliyun value"}, names=[alice])
    assert emulator.account.ram.users["alice"].tags["k" * 128] == "v" * 128
    for value in ("v" * 129, "http://example.com"):
        err = error_of(lambda value=value: tag(root_clients, {"k": value}, names=[alice]))
        assert err.code == "InvalidParameter.TagValue"


def test_duplicate_keys_in_one_request(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    request = ims_models.TagResourcesRequest(
        resource_type="user",
        resource_principal_name=[upn(emulator, "alice")],
        tag=[ims_models.TagResourcesRequestTag(key="k", value=v) for v in ("1", "2")],
    )
    assert error_of(lambda: root_clients.ims.tag_resources(request)).code == "Duplicate.TagKey"


def test_no_tags_in_the_request(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    assert error_of(lambda: tag(root_clients, {}, names=[upn(emulator, "alice")])).code == "MissingParameter"


def test_twenty_tags_per_user(emulator: Emulator, root_clients: CloudClients, users: dict[str, str]) -> None:
    alice, bob = upn(emulator, "alice"), upn(emulator, "bob")
    too_many = {f"k{i}": str(i) for i in range(21)}
    assert error_of(lambda: tag(root_clients, too_many, names=[alice])).code == "NumberExceed.Tags"

    twenty = {f"k{i}": str(i) for i in range(20)}
    tag(root_clients, twenty, names=[alice])
    tag(root_clients, {"k0": "changed"}, names=[alice])  # overwriting stays within the limit
    err = error_of(lambda: tag(root_clients, {"k20": "x"}, names=[bob, alice]))
    assert err.code == "NumberExceed.Tags"
    ram = emulator.account.ram
    assert len(ram.users["alice"].tags) == 20
    assert ram.users["bob"].tags == {}, "a refused request changes no user"


def test_untag_keys_and_all(emulator: Emulator, root_clients: CloudClients, users: dict[str, str]) -> None:
    alice = upn(emulator, "alice")
    tag(root_clients, {"a": "1", "b": "2", "c": "3"}, names=[alice])
    untag(root_clients, [alice], ["a", "not-there"])
    assert emulator.account.ram.users["alice"].tags == {"b": "2", "c": "3"}
    untag(root_clients, [alice], all_=True)
    assert emulator.account.ram.users["alice"].tags == {}


def test_untag_by_user_id(emulator: Emulator, root_clients: CloudClients, users: dict[str, str]) -> None:
    tag(root_clients, {"a": "1", "b": "2"}, ids=[users["carol"]])
    request = ims_models.UntagResourcesRequest(
        resource_type="user", resource_id=[users["carol"]], tag_key=["b"]
    )
    root_clients.ims.untag_resources(request)
    assert emulator.account.ram.users["carol"].tags == {"a": "1"}


def test_untag_needs_keys_or_all(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    alice = upn(emulator, "alice")
    tag(root_clients, {"a": "1"}, names=[alice])
    assert error_of(lambda: untag(root_clients, [alice])).code == "MissingParameter"
    assert error_of(lambda: untag(root_clients, [alice], all_=False)).code == "MissingParameter"
    too_many = [f"k{i}" for i in range(21)]
    assert error_of(lambda: untag(root_clients, [alice], too_many)).code == "NumberExceed.TagKeys"
    assert emulator.account.ram.users["alice"].tags == {"a": "1"}


def test_list_by_tag_filter(emulator: Emulator, root_clients: CloudClients, users: dict[str, str]) -> None:
    tag(root_clients, {"managed-by": "ramflow", "owner": "a@example.com"}, names=[upn(emulator, "alice")])
    tag(root_clients, {"managed-by": "ramflow", "owner": "b@example.com"}, names=[upn(emulator, "bob")])
    tag(root_clients, {"managed-by": "terraform"}, names=[upn(emulator, "carol")])

    managed = pairs(listed(root_clients, tags={"managed-by": "ramflow"}))
    assert {r for r, _, _ in managed} == {users["alice"], users["bob"]}
    assert (users["bob"], "owner", "b@example.com") in managed

    by_key = pairs(listed(root_clients, tags={"managed-by": None}))
    assert {r for r, _, _ in by_key} == set(users.values())

    both = pairs(listed(root_clients, tags={"managed-by": "ramflow", "owner": "a@example.com"}))
    assert {r for r, _, _ in both} == {users["alice"]}

    scoped = pairs(listed(root_clients, resource_id=[users["carol"]], tags={"managed-by": "ramflow"}))
    assert scoped == []


def test_list_pages_with_next_token(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    for name in users:
        tag(root_clients, {"a": name, "b": name}, names=[upn(emulator, name)])
    seen: list[tuple[str, str, str]] = []
    token = None
    pages = 0
    while True:
        body = listed(root_clients, tags={"a": None}, page_size=4, next_token=token)
        pages += 1
        seen += pairs(body)
        if not body.is_truncated:
            assert body.next_token is None
            break
        assert len(body.tag_resources.tag_resource) == 4
        token = body.next_token
        assert token and len(token) == 32
    assert pages == 2
    assert len(seen) == len(set(seen)) == 6


def test_next_token_is_bound_to_its_query(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    for name in users:
        tag(root_clients, {"a": name}, names=[upn(emulator, name)])
    token = listed(root_clients, tags={"a": None}, page_size=1).next_token
    assert token
    assert pairs(listed(root_clients, tags={"a": None}, page_size=1, next_token=token))
    for bad_token, filters in (
        (token, {"b": None}),
        (token, {"a": "alice"}),
        ("0" * 32, {"a": None}),
        ("junk", {"a": None}),
    ):
        err = error_of(lambda t=bad_token, f=filters: listed(root_clients, tags=f, page_size=1, next_token=t))
        assert err.code == "InvalidParameter.NextToken"


@pytest.mark.parametrize("size", [0, 101])
def test_page_size_limits(root_clients: CloudClients, users: dict[str, str], size: int) -> None:
    assert (
        error_of(lambda: listed(root_clients, tags={"a": None}, page_size=size)).code
        == "InvalidParameter.PageSize"
    )


def test_list_needs_a_resource_or_a_tag(root_clients: CloudClients, users: dict[str, str]) -> None:
    assert error_of(lambda: listed(root_clients)).code == "MissingParameter"


def test_deleted_user_takes_its_tags_along(
    emulator: Emulator, root_clients: CloudClients, users: dict[str, str]
) -> None:
    tag(root_clients, {"managed-by": "ramflow"}, names=[upn(emulator, "bob")])
    root_clients.ram.delete_user(ram_models.DeleteUserRequest(user_name="bob"))
    assert pairs(listed(root_clients, tags={"managed-by": None})) == []
    err = error_of(lambda: listed(root_clients, resource_id=[users["bob"]]))
    assert err.code == "EntityNotExist.User"


def test_default_domain_follows_the_account_alias(emulator: Emulator, root_clients: CloudClients) -> None:
    body = root_clients.ims.get_default_domain().body
    assert body.request_id
    assert body.default_domain_name == f"{emulator.account.alias}.onaliyun.com"
    root_clients.ram.set_account_alias(ram_models.SetAccountAliasRequest(account_alias="renamed-corp"))
    assert root_clients.ims.get_default_domain().body.default_domain_name == "renamed-corp.onaliyun.com"
