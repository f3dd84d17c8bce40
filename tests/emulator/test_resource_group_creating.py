"""A new resource group answers `Creating` (also per region) until it turns `OK` on its own, and
refuses grants meanwhile — through the official Python SDK over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alibabacloud_resourcemanager20200331 import models as rm_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.emulator.core import Emulator
from local.emulator.resourcemanager.models import DEFAULT_READY_SECONDS
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS
from shared.cloud.clients import CloudClients
from shared.config import Settings

READY = 30.0


@pytest.fixture
def slow() -> Iterator[tuple[Emulator, CloudClients]]:
    with EmulatorServer(Emulator(resource_group_ready_seconds=READY)) as server:
        yield server.emulator, CloudClients(Settings(cloud_endpoint=server.endpoint), ROOT_CREDENTIALS)


def create(rm: object, name: str) -> rm_models.CreateResourceGroupResponseBodyResourceGroup:
    request = rm_models.CreateResourceGroupRequest(name=name, display_name=name)
    return rm.create_resource_group(request).body.resource_group  # type: ignore[attr-defined]


def get(clients: CloudClients, group_id: str) -> rm_models.GetResourceGroupResponseBodyResourceGroup:
    request = rm_models.GetResourceGroupRequest(resource_group_id=group_id)
    return clients.resource_manager.get_resource_group(request).body.resource_group


def statuses(group: object) -> set[str]:
    return {r.status for r in group.region_statuses.region_status}  # type: ignore[attr-defined]


def test_a_new_group_is_creating_then_ok(slow: tuple[Emulator, CloudClients]) -> None:
    emulator, clients = slow
    created = create(clients.resource_manager, "orders")
    assert created.status == "Creating" and statuses(created) == {"Creating"}

    emulator.advance(READY - 1)
    assert get(clients, created.id).status == "Creating"
    listed = clients.resource_manager.list_resource_groups(
        rm_models.ListResourceGroupsRequest(status="Creating")
    ).body.resource_groups.resource_group
    assert [g.id for g in listed] == [created.id]

    emulator.advance(1)
    group = get(clients, created.id)
    assert group.status == "OK" and statuses(group) == {"OK"}


def test_a_creating_group_takes_no_grant_and_cannot_be_deleted_yet(
    slow: tuple[Emulator, CloudClients],
) -> None:
    emulator, clients = slow
    group = create(clients.resource_manager, "orders")
    emulator.account.ram.create_user("alice")
    attach = rm_models.AttachPolicyRequest(
        resource_group_id=group.id,
        policy_name="ReadOnlyAccess",
        policy_type="System",
        principal_name=f"alice@{emulator.account.alias}.onaliyun.com",
        principal_type="IMSUser",
    )
    for call in (
        lambda: clients.resource_manager.attach_policy(attach),
        lambda: clients.resource_manager.delete_resource_group(
            rm_models.DeleteResourceGroupRequest(resource_group_id=group.id)
        ),
    ):
        with pytest.raises(ClientException) as info:
            call()
        assert (info.value.code, info.value.status_code) == ("Invalid.ResourceGroup.Status", 409)

    emulator.advance(READY)
    clients.resource_manager.attach_policy(attach)
    assert [a.resource_group_id for a in emulator.account.resource_manager.attachments(scope=group.id)] == [
        group.id
    ]


def test_by_default_a_group_is_creating_for_a_moment() -> None:
    assert DEFAULT_READY_SECONDS > 0
    emulator = Emulator()
    assert emulator.resource_group_ready_seconds == DEFAULT_READY_SECONDS
    with EmulatorServer(emulator) as server:
        clients = CloudClients(Settings(cloud_endpoint=server.endpoint), ROOT_CREDENTIALS)
        assert create(clients.resource_manager, "orders").status == "Creating"


def test_the_test_setting_makes_a_group_ok_at_once(root_clients: CloudClients) -> None:
    group = create(root_clients.resource_manager, "orders")
    assert group.status == "OK" and statuses(group) == {"OK"}
