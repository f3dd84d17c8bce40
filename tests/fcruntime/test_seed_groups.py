"""The seed and resource groups that are still being created: groups it makes in an emulator stand
for groups the account has (OK at once); at another endpoint it waits for a group still Creating."""

from __future__ import annotations

from local.emulator.core import Emulator
from local.emulator.resourcemanager.models import for_account
from local.seed import DevConfig, seed_resource_groups
from shared.cloud.clients import CloudClients


def _create_creating(emulator: Emulator, config: DevConfig, ready_after: float) -> list[str]:
    backend = for_account(emulator.accounts[config.account.id])
    for group_id, group in config.resource_groups.items():
        backend.create_resource_group(
            group.name, group.name, emulator.clock(), group_id=group_id, ready_after=ready_after
        )
    return list(config.resource_groups)


def test_groups_seeded_into_an_emulator_are_ok_at_once(emulator: Emulator) -> None:
    config = DevConfig.load()
    assert config.resource_groups
    emulator.resource_group_ready_seconds = 60.0  # what API-created groups would wait

    assert seed_resource_groups(config, emulator=emulator) == []
    backend = for_account(emulator.accounts[config.account.id])
    assert {backend.resource_groups[g].status for g in config.resource_groups} == {"OK"}


def test_a_group_still_creating_elsewhere_is_waited_for(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    config = DevConfig.load()
    ids = _create_creating(emulator, config, ready_after=5.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        emulator.advance(seconds)

    assert seed_resource_groups(config, root=root_clients, sleep=sleep) == []
    assert 5.0 <= sum(slept) <= 5.0 + 4.0
    backend = for_account(emulator.accounts[config.account.id])
    assert {backend.resource_groups[g].status for g in ids} == {"OK"}


def test_a_group_that_stays_creating_is_reported_missing(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    config = DevConfig.load()
    ids = _create_creating(emulator, config, ready_after=3600.0)

    missing = seed_resource_groups(config, root=root_clients, ready_wait_seconds=2.0, sleep=emulator.advance)

    assert missing == ids
