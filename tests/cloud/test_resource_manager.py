"""ResourceManagerGateway: resource-group-scoped grants."""

from __future__ import annotations

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import Emulator
from shared.cloud import Cloud, PolicyAttachment
from shared.cloud.clients import CloudClients
from shared.errors import EntityAlreadyExists, EntityNotFound


@pytest.fixture
def group_id(root_clients: CloudClients) -> str:
    request = rm_models.CreateResourceGroupRequest(name="kafka-prod", display_name="Kafka production")
    return root_clients.resource_manager.create_resource_group(request).body.resource_group.id


@pytest.fixture
def alice(cloud: Cloud, emulator: Emulator) -> str:
    cloud.ram.create_user("alice.kafka")
    return f"alice.kafka@{emulator.account.alias}.onaliyun.com"


def test_attach_list_detach(cloud: Cloud, group_id: str, alice: str) -> None:
    cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    found = cloud.rm.list_policy_attachments(principal_name=alice, principal_type="IMSUser")
    assert [
        (a.resource_group_id, a.policy_name, a.policy_type, a.principal_name, a.principal_type) for a in found
    ] == [(group_id, "AliyunKafkaReadOnlyAccess", "System", alice, "IMSUser")]
    assert isinstance(found[0], PolicyAttachment) and found[0].attach_date is not None
    assert cloud.rm.list_policy_attachments(resource_group_id=group_id) == found
    assert cloud.rm.list_policy_attachments(policy_name="AliyunKafkaReadOnlyAccess") == found

    cloud.rm.detach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    assert cloud.rm.list_policy_attachments(principal_name=alice, principal_type="IMSUser") == []


def test_duplicates_and_absences_map_to_their_errors(cloud: Cloud, group_id: str, alice: str) -> None:
    cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    with pytest.raises(EntityAlreadyExists):
        cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    cloud.rm.detach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    with pytest.raises(EntityNotFound):
        cloud.rm.detach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)
    with pytest.raises(EntityNotFound):
        cloud.rm.attach_policy("rg-doesnotexist00", "AliyunKafkaReadOnlyAccess", "System", alice)


def test_listing_follows_every_page(cloud: Cloud, group_id: str, emulator: Emulator, calls) -> None:  # type: ignore[no-untyped-def]
    names = [f"user-{i}" for i in range(5)]
    for name in names:
        cloud.ram.create_user(name)
        principal = f"{name}@{emulator.account.alias}.onaliyun.com"
        cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", principal)
    cloud.rm.page_size = 2
    found = cloud.rm.list_policy_attachments(resource_group_id=group_id)
    assert sorted(a.principal_name.partition("@")[0] for a in found) == names
    assert len(calls("ListPolicyAttachments")) == 3
