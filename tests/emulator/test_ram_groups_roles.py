"""RAM groups and roles through the official SDK, and the role lookups STS relies on."""

from __future__ import annotations

import json
import re

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.models import CreateRoleResponseBodyRole

from local.emulator.core import Emulator
from local.emulator.errors import ApiError
from shared.cloud.clients import CloudClients
from tests.emulator.test_ram_support import ISO_DATE, TRUST_ACCOUNT, api_error, make_user

M = ram_models
NO_PRINCIPAL = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]})


# --- groups --------------------------------------------------------------------------------------
def test_create_get_update_group(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    created = ram.create_group(
        M.CreateGroupRequest(group_name="kafka.ops_1-a", comments="Kafka + ops & co")
    ).body
    assert created.group.group_id.startswith("g-") and re.fullmatch(ISO_DATE, created.group.create_date)
    got = ram.get_group(M.GetGroupRequest(group_name="kafka.ops_1-a")).body.group
    assert (got.group_name, got.comments, got.group_id) == (
        "kafka.ops_1-a",
        "Kafka + ops & co",
        created.group.group_id,
    )
    make_user(root_clients, "alice")
    ram.add_user_to_group(M.AddUserToGroupRequest(user_name="alice", group_name="kafka.ops_1-a"))
    updated = ram.update_group(
        M.UpdateGroupRequest(group_name="kafka.ops_1-a", new_group_name="kafka-ops", new_comments="renamed")
    ).body.group
    assert (updated.group_name, updated.comments) == ("kafka-ops", "renamed")
    joined = ram.list_groups_for_user(M.ListGroupsForUserRequest(user_name="alice")).body.groups.group
    assert [g.group_name for g in joined] == ["kafka-ops"]
    with api_error("EntityNotExist.Group", 404):
        ram.get_group(M.GetGroupRequest(group_name="kafka.ops_1-a"))


@pytest.mark.parametrize(
    ("name", "comments", "code"),
    [
        ("bad group", None, "InvalidParameter.GroupName.InvalidChars"),
        ("g" * 65, None, "InvalidParameter.GroupName.Length"),
        ("ok", "c" * 129, "InvalidParameter.Comments.Length"),
    ],
)
def test_create_group_rejects_bad_values(
    root_clients: CloudClients, name: str, comments: str | None, code: str
) -> None:
    with api_error(code, 400):
        root_clients.ram.create_group(M.CreateGroupRequest(group_name=name, comments=comments))


def test_duplicate_group_and_limit(emulator: Emulator, root_clients: CloudClients) -> None:
    root_clients.ram.create_group(M.CreateGroupRequest(group_name="g1"))
    with api_error("EntityAlreadyExists.Group", 409):
        root_clients.ram.create_group(M.CreateGroupRequest(group_name="g1"))
    emulator.account.ram.limits.groups = 1
    with api_error("LimitExceeded.Group", 409):
        root_clients.ram.create_group(M.CreateGroupRequest(group_name="g2"))


def test_membership(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    ram.create_group(M.CreateGroupRequest(group_name="team", comments="the team"))
    for name in ("bob", "alice"):
        make_user(root_clients, name, display_name=f"{name.title()} Ünïcode")
        ram.add_user_to_group(M.AddUserToGroupRequest(user_name=name, group_name="team"))
    with api_error("EntityAlreadyExists.User.Group", 409):
        ram.add_user_to_group(M.AddUserToGroupRequest(user_name="bob", group_name="team"))
    with api_error("EntityNotExist.Group", 404):
        ram.add_user_to_group(M.AddUserToGroupRequest(user_name="bob", group_name="nope"))
    with api_error("EntityNotExist.User", 404):
        ram.add_user_to_group(M.AddUserToGroupRequest(user_name="nobody", group_name="team"))

    members = ram.list_users_for_group(M.ListUsersForGroupRequest(group_name="team", max_items=1)).body
    assert [u.user_name for u in members.users.user] == ["bob"] and members.is_truncated
    rest = ram.list_users_for_group(
        M.ListUsersForGroupRequest(group_name="team", max_items=1, marker=members.marker)
    ).body
    assert [(u.user_name, u.display_name) for u in rest.users.user] == [("alice", "Alice Ünïcode")]
    assert not rest.is_truncated and re.fullmatch(ISO_DATE, rest.users.user[0].join_date)
    joined = ram.list_groups_for_user(M.ListGroupsForUserRequest(user_name="bob")).body.groups.group
    assert [(g.group_name, g.comments) for g in joined] == [("team", "the team")]
    assert re.fullmatch(ISO_DATE, joined[0].join_date)

    with api_error("DeleteConflict.Group.User", 409):
        ram.delete_group(M.DeleteGroupRequest(group_name="team"))
    for name in ("bob", "alice"):
        ram.remove_user_from_group(M.RemoveUserFromGroupRequest(user_name=name, group_name="team"))
    with api_error("EntityNotExist.User.Group", 404):
        ram.remove_user_from_group(M.RemoveUserFromGroupRequest(user_name="bob", group_name="team"))
    assert ram.list_groups_for_user(M.ListGroupsForUserRequest(user_name="bob")).body.groups.group == []
    ram.attach_policy_to_group(
        M.AttachPolicyToGroupRequest(group_name="team", policy_type="System", policy_name="ReadOnlyAccess")
    )
    with api_error("DeleteConflict.Group.Policy", 409):
        ram.delete_group(M.DeleteGroupRequest(group_name="team"))
    ram.detach_policy_from_group(
        M.DetachPolicyFromGroupRequest(group_name="team", policy_type="System", policy_name="ReadOnlyAccess")
    )
    ram.delete_group(M.DeleteGroupRequest(group_name="team"))
    with api_error("EntityNotExist.Group", 404):
        ram.delete_group(M.DeleteGroupRequest(group_name="team"))


def test_eleventh_group_for_a_user_is_limit_exceeded(root_clients: CloudClients) -> None:
    make_user(root_clients, "joiner")
    for i in range(11):
        root_clients.ram.create_group(M.CreateGroupRequest(group_name=f"g{i}"))
    for i in range(10):
        root_clients.ram.add_user_to_group(M.AddUserToGroupRequest(user_name="joiner", group_name=f"g{i}"))
    with api_error("LimitExceeded.User.Group", 409):
        root_clients.ram.add_user_to_group(M.AddUserToGroupRequest(user_name="joiner", group_name="g10"))


def test_list_groups_pages(root_clients: CloudClients) -> None:
    for i in range(3):
        root_clients.ram.create_group(M.CreateGroupRequest(group_name=f"g{i}"))
    first = root_clients.ram.list_groups(M.ListGroupsRequest(max_items=2)).body
    second = root_clients.ram.list_groups(M.ListGroupsRequest(max_items=2, marker=first.marker)).body
    assert [g.group_name for g in first.groups.group + second.groups.group] == ["g0", "g1", "g2"]
    assert (first.is_truncated, second.is_truncated) == (True, False)


# --- roles ---------------------------------------------------------------------------------------
def _create_role(clients: CloudClients, name: str, **extra: object) -> CreateRoleResponseBodyRole:
    request = M.CreateRoleRequest(role_name=name, assume_role_policy_document=TRUST_ACCOUNT, **extra)
    return clients.ram.create_role(request).body.role


def test_create_and_get_role(emulator: Emulator, root_clients: CloudClients) -> None:
    account = emulator.account.account_id
    created = _create_role(root_clients, "Kafka.Operator-1", description="Kafka operator + ünïcode")
    assert created.arn == f"acs:ram::{account}:role/kafka.operator-1"
    assert re.fullmatch(r"[1-9]\d{18}", created.role_id)
    assert created.max_session_duration == 3600
    assert created.assume_role_policy_document == TRUST_ACCOUNT
    role = root_clients.ram.get_role(M.GetRoleRequest(role_name="Kafka.Operator-1")).body.role
    assert (role.role_name, role.role_id, role.arn) == ("Kafka.Operator-1", created.role_id, created.arn)
    assert role.description == "Kafka operator + ünïcode"
    assert role.role_principal_name == f"Kafka.Operator-1@role.{account}.onaliyunservice.com"
    assert role.is_service_linked_role is False and re.fullmatch(ISO_DATE, role.create_date)
    longer = _create_role(root_clients, "long", max_session_duration=43200)
    assert longer.max_session_duration == 43200


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"role_name": "under_score"}, "InvalidParameter.RoleName.InvalidChars"),
        ({"role_name": "r" * 65}, "InvalidParameter.RoleName.Length"),
        ({"max_session_duration": 3599}, "InvalidParameter.MaxSessionDuration"),
        ({"max_session_duration": 43201}, "InvalidParameter.MaxSessionDuration"),
        ({"assume_role_policy_document": "{oops"}, "MalformedPolicyDocument"),
        ({"assume_role_policy_document": NO_PRINCIPAL}, "MalformedPolicyDocument"),
        ({"assume_role_policy_document": None}, "MissingParameter"),
    ],
)
def test_create_role_rejects_bad_values(
    root_clients: CloudClients, extra: dict[str, object], code: str
) -> None:
    fields: dict[str, object] = {"role_name": "ok", "assume_role_policy_document": TRUST_ACCOUNT, **extra}
    with api_error(code, 400):
        root_clients.ram.create_role(M.CreateRoleRequest(**fields))


def test_role_names_are_unique_regardless_of_case(root_clients: CloudClients) -> None:
    _create_role(root_clients, "app")
    with api_error("EntityAlreadyExists.Role", 409):
        _create_role(root_clients, "App")


def test_update_list_and_delete_role(emulator: Emulator, root_clients: CloudClients) -> None:
    ram = root_clients.ram
    _create_role(root_clients, "app", tag=[M.CreateRoleRequestTag(key="team", value="payments")])
    _create_role(root_clients, "other")
    new_trust = TRUST_ACCOUNT.replace(":root", ":user/alice")
    updated = ram.update_role(
        M.UpdateRoleRequest(
            role_name="app",
            new_assume_role_policy_document=new_trust,
            new_max_session_duration=7200,
            new_description="nëw",
        )
    ).body.role
    assert (updated.assume_role_policy_document, updated.max_session_duration, updated.description) == (
        new_trust,
        7200,
        "nëw",
    )
    with api_error("InvalidParameter.NewMaxSessionDuration", 400):
        ram.update_role(M.UpdateRoleRequest(role_name="app", new_max_session_duration=60))
    listed = ram.list_roles(M.ListRolesRequest(max_items=1)).body
    assert [r.role_name for r in listed.roles.role] == ["app"] and listed.is_truncated
    assert listed.roles.role[0].tags.tag[0].tag_key == "team"
    tagged = ram.list_roles(
        M.ListRolesRequest(tag=[M.ListRolesRequestTag(key="team", value="payments")])
    ).body
    assert [r.role_name for r in tagged.roles.role] == ["app"]

    ram.attach_policy_to_role(
        M.AttachPolicyToRoleRequest(
            role_name="app", policy_type="System", policy_name="AliyunKafkaReadOnlyAccess"
        )
    )
    with api_error("DeleteConflict.Role.Policy", 409):
        ram.delete_role(M.DeleteRoleRequest(role_name="app"))
    ram.detach_policy_from_role(
        M.DetachPolicyFromRoleRequest(
            role_name="app", policy_type="System", policy_name="AliyunKafkaReadOnlyAccess"
        )
    )
    ram.delete_role(M.DeleteRoleRequest(role_name="app"))
    with api_error("EntityNotExist.Role", 404):
        ram.get_role(M.GetRoleRequest(role_name="app"))
    assert emulator.account.ram.role_by_arn(f"acs:ram::{emulator.account.account_id}:role/app") is None


def test_backend_role_lookups_for_sts(emulator: Emulator, root_clients: CloudClients) -> None:
    created = _create_role(root_clients, "Vendor-Role", max_session_duration=7200)
    ram = emulator.account.ram
    role = ram.get_role("Vendor-Role")
    assert (role.role_id, role.arn, role.max_session_duration) == (created.role_id, created.arn, 7200)
    assert json.loads(role.assume_role_policy_document)["Statement"][0]["Action"] == "sts:AssumeRole"
    assert ram.role_by_arn(f"acs:ram::{emulator.account.account_id}:role/Vendor-Role") is role
    assert ram.role_by_arn("acs:ram::999:role/vendor-role") is None
    with pytest.raises(ApiError) as info:
        ram.get_role("missing")
    assert (info.value.code, info.value.status) == ("EntityNotExist.Role", 404)
