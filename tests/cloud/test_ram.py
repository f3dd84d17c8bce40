"""RamGateway through the official SDK against the loopback emulator."""

from __future__ import annotations

import json
import logging

import pytest
from alibabacloud_ram20150501 import models as ram_models
from pydantic import SecretStr

from local.emulator.core import Emulator
from shared.cloud import Cloud, PolicyRef
from shared.cloud.clients import CloudClients
from shared.errors import CloudError, EntityAlreadyExists, EntityNotFound

PASSWORD = SecretStr("Corr3ct-Horse-Battery")
DOCUMENT = {
    "Version": "1",
    "Statement": [
        {"Effect": "Allow", "Action": ["alikafka:ListTopic"], "Resource": ["acs:alikafka:*:*:inst-1"]}
    ],
}


@pytest.fixture
def alice(cloud: Cloud) -> str:
    cloud.ram.create_user(
        "alice.kafka", display_name="Alice Chen", email="alice@example.com", comments="ITSM-1"
    )
    return "alice.kafka"


def test_account_alias(cloud: Cloud, emulator: Emulator) -> None:
    assert cloud.ram.get_account_alias() == emulator.account.alias


def test_password_policy_is_typed(cloud: Cloud, root_clients: CloudClients) -> None:
    root_clients.ram.set_password_policy(
        ram_models.SetPasswordPolicyRequest(
            minimum_password_length=14, require_symbols=True, require_numbers=True, max_login_attemps=3
        )
    )
    policy = cloud.ram.get_password_policy()
    assert policy.minimum_length == 14
    assert policy.require_symbols and policy.require_numbers
    assert policy.max_login_attempts == 3


def test_user_lifecycle(cloud: Cloud, alice: str) -> None:
    user = cloud.ram.get_user(alice)
    assert user is not None
    assert (user.name, user.display_name, user.email, user.comments) == (
        alice,
        "Alice Chen",
        "alice@example.com",
        "ITSM-1",
    )
    assert user.user_id and user.create_date is not None

    updated = cloud.ram.update_user(alice, display_name="Alice C.", comments="ITSM-2")
    assert (updated.display_name, updated.comments, updated.email) == (
        "Alice C.",
        "ITSM-2",
        "alice@example.com",
    )

    cloud.ram.delete_user(alice)
    assert cloud.ram.get_user(alice) is None


def test_user_absence_and_duplicates_map_to_their_errors(cloud: Cloud, alice: str) -> None:
    assert cloud.ram.get_user("nobody") is None
    with pytest.raises(EntityAlreadyExists) as info:
        cloud.ram.create_user(alice)
    assert info.value.code == "EntityAlreadyExists.User" and info.value.action == "CreateUser"
    with pytest.raises(EntityNotFound):
        cloud.ram.delete_user("nobody")
    with pytest.raises(EntityNotFound):
        cloud.ram.update_user("nobody", display_name="x")


def test_list_users_follows_every_page(cloud: Cloud, calls) -> None:
    names = [f"user-{i}" for i in range(5)]
    for name in names:
        cloud.ram.create_user(name)
    cloud.ram.page_size = 2
    assert [u.name for u in cloud.ram.list_users()] == names
    assert len(calls("ListUsers")) == 3


def test_login_profile_lifecycle(cloud: Cloud, alice: str) -> None:
    assert cloud.ram.get_login_profile(alice) is None
    created = cloud.ram.create_login_profile(
        alice, PASSWORD, password_reset_required=True, mfa_bind_required=True
    )
    assert (created.user_name, created.password_reset_required, created.mfa_bind_required) == (
        alice,
        True,
        True,
    )

    cloud.ram.update_login_profile(alice, password="An0ther-Passw0rd!", mfa_bind_required=False)
    profile = cloud.ram.get_login_profile(alice)
    assert profile is not None and profile.mfa_bind_required is False and profile.password_reset_required

    with pytest.raises(EntityAlreadyExists):
        cloud.ram.create_login_profile(alice, PASSWORD)
    cloud.ram.delete_login_profile(alice)
    assert cloud.ram.get_login_profile(alice) is None
    with pytest.raises(EntityNotFound):
        cloud.ram.delete_login_profile(alice)


def test_login_profile_for_a_missing_user(cloud: Cloud) -> None:
    with pytest.raises(EntityNotFound) as info:
        cloud.ram.create_login_profile("nobody", PASSWORD)
    assert PASSWORD.get_secret_value() not in str(info.value)


def test_a_refused_password_is_not_in_the_error(cloud: Cloud, alice: str) -> None:
    weak = "weakpass"
    with pytest.raises(CloudError) as info:
        cloud.ram.create_login_profile(alice, weak)
    assert info.value.code.startswith("PasswordPolicy") or info.value.code.startswith("InvalidParameter")
    assert weak not in str(info.value) and weak not in repr(info.value)


def test_access_key_lifecycle(cloud: Cloud, alice: str) -> None:
    key = cloud.ram.create_access_key(alice)
    assert key.access_key_id and key.status == "Active"
    assert len(key.secret.get_secret_value()) >= 16

    assert [(k.access_key_id, k.status) for k in cloud.ram.list_access_keys(alice)] == [
        (key.access_key_id, "Active")
    ]
    cloud.ram.update_access_key(alice, key.access_key_id, "Inactive")
    assert [k.status for k in cloud.ram.list_access_keys(alice)] == ["Inactive"]
    cloud.ram.delete_access_key(alice, key.access_key_id)
    assert cloud.ram.list_access_keys(alice) == []
    with pytest.raises(EntityNotFound):
        cloud.ram.delete_access_key(alice, key.access_key_id)
    with pytest.raises(EntityNotFound):
        cloud.ram.create_access_key("nobody")


def test_the_third_access_key_is_refused(cloud: Cloud, alice: str) -> None:
    cloud.ram.create_access_key(alice)
    cloud.ram.create_access_key(alice)
    with pytest.raises(CloudError) as info:
        cloud.ram.create_access_key(alice)
    assert info.value.code == "LimitExceeded.User.AccessKey"
    assert not info.value.retryable


def test_the_access_key_secret_never_shows(
    cloud: Cloud, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = cloud.ram.create_access_key(alice)
    secret = key.secret.get_secret_value()
    for text in (repr(key), str(key), key.model_dump_json(), repr(key.model_dump()), caplog.text):
        assert secret not in text
    assert key.access_key_id in repr(key)


def test_custom_policy_lifecycle(cloud: Cloud, alice: str) -> None:
    assert cloud.ram.get_policy("kafka-inst-1-reader") is None
    created = cloud.ram.create_policy("kafka-inst-1-reader", DOCUMENT, "read topics of inst-1")
    assert (created.name, created.type, created.document) == ("kafka-inst-1-reader", "Custom", DOCUMENT)
    with pytest.raises(EntityAlreadyExists):
        cloud.ram.create_policy("kafka-inst-1-reader", DOCUMENT)

    cloud.ram.attach_policy_to_user(alice, "kafka-inst-1-reader", "Custom")
    policy = cloud.ram.get_policy("kafka-inst-1-reader", "Custom")
    assert policy is not None
    assert (policy.document, policy.attachment_count, policy.description) == (
        DOCUMENT,
        1,
        "read topics of inst-1",
    )
    assert PolicyRef("kafka-inst-1-reader", "Custom") in cloud.ram.list_policies_for_user(alice)
    assert cloud.ram.list_entities_for_policy("kafka-inst-1-reader", "Custom").users == [alice]

    cloud.ram.detach_policy_from_user(alice, "kafka-inst-1-reader", "Custom")
    assert cloud.ram.list_policies_for_user(alice) == []
    with pytest.raises(EntityNotFound):
        cloud.ram.detach_policy_from_user(alice, "kafka-inst-1-reader", "Custom")
    cloud.ram.delete_policy("kafka-inst-1-reader")
    assert cloud.ram.get_policy("kafka-inst-1-reader") is None


def test_system_policy_attachment(cloud: Cloud, alice: str) -> None:
    system = cloud.ram.get_policy("AliyunKafkaReadOnlyAccess", "System")
    assert system is not None and system.type == "System" and system.document.get("Statement")
    cloud.ram.attach_policy_to_user(alice, "AliyunKafkaReadOnlyAccess", "System")
    with pytest.raises(EntityAlreadyExists):
        cloud.ram.attach_policy_to_user(alice, "AliyunKafkaReadOnlyAccess", "System")
    assert cloud.ram.list_policies_for_user(alice) == [PolicyRef("AliyunKafkaReadOnlyAccess", "System")]
    with pytest.raises(EntityNotFound):
        cloud.ram.attach_policy_to_user(alice, "NoSuchPolicy", "System")


def test_groups_for_user(cloud: Cloud, root_clients: CloudClients, alice: str) -> None:
    for group in ("kafka-ops", "payments"):
        root_clients.ram.create_group(ram_models.CreateGroupRequest(group_name=group))
        root_clients.ram.add_user_to_group(
            ram_models.AddUserToGroupRequest(user_name=alice, group_name=group)
        )
    assert sorted(cloud.ram.list_groups_for_user(alice)) == ["kafka-ops", "payments"]
    cloud.ram.remove_user_from_group(alice, "kafka-ops")
    assert cloud.ram.list_groups_for_user(alice) == ["payments"]
    with pytest.raises(EntityNotFound):
        cloud.ram.remove_user_from_group(alice, "no-such-group")


def test_mfa_device_unbind_and_delete(cloud: Cloud, root_clients: CloudClients, alice: str) -> None:
    assert cloud.ram.get_user_mfa_info(alice) is None
    device = root_clients.ram.create_virtual_mfadevice(
        ram_models.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="alice-phone")
    ).body.virtual_mfadevice
    root_clients.ram.bind_mfadevice(
        ram_models.BindMFADeviceRequest(
            user_name=alice,
            serial_number=device.serial_number,
            authentication_code_1="123456",
            authentication_code_2="654321",
        )
    )
    assert cloud.ram.get_user_mfa_info(alice) == device.serial_number
    assert cloud.ram.unbind_mfa_device(alice) == device.serial_number
    assert cloud.ram.get_user_mfa_info(alice) is None
    with pytest.raises(EntityNotFound):
        cloud.ram.unbind_mfa_device(alice)
    cloud.ram.delete_virtual_mfa_device(device.serial_number)
    with pytest.raises(EntityNotFound):
        cloud.ram.delete_virtual_mfa_device(device.serial_number)


def test_policy_documents_are_sent_canonical(cloud: Cloud, emulator: Emulator) -> None:
    """Sorted and compact: the exact text whose length the catalog checked against 6,144."""
    cloud.ram.create_policy("compact", DOCUMENT)
    sent = next(c.params["PolicyDocument"] for c in emulator.recorder.calls if c.action == "CreatePolicy")
    assert sent == json.dumps(DOCUMENT, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
