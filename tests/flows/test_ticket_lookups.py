"""Revoke, offboard and reconcile find a user's tickets through the ledger's indexes: they never read
every ticket ever recorded, and still find the tickets waiting for approval."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.flows.offboard import offboard_event
from shared.flows.provision import approve, request
from shared.flows.reconcile import reconcile
from shared.flows.revoke import revoke_event
from shared.models.events import (
    ACCESS_APPROVED,
    USER_REQUESTED,
    AccessApproved,
    AccessRevoked,
    UserOffboarded,
    UserRequested,
)
from shared.store import KeyValueBackend, StateStore
from shared.store.ledger import TICKETS
from tests.flows.test_offboard_world import (
    APPROVER,
    REQUESTER,
    SYSTEM_POLICY,
    World,
    event,
    make_world,
    offboarded,
    revoked,
)


class Watched:
    """The world's backend, noting every scan and every ticket read."""

    def __init__(self, backend: KeyValueBackend) -> None:
        self.backend = backend
        self.scans: list[str] = []
        self.ticket_reads: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def get(self, key: str) -> Any:
        if key.startswith(TICKETS):
            self.ticket_reads.add(key.removeprefix(TICKETS))
        return self.backend.get(key)

    def scan(self, prefix: str) -> Any:
        self.scans.append(prefix)
        return self.backend.scan(prefix)

    def forget(self) -> None:
        self.scans.clear()
        self.ticket_reads.clear()


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    world = make_world(emulator, root_clients, cloud_settings)
    assert world.store is not None
    world.store = StateStore(Watched(world.store.backend))
    return world


def watched(world: World) -> Watched:
    assert world.store is not None
    return world.store.backend  # type: ignore[return-value]


def pending(world: World, name: str, owner: str, ticket: str) -> None:
    """A ticket recorded and waiting for approval (it is not in the user's record yet)."""
    data = UserRequested.model_validate(
        {
            "ticket_id": ticket,
            "requester": REQUESTER,
            "user": {"logon_name": name, "owner": owner},
            "access_mode": "programmatic",
            "grants": [{"policy": "ReadOnlyAccess", "type": "System"}],
            "delivery_public_key": world.public_key,
        }
    )
    result = request(data, event(USER_REQUESTED, data.model_dump(mode="json")), world.runtime())
    assert result.status == "pending_approval"


def approve_late(world: World, ticket: str) -> Any:
    approval = AccessApproved(ticket_id=ticket, approvers=[APPROVER])
    return approve(approval, event(ACCESS_APPROVED, approval.model_dump(mode="json")), world.runtime())


def test_the_flows_read_only_the_tickets_of_the_users_concerned(world: World) -> None:
    for i in range(4):
        world.provision(f"other.{i}", "o@example.com", ticket=f"T-O{i}")
    world.provision("bob.kafka", "b@example.com", ticket="T-B1", duration="P1D")
    world.provision(
        "bob.kafka",
        "b@example.com",
        ticket="T-B2",
        grants=[{"policy": "AliyunKafkaFullAccess", "type": "System"}],
    )
    pending(world, "bob.kafka", "b@example.com", "T-BP")
    world.provision("carol.kafka", "c@example.com", ticket="T-C1")
    watch = watched(world)
    watch.forget()

    result = revoke_event(
        AccessRevoked(ticket_id="T-B2", reason="moved team"), revoked("T-B2"), world.runtime()
    )

    assert result.status == "completed", result.errors
    assert TICKETS not in watch.scans
    assert watch.ticket_reads == {"T-B1", "T-B2", "T-BP"}
    watch.forget()

    data = UserOffboarded(user_name="carol.kafka", hr_event_id="WD-1")
    result = offboard_event(data, offboarded(user_name="carol.kafka"), world.runtime())

    assert result.status == "completed", result.errors
    assert world.holds("carol.kafka") is None
    assert TICKETS not in watch.scans
    assert watch.ticket_reads == {"T-C1"}
    world.clock.advance(timedelta(days=2))
    watch.forget()

    report = reconcile(world.runtime()).result()

    assert report.status == "completed", report.errors
    ledger = world.runtime().store.ledger
    assert report.plan["expired_grants"] == [g.grant_id for g in ledger.get_ticket("T-B1").grants]
    assert ledger.get_ticket("T-B1").status == "revoked"
    assert report.plan["drift"] == []
    assert TICKETS not in watch.scans
    assert "T-C1" not in watch.ticket_reads, "a deleted user's history is not read"


def test_revoking_a_pending_ticket_of_a_provisioned_user_closes_it_and_leaves_the_rest(world: World) -> None:
    world.provision("bob.kafka", "b@example.com", ticket="T-1")
    pending(world, "bob.kafka", "b@example.com", "T-P")
    ledger = world.runtime().store.ledger
    assert ledger.get_user("bob.kafka").tickets == ["T-1"]
    before = world.holds("bob.kafka")

    result = revoke_event(AccessRevoked(ticket_id="T-P", reason="withdrawn"), revoked("T-P"), world.runtime())

    assert result.status == "completed" and result.actions == [], result.errors
    assert world.holds("bob.kafka") == before
    closed, kept = ledger.get_ticket("T-P"), ledger.get_ticket("T-1")
    assert closed is not None and closed.status == "revoked"
    assert {g.status for g in closed.grants} == {"revoked"}
    assert kept is not None and kept.status == "completed" and {g.status for g in kept.grants} == {"active"}


def test_offboarding_closes_the_leavers_tickets_still_waiting_for_approval(world: World) -> None:
    world.provision(
        "alice.kafka", "a@example.com", ticket="T-1", grants=[{"policy": SYSTEM_POLICY, "type": "System"}]
    )
    pending(world, "alice.kafka", "a@example.com", "T-P")
    ledger = world.runtime().store.ledger
    assert ledger.get_user("alice.kafka").tickets == ["T-1"]

    data = UserOffboarded(owner="a@example.com", hr_event_id="WD-2")
    result = offboard_event(data, offboarded(owner="a@example.com"), world.runtime())

    assert result.status == "completed", result.errors
    assert world.holds("alice.kafka") is None
    closed = ledger.get_ticket("T-P")
    assert closed is not None and closed.status == "revoked"
    assert {g.status for g in closed.grants} == {"revoked"}
    late = approve_late(world, "T-P")
    assert late.status == "rejected" and late.errors[0].reason == "the ticket is revoked"
    assert world.holds("alice.kafka") is None, "the leaver is not made again"
