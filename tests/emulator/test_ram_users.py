"""RAM users and access keys through the official SDK over the loopback socket."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

from local.emulator.core import Emulator
from local.emulator.ram.models import RamLimits
from shared.cloud.clients import CloudClients
from tests.emulator.test_ram_support import ISO_DATE, api_error, clients_for, make_user, raw_call

M = ram_models


def test_create_and_get_user_round_trip_every_field(root_clients: CloudClients) -> None:
    created = make_user(
        root_clients,
        "alice.kafka_01-x",
        display_name="Zoë + Ünïcode. test",
        comments="a&b=c%20+d e",
        email="alice+kafka@example.com",
        mobile_phone="86-18600008888",
    )
    assert re.fullmatch(r"[1-9]\d{15}", created.user_id)
    assert re.fullmatch(ISO_DATE, created.create_date)
    got = root_clients.ram.get_user(M.GetUserRequest(user_name="alice.kafka_01-x")).body.user
    assert (got.user_name, got.user_id) == ("alice.kafka_01-x", created.user_id)
    assert got.display_name == "Zoë + Ünïcode. test"
    assert got.comments == "a&b=c%20+d e"
    assert (got.email, got.mobile_phone) == ("alice+kafka@example.com", "86-18600008888")
    assert re.fullmatch(ISO_DATE, got.update_date)


def test_user_ids_are_unique(root_clients: CloudClients) -> None:
    ids = {make_user(root_clients, f"u{i}").user_id for i in range(20)}
    assert len(ids) == 20


def test_second_create_user_is_entity_already_exists(root_clients: CloudClients) -> None:
    make_user(root_clients, "alice")
    with api_error("EntityAlreadyExists.User", 409):
        make_user(root_clients, "alice")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"user_name": "bad name"}, "InvalidParameter.UserName.InvalidChars"),
        ({"user_name": "alice@corp"}, "InvalidParameter.UserName.InvalidChars"),
        ({"user_name": "a" * 65}, "InvalidParameter.UserName.Length"),
        ({"user_name": "ok", "display_name": "d" * 129}, "InvalidParameter.DisplayName.Length"),
        ({"user_name": "ok", "comments": "c" * 129}, "InvalidParameter.Comments.Length"),
        ({"user_name": "ok", "email": "not-an-email"}, "InvalidParameter.Email.Format"),
        ({"user_name": "ok", "mobile_phone": "18600008888"}, "InvalidParameter.MobilePhone.Format"),
        ({}, "MissingParameter"),
    ],
)
def test_create_user_rejects_bad_values(
    root_clients: CloudClients, fields: dict[str, str], code: str
) -> None:
    with api_error(code, 400):
        root_clients.ram.create_user(M.CreateUserRequest(**fields))


def test_missing_parameter_names_it(root_clients: CloudClients) -> None:
    with api_error("MissingParameter", 400) as info:
        root_clients.ram.get_user(M.GetUserRequest())
    assert "UserName" in info.value.message


def test_unknown_user_is_entity_not_exist(root_clients: CloudClients) -> None:
    with api_error("EntityNotExist.User", 404):
        root_clients.ram.get_user(M.GetUserRequest(user_name="nobody"))


def test_update_user_renames_and_keeps_memberships(root_clients: CloudClients) -> None:
    make_user(root_clients, "bob")
    make_user(root_clients, "carol")
    root_clients.ram.create_group(M.CreateGroupRequest(group_name="ops"))
    root_clients.ram.add_user_to_group(M.AddUserToGroupRequest(user_name="bob", group_name="ops"))
    updated = root_clients.ram.update_user(
        M.UpdateUserRequest(
            user_name="bob", new_user_name="robert", new_display_name="Röbert & Co", new_comments="x"
        )
    ).body.user
    assert (updated.user_name, updated.display_name, updated.comments) == ("robert", "Röbert & Co", "x")
    with api_error("EntityNotExist.User", 404):
        root_clients.ram.get_user(M.GetUserRequest(user_name="bob"))
    members = root_clients.ram.list_users_for_group(
        M.ListUsersForGroupRequest(group_name="ops")
    ).body.users.user
    assert [m.user_name for m in members] == ["robert"]
    with api_error("EntityAlreadyExists.User", 409):
        root_clients.ram.update_user(M.UpdateUserRequest(user_name="robert", new_user_name="carol"))
    with api_error("InvalidParameter.NewUserName.InvalidChars", 400):
        root_clients.ram.update_user(M.UpdateUserRequest(user_name="robert", new_user_name="r b"))


def test_list_users_pages_with_marker(root_clients: CloudClients) -> None:
    names = [f"user-{i:02d}" for i in range(7)]
    for name in reversed(names):  # creation order, not name order, is the listing order
        make_user(root_clients, name)
    seen, marker, pages = [], None, 0
    while True:
        body = root_clients.ram.list_users(M.ListUsersRequest(max_items=3, marker=marker)).body
        pages += 1
        seen += [u.user_name for u in body.users.user]
        assert all(u.user_id and u.create_date for u in body.users.user)
        if not body.is_truncated:
            assert body.marker is None
            break
        marker = body.marker
    assert pages == 3
    assert seen == list(reversed(names))


def test_list_users_default_page_and_bad_paging_values(root_clients: CloudClients) -> None:
    make_user(root_clients, "only")
    body = root_clients.ram.list_users(M.ListUsersRequest()).body
    assert ([u.user_name for u in body.users.user], body.is_truncated) == (["only"], False)
    with api_error("InvalidParameter.MaxItems", 400):
        root_clients.ram.list_users(M.ListUsersRequest(max_items=1001))
    with api_error("InvalidParameter.Marker", 400):
        root_clients.ram.list_users(M.ListUsersRequest(marker="garbage"))


def test_user_limit_is_limit_exceeded(emulator: Emulator, root_clients: CloudClients) -> None:
    assert RamLimits().users == 5000
    emulator.account.ram.limits.users = 2
    make_user(root_clients, "one")
    make_user(root_clients, "two")
    with api_error("LimitExceeded.User", 409):
        make_user(root_clients, "three")


def test_concurrent_create_user_has_exactly_one_winner(root_clients: CloudClients) -> None:
    barrier = threading.Barrier(32)
    outcomes: list[str] = []

    def attempt() -> None:
        clients = CloudClients(root_clients.settings, root_clients.credentials)  # one SDK client per thread
        barrier.wait()
        try:
            make_user(clients, "racer")
            outcomes.append("created")
        except AlibabaCloudException as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["EntityAlreadyExists.User"] * 31 + ["created"]


# --- DeleteUser refuses while anything is left ---------------------------------------------------
def _leave_key(c: CloudClients) -> None:
    c.ram.create_access_key(M.CreateAccessKeyRequest(user_name="leaver"))


def _leave_login_profile(c: CloudClients) -> None:
    c.ram.create_login_profile(M.CreateLoginProfileRequest(user_name="leaver", password="Passw0rd-Strong"))


def _leave_policy(c: CloudClients) -> None:
    c.ram.attach_policy_to_user(
        M.AttachPolicyToUserRequest(user_name="leaver", policy_type="System", policy_name="ReadOnlyAccess")
    )


def _leave_group(c: CloudClients) -> None:
    c.ram.create_group(M.CreateGroupRequest(group_name="team"))
    c.ram.add_user_to_group(M.AddUserToGroupRequest(user_name="leaver", group_name="team"))


def _leave_mfa(c: CloudClients) -> None:
    serial = c.ram.create_virtual_mfadevice(
        M.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="leaver-mfa")
    )
    c.ram.bind_mfadevice(
        M.BindMFADeviceRequest(
            user_name="leaver",
            serial_number=serial.body.virtual_mfadevice.serial_number,
            authentication_code_1="123456",
            authentication_code_2="654321",
        )
    )


@pytest.mark.parametrize(
    ("leave", "code"),
    [
        (_leave_key, "DeleteConflict.User.AccessKey"),
        (_leave_login_profile, "DeleteConflict.User.LoginProfile"),
        (_leave_policy, "DeleteConflict.User.Policy"),
        (_leave_group, "DeleteConflict.User.Group"),
        (_leave_mfa, "DeleteConflict.User.MFADevice"),
    ],
)
def test_delete_user_refuses_each_leftover(
    root_clients: CloudClients, leave: Callable[[CloudClients], None], code: str
) -> None:
    make_user(root_clients, "leaver")
    leave(root_clients)
    with api_error(code, 409):
        root_clients.ram.delete_user(M.DeleteUserRequest(user_name="leaver"))
    root_clients.ram.get_user(M.GetUserRequest(user_name="leaver"))  # still there


def test_delete_user_reports_leftovers_in_order_then_succeeds(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    make_user(root_clients, "leaver")
    for leave in (_leave_key, _leave_login_profile, _leave_policy, _leave_group, _leave_mfa):
        leave(root_clients)
    key = ram.list_access_keys(M.ListAccessKeysRequest(user_name="leaver")).body.access_keys.access_key[0]
    detach = M.DetachPolicyFromUserRequest(
        user_name="leaver", policy_type="System", policy_name="ReadOnlyAccess"
    )
    cleanups: list[tuple[str, Callable[[], object]]] = [
        (
            "DeleteConflict.User.AccessKey",
            lambda: ram.delete_access_key(
                M.DeleteAccessKeyRequest(user_name="leaver", user_access_key_id=key.access_key_id)
            ),
        ),
        (
            "DeleteConflict.User.LoginProfile",
            lambda: ram.delete_login_profile(M.DeleteLoginProfileRequest(user_name="leaver")),
        ),
        ("DeleteConflict.User.Policy", lambda: ram.detach_policy_from_user(detach)),
        (
            "DeleteConflict.User.Group",
            lambda: ram.remove_user_from_group(
                M.RemoveUserFromGroupRequest(user_name="leaver", group_name="team")
            ),
        ),
        (
            "DeleteConflict.User.MFADevice",
            lambda: ram.unbind_mfadevice(M.UnbindMFADeviceRequest(user_name="leaver")),
        ),
    ]
    for code, cleanup in cleanups:
        with api_error(code, 409):
            ram.delete_user(M.DeleteUserRequest(user_name="leaver"))
        cleanup()
    ram.delete_user(M.DeleteUserRequest(user_name="leaver"))
    with api_error("EntityNotExist.User", 404):
        ram.get_user(M.GetUserRequest(user_name="leaver"))


def test_delete_user_takes_its_tags_along(emulator: Emulator, root_clients: CloudClients) -> None:
    make_user(root_clients, "tagged")
    emulator.account.ram.get_user("tagged").tags["managed-by"] = "ramflow"
    root_clients.ram.delete_user(M.DeleteUserRequest(user_name="tagged"))
    make_user(root_clients, "tagged")
    assert emulator.account.ram.get_user("tagged").tags == {}


# --- access keys ---------------------------------------------------------------------------------
def test_create_access_key_shows_the_secret_once(root_clients: CloudClients) -> None:
    make_user(root_clients, "app")
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app")).body.access_key
    assert re.fullmatch(r"LTAI5t[A-Za-z0-9]{18}", key.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9]{30}", key.access_key_secret)
    assert key.status == "Active" and re.fullmatch(ISO_DATE, key.create_date)
    listed = root_clients.ram.list_access_keys(
        M.ListAccessKeysRequest(user_name="app")
    ).body.access_keys.access_key
    assert [(k.access_key_id, k.status) for k in listed] == [(key.access_key_id, "Active")]
    wire = raw_call(root_clients, "ListAccessKeys", UserName="app")
    assert wire["AccessKeys"]["AccessKey"][0]["AccessKeyId"] == key.access_key_id
    assert key.access_key_secret not in str(wire) and "AccessKeySecret" not in str(wire)


def test_third_access_key_is_limit_exceeded(root_clients: CloudClients) -> None:
    make_user(root_clients, "app")
    for _ in range(2):
        root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app"))
    with api_error("LimitExceeded.User.AccessKey", 409):
        root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app"))


def test_users_own_key_signs_its_calls_until_inactive(emulator: Emulator, root_clients: CloudClients) -> None:
    make_user(root_clients, "app")
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app")).body.access_key
    as_user = clients_for(root_clients, key.access_key_id, key.access_key_secret)
    identity = as_user.sts.get_caller_identity().body
    assert identity.arn == f"acs:ram::{emulator.account.account_id}:user/app"
    assert identity.identity_type == "RAMUser"
    # without UserName, key operations act on the caller's own keys
    own = as_user.ram.list_access_keys(M.ListAccessKeysRequest()).body.access_keys.access_key
    assert [k.access_key_id for k in own] == [key.access_key_id]

    root_clients.ram.update_access_key(
        M.UpdateAccessKeyRequest(user_name="app", user_access_key_id=key.access_key_id, status="Inactive")
    )
    assert (
        root_clients.ram.list_access_keys(M.ListAccessKeysRequest(user_name="app"))
        .body.access_keys.access_key[0]
        .status
        == "Inactive"
    )
    with api_error("InvalidAccessKeyId.Inactive", 400):
        as_user.sts.get_caller_identity()
    root_clients.ram.update_access_key(
        M.UpdateAccessKeyRequest(user_name="app", user_access_key_id=key.access_key_id, status="Active")
    )
    assert as_user.sts.get_caller_identity().body.arn.endswith(":user/app")


def test_deleted_key_no_longer_authenticates(root_clients: CloudClients) -> None:
    make_user(root_clients, "app")
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app")).body.access_key
    root_clients.ram.delete_access_key(
        M.DeleteAccessKeyRequest(user_name="app", user_access_key_id=key.access_key_id)
    )
    assert (
        root_clients.ram.list_access_keys(
            M.ListAccessKeysRequest(user_name="app")
        ).body.access_keys.access_key
        == []
    )
    with api_error("InvalidAccessKeyId.NotFound", 404):
        clients_for(root_clients, key.access_key_id, key.access_key_secret).sts.get_caller_identity()


def test_key_of_another_user_is_entity_not_exist(root_clients: CloudClients) -> None:
    make_user(root_clients, "app")
    make_user(root_clients, "other")
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="app")).body.access_key
    with api_error("EntityNotExist.User.AccessKey", 404):
        root_clients.ram.update_access_key(
            M.UpdateAccessKeyRequest(
                user_name="other", user_access_key_id=key.access_key_id, status="Inactive"
            )
        )
    with api_error("EntityNotExist.User.AccessKey", 404):
        root_clients.ram.delete_access_key(
            M.DeleteAccessKeyRequest(user_name="other", user_access_key_id=key.access_key_id)
        )
    with api_error("InvalidParameter.Status", 400):
        root_clients.ram.update_access_key(
            M.UpdateAccessKeyRequest(user_name="app", user_access_key_id=key.access_key_id, status="Paused")
        )
    with api_error("EntityNotExist.User", 404):
        root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="ghost"))
    with api_error("MissingParameter", 400):  # the root account names the user
        root_clients.ram.list_access_keys(M.ListAccessKeysRequest())
