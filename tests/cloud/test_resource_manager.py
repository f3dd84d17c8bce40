"""ResourceManagerGateway: resource-group-scoped grants."""

from __future__ import annotations

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import Emulator
from shared.cloud import Cloud, CloudRunner, PolicyAttachment
from shared.cloud.clients import CloudClients
from shared.cloud.ratelimit import TokenBucket
from shared.config import Settings
from shared.errors import CloudError, EntityAlreadyExists, EntityNotFound


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


def test_listing_follows_every_page(cloud: Cloud, group_id: str, emulator: Emulator, calls) -> None:
    names = [f"user-{i}" for i in range(5)]
    for name in names:
        cloud.ram.create_user(name)
        principal = f"{name}@{emulator.account.alias}.onaliyun.com"
        cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", principal)
    cloud.rm.page_size = 2
    found = cloud.rm.list_policy_attachments(resource_group_id=group_id)
    assert sorted(a.principal_name.partition("@")[0] for a in found) == names
    assert len(calls("ListPolicyAttachments")) == 3


# --- a group created just before the grant -------------------------------------------------------
def test_a_grant_waits_for_a_group_that_is_still_creating(
    emulator: Emulator, cloud_settings: Settings, root_clients: CloudClients, alice: str
) -> None:
    """The group answers Creating for 2 s; each wait the gateway asks for moves the emulator's clock."""
    emulator.resource_group_ready_seconds = 2.0
    group_id = root_clients.resource_manager.create_resource_group(
        rm_models.CreateResourceGroupRequest(name="fresh", display_name="Fresh")
    ).body.resource_group.id
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        emulator.advance(seconds)

    cloud = Cloud(root_clients, cloud_settings, runner=CloudRunner(TokenBucket(1000.0), sleep=sleep))

    cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)

    assert [a.resource_group_id for a in cloud.rm.list_policy_attachments(principal_name=alice)] == [group_id]
    assert 2.0 <= sum(sleeps) <= 2.0 + 4.0  # waited it out, one backoff step at most beyond
    outcomes = [c.outcome for c in emulator.recorder.calls if c.action == "AttachPolicy"]
    assert outcomes[-1] == "OK" and set(outcomes[:-1]) == {"Invalid.ResourceGroup.Status"}


def test_a_group_that_never_becomes_usable_fails_the_grant_in_bounded_time(
    emulator: Emulator, cloud: Cloud, root_clients: CloudClients, alice: str, sleeps: list[float]
) -> None:
    emulator.resource_group_ready_seconds = 3600.0
    group_id = root_clients.resource_manager.create_resource_group(
        rm_models.CreateResourceGroupRequest(name="stuck", display_name="Stuck")
    ).body.resource_group.id

    with pytest.raises(CloudError) as info:
        cloud.rm.attach_policy(group_id, "AliyunKafkaReadOnlyAccess", "System", alice)

    assert info.value.code == "Invalid.ResourceGroup.Status"
    assert sum(sleeps) <= cloud.rm.ready_wait_seconds
