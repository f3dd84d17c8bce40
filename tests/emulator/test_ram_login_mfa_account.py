"""RAM login profiles, virtual MFA devices and account settings through the official SDK."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.models import CreateVirtualMFADeviceResponseBodyVirtualMFADevice

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from tests.emulator.test_ram_support import ISO_DATE, api_error, clients_for, make_user, raw_call

M = ram_models
GOOD_PASSWORD = "Kafka-Ops-2026"


def _login(clients: CloudClients, user: str, password: str = GOOD_PASSWORD, **flags: bool) -> Any:
    request = M.CreateLoginProfileRequest(user_name=user, password=password, **flags)
    return clients.ram.create_login_profile(request).body.login_profile


# --- login profiles ------------------------------------------------------------------------------
def test_login_profile_lifecycle_never_returns_the_password(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    ram = root_clients.ram
    make_user(root_clients, "alice")
    created = _login(root_clients, "alice", password_reset_required=True, mfabind_required=True)
    assert (created.user_name, created.password_reset_required, created.mfabind_required) == (
        "alice",
        True,
        True,
    )
    assert re.fullmatch(ISO_DATE, created.create_date)
    wire = raw_call(root_clients, "GetLoginProfile", UserName="alice")
    assert wire["LoginProfile"]["PasswordResetRequired"] is True
    assert GOOD_PASSWORD not in str(wire) and 'Password"' not in str(wire)
    with api_error("EntityAlreadyExists.User.LoginProfile", 409):
        _login(root_clients, "alice")

    ram.update_login_profile(
        M.UpdateLoginProfileRequest(
            user_name="alice", password="Another-Pass-9", password_reset_required=False
        )
    )
    got = ram.get_login_profile(M.GetLoginProfileRequest(user_name="alice")).body.login_profile
    assert (got.password_reset_required, got.mfabind_required) == (False, True)
    assert emulator.account.ram.get_login_profile("alice").verify_password("Another-Pass-9")
    assert "Another-Pass-9" not in repr(emulator.account.ram.get_user("alice"))
    assert "Another-Pass-9" not in repr(emulator.recorder.calls)  # the call log is redacted too

    ram.delete_login_profile(M.DeleteLoginProfileRequest(user_name="alice"))
    with api_error("EntityNotExist.User.LoginProfile", 404):
        ram.get_login_profile(M.GetLoginProfileRequest(user_name="alice"))
    with api_error("EntityNotExist.User.LoginProfile", 404):
        ram.delete_login_profile(M.DeleteLoginProfileRequest(user_name="alice"))
    with api_error("EntityNotExist.User", 404):
        _login(root_clients, "ghost")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt-p", "at least 8 characters"),
        ("alllowercase-123", "an uppercase letter"),
        ("ALLUPPERCASE-123", "a lowercase letter"),
        ("NoDigits-Here", "a digit"),
        ("Aa1" + "x" * 30, "at most 32 characters"),
    ],
)
def test_weak_password_is_refused_with_a_reason(
    root_clients: CloudClients, password: str, reason: str
) -> None:
    make_user(root_clients, "alice")
    with api_error("InvalidParameter.Password.TooWeak", 400) as info:
        _login(root_clients, "alice", password)
    assert reason in info.value.message
    assert password not in info.value.message


def test_password_policy_governs_login_profiles(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    make_user(root_clients, "alice")
    ram.set_password_policy(
        M.SetPasswordPolicyRequest(
            minimum_password_length=16, require_symbols=True, password_reuse_prevention=2
        )
    )
    with api_error("InvalidParameter.Password.TooWeak", 400) as info:
        _login(root_clients, "alice", "Longenough12345x")
    assert "a symbol" in info.value.message
    _login(root_clients, "alice", "Long-enough-1234")
    with api_error("InvalidParameter.Password.TooWeak", 400) as info:
        ram.update_login_profile(M.UpdateLoginProfileRequest(user_name="alice", password="Long-enough-1234"))
    assert "cannot be reused" in info.value.message


def test_change_password_by_the_user(emulator: Emulator, root_clients: CloudClients) -> None:
    make_user(root_clients, "alice")
    _login(root_clients, "alice", password_reset_required=True)
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="alice")).body.access_key
    as_alice = clients_for(root_clients, key.access_key_id, key.access_key_secret)
    with api_error("InvalidParameter.OldPassword.Incorrect", 400):
        as_alice.ram.change_password(
            M.ChangePasswordRequest(old_password="wrong", new_password="Brand-New-Pass1")
        )
    as_alice.ram.change_password(
        M.ChangePasswordRequest(old_password=GOOD_PASSWORD, new_password="Brand-New-Pass1")
    )
    profile = emulator.account.ram.get_login_profile("alice")
    assert profile.verify_password("Brand-New-Pass1") and not profile.password_reset_required
    with api_error("InvalidParameter.NewPassword.TooWeak", 400):
        as_alice.ram.change_password(
            M.ChangePasswordRequest(old_password="Brand-New-Pass1", new_password="weak")
        )
    with api_error("NotSupport.Account", 400) as info:
        root_clients.ram.change_password(M.ChangePasswordRequest(old_password="a", new_password="b"))
    assert "This method can be only invoked by sub user." in info.value.message


def test_change_password_to_a_recent_one_is_reuse_prevention(root_clients: CloudClients) -> None:
    root_clients.ram.set_password_policy(
        M.SetPasswordPolicyRequest(minimum_password_length=8, password_reuse_prevention=2)
    )
    make_user(root_clients, "alice")
    _login(root_clients, "alice")
    key = root_clients.ram.create_access_key(M.CreateAccessKeyRequest(user_name="alice")).body.access_key
    as_alice = clients_for(root_clients, key.access_key_id, key.access_key_secret)
    with api_error("InvalidParameter.NewPassword.ReusePrevention", 400):
        as_alice.ram.change_password(
            M.ChangePasswordRequest(old_password=GOOD_PASSWORD, new_password=GOOD_PASSWORD)
        )


# --- password policy and alias -------------------------------------------------------------------
def test_password_policy_defaults_set_and_ranges(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    policy = ram.get_password_policy().body.password_policy
    assert policy.minimum_password_length == 8
    assert (policy.require_lowercase_characters, policy.require_uppercase_characters) == (True, True)
    assert (policy.require_numbers, policy.require_symbols, policy.hard_expiry) == (True, False, False)
    assert (policy.max_password_age, policy.password_reuse_prevention, policy.max_login_attemps) == (0, 0, 5)

    set_reply = ram.set_password_policy(
        M.SetPasswordPolicyRequest(
            minimum_password_length=14,
            require_symbols=True,
            require_numbers=False,
            hard_expiry=True,
            max_password_age=90,
            password_reuse_prevention=5,
            max_login_attemps=3,
        )
    ).body.password_policy
    got = ram.get_password_policy().body.password_policy
    assert set_reply.to_map() == got.to_map()
    assert (got.minimum_password_length, got.require_symbols, got.require_numbers) == (14, True, False)
    assert (got.hard_expiry, got.max_password_age, got.password_reuse_prevention, got.max_login_attemps) == (
        True,
        90,
        5,
        3,
    )
    for field, value, param in [
        ("minimum_password_length", 7, "MinimumPasswordLength"),
        ("minimum_password_length", 33, "MinimumPasswordLength"),
        ("max_password_age", 1096, "MaxPasswordAge"),
        ("password_reuse_prevention", 25, "PasswordReusePrevention"),
    ]:
        with api_error(f"InvalidParameter.{param}.Range", 400):
            ram.set_password_policy(M.SetPasswordPolicyRequest(**{field: value}))
    assert (
        ram.get_password_policy().body.password_policy.minimum_password_length == 14
    )  # refused calls change nothing


def test_account_alias(emulator: Emulator, root_clients: CloudClients) -> None:
    ram = root_clients.ram
    ram.set_account_alias(M.SetAccountAliasRequest(account_alias="payments-prod"))
    assert ram.get_account_alias().body.account_alias == "payments-prod"
    assert emulator.account.ram.default_domain == "payments-prod.onaliyun.com"
    for alias, code in [
        ("Upper", "InvalidParameter.AccountAlias.Format"),
        ("-dash", "InvalidParameter.AccountAlias.Format"),
        ("two--dashes", "InvalidParameter.AccountAlias.Format"),
        ("ab", "InvalidParameter.AccountAlias.Length"),
    ]:
        with api_error(code, 400):
            ram.set_account_alias(M.SetAccountAliasRequest(account_alias=alias))
    emulator.add_account("5999999999999999", "taken-alias")
    with api_error("EntityAlreadyExists.AccountAlias", 409):
        ram.set_account_alias(M.SetAccountAliasRequest(account_alias="taken-alias"))
    ram.clear_account_alias()
    assert ram.get_account_alias().body.account_alias in ("", None)
    assert emulator.account.ram.default_domain == f"{emulator.account.account_id}.onaliyun.com"


# --- virtual MFA ---------------------------------------------------------------------------------
def _device(clients: CloudClients, name: str) -> CreateVirtualMFADeviceResponseBodyVirtualMFADevice:
    request = M.CreateVirtualMFADeviceRequest(virtual_mfadevice_name=name)
    return clients.ram.create_virtual_mfadevice(request).body.virtual_mfadevice


def _bind(
    clients: CloudClients, user: str, serial: str, code1: str = "123456", code2: str = "654321"
) -> None:
    request = M.BindMFADeviceRequest(
        user_name=user, serial_number=serial, authentication_code_1=code1, authentication_code_2=code2
    )
    clients.ram.bind_mfadevice(request)


def test_virtual_mfa_lifecycle(emulator: Emulator, root_clients: CloudClients) -> None:
    ram = root_clients.ram
    account = emulator.account.account_id
    device = _device(root_clients, "alice.phone-1")
    assert device.serial_number == f"acs:ram::{account}:mfa/alice.phone-1"
    assert re.fullmatch(r"[A-Z2-7]{64}", device.base_32string_seed)
    png = base64.b64decode(device.qrcode_png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and device.base_32string_seed.encode() in png
    with api_error("EntityAlreadyExists.VirtualMFADevice", 409):
        _device(root_clients, "alice.phone-1")
    with api_error("InvalidParameter.VirtualMFADeviceName.InvalidChars", 400):
        _device(root_clients, "bad_name")

    listed = ram.list_virtual_mfadevices().body.virtual_mfadevices.virtual_mfadevice
    assert [(d.serial_number, d.user) for d in listed] == [(device.serial_number, None)]

    make_user(root_clients, "alice", display_name="Alice Ünïcode")
    make_user(root_clients, "bob")
    with api_error("EntityNotExist.User.MFADevice", 404):
        ram.get_user_mfainfo(M.GetUserMFAInfoRequest(user_name="alice"))
    with api_error("InvalidParameter.AuthenticationCode.Format", 400):
        _bind(root_clients, "alice", device.serial_number, code1="12345")
    with api_error("EntityNotExist.VirtualMFADevice", 404):
        _bind(root_clients, "alice", f"acs:ram::{account}:mfa/nope")
    _bind(root_clients, "alice", device.serial_number)

    info = ram.get_user_mfainfo(M.GetUserMFAInfoRequest(user_name="alice")).body.mfadevice
    assert (info.serial_number, info.type) == (device.serial_number, "VMFA")
    bound = ram.list_virtual_mfadevices().body.virtual_mfadevices.virtual_mfadevice[0]
    assert (bound.user.user_name, bound.user.display_name) == ("alice", "Alice Ünïcode")
    assert re.fullmatch(ISO_DATE, bound.activate_date)
    other = _device(root_clients, "second")
    with api_error("EntityAlreadyExists.User.MFADevice", 409):
        _bind(root_clients, "alice", other.serial_number)
    with api_error("EntityAlreadyExists.VirtualMFADevice.User", 409):
        _bind(root_clients, "bob", device.serial_number)
    with api_error("DeleteConflict.VirtualMFADevice.User", 409):
        ram.delete_virtual_mfadevice(M.DeleteVirtualMFADeviceRequest(serial_number=device.serial_number))

    unbound = ram.unbind_mfadevice(M.UnbindMFADeviceRequest(user_name="alice")).body.mfadevice
    assert unbound.serial_number == device.serial_number
    with api_error("EntityNotExist.User.MFADevice", 404):
        ram.unbind_mfadevice(M.UnbindMFADeviceRequest(user_name="alice"))
    ram.delete_virtual_mfadevice(M.DeleteVirtualMFADeviceRequest(serial_number=device.serial_number))
    with api_error("EntityNotExist.VirtualMFADevice", 404):
        ram.delete_virtual_mfadevice(M.DeleteVirtualMFADeviceRequest(serial_number=device.serial_number))
    remaining = ram.list_virtual_mfadevices().body.virtual_mfadevices.virtual_mfadevice
    assert [d.serial_number for d in remaining] == [other.serial_number]
