"""`user.offboarded` end to end through the official SDK against the emulator on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.flows.offboard import offboard_event
from shared.models.events import UserOffboarded
from tests.flows.test_offboard_world import SYSTEM_POLICY, TEMPLATE, World, make_world, offboarded

OWNER = "alice@example.com"


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


def rich_user(world: World, name: str = "alice.kafka", owner: str = OWNER) -> dict[str, object]:
    """2 keys (one by hand), a login profile, a bound MFA device, 3 groups, system + custom policies
    at account scope (ramflow's and hand-made) and a resource-group grant."""
    rg = world.resource_group(f"rg-of-{name}".replace(".", "-"))
    world.provision(
        name,
        owner,
        grants=[
            {"policy": SYSTEM_POLICY, "type": "System"},
            TEMPLATE,
            {"policy": SYSTEM_POLICY, "type": "System", "resource_group": rg},
        ],
    )
    world.add_key(name)
    world.add_login_profile(name)
    serial = world.bind_mfa(name)
    for group in ("kafka-admins", "oncall", "everyone"):
        world.add_to_group(name, group)
    world.attach(name, "ReadOnlyAccess")
    hand_made = f"hand-made-{name.replace('.', '-')}"
    if hand_made not in world.custom_policies():
        world.custom_policy(hand_made)
    world.attach(name, hand_made, "Custom")
    held = world.holds(name)
    assert held is not None and len(held["keys"]) == 2 and held["login_profile"] and held["mfa"]
    assert len(held["groups"]) == 3 and len(held["policies"]) == 5
    return {"rg": rg, "serial": serial, "hand_made": hand_made}


def ramflow_policies(world: World) -> set[str]:
    return {p for p in world.custom_policies() if p.startswith("ramflow-")}


def test_a_rich_user_is_fully_deleted_and_unmanaged_users_are_untouched(world: World) -> None:
    facts = rich_user(world)
    assert len(ramflow_policies(world)) == 1
    world.unmanaged_user("alice.byhand", OWNER)  # carries the owner tag, not managed-by
    world.add_key("alice.byhand")
    before = world.holds("alice.byhand")

    rt = world.runtime()
    result = offboard_event(UserOffboarded(owner=OWNER, hr_event_id="WD-1"), offboarded(owner=OWNER), rt)

    assert result.status == "completed", result.errors
    assert world.holds("alice.kafka") is None
    assert facts["serial"] not in world.ram.mfa_devices
    assert ramflow_policies(world) == set()  # ramflow's custom policy, now unused, is deleted
    assert facts["hand_made"] in world.custom_policies()  # someone else's policy: detached, kept
    assert world.holds("alice.byhand") == before
    assert result.needs_human == [
        {"subject": "alice.byhand", "reason": "not tagged managed-by=ramflow: ramflow never changes it"}
    ]
    record = rt.store.ledger.get_user("alice.kafka")
    assert record is not None and record.status == "deleted" and record.credential is None
    assert all(g.status == "revoked" for g in rt.store.ledger.grants_of_user("alice.kafka"))
    assert rt.store.ledger.due_deletions(world.clock() + timedelta(days=365)) == []
