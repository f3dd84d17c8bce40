"""Events about one person that arrive together: the reproductions of issue-level bugs, each a test.

The first two go black box, as the ticket system and the HR system would: signed webhooks to a
`ramflow serve` process whose cloud is an emulator with 120 ms of latency per call. The revoke /
approve races are forced in-process at the exact point where one flow used to read before it locked.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.testing import serve_process
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.flows import provision, revoke
from shared.flows.provision import approve, request
from shared.flows.revoke import revoke_event
from shared.handler import FlowFailed, process_event
from shared.models.events import ACCESS_APPROVED, USER_REQUESTED, AccessApproved, AccessRevoked, UserRequested
from shared.sealing import generate_keypair
from tests.flows.test_offboard_world import (
    APPROVER,
    REQUESTER,
    SYSTEM_POLICY,
    World,
    event,
    make_world,
)
from tests.webhooks.conftest import NEW_SECRET, encode, sign

OWNER = "alice@example.com"


# --- black box: signed webhooks to `ramflow serve` --------------------------------------------------
class Sender:
    """A webhook sender: signs each delivery, and redelivers (same webhook-id) on any non-2xx."""

    def __init__(self, url: str) -> None:
        self.url = url

    def deliver(self, event: dict[str, Any], webhook_id: str | None = None) -> requests.Response:
        body = encode(event)
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        headers = {**sign(NEW_SECRET, webhook_id, body), "Content-Type": "application/cloudevents+json"}
        return requests.post(self.url, data=body, headers=headers, timeout=60)

    def until_final(self, event: dict[str, Any], attempts: int = 40) -> requests.Response:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        for _ in range(attempts):
            reply = self.deliver(event, webhook_id)
            if reply.status_code < 500 and reply.status_code != 409:
                return reply
            assert reply.headers.get("Retry-After"), f"a retryable answer says when to retry: {reply.text}"
            time.sleep(0.2)
        raise AssertionError(f"never final: {reply.status_code} {reply.text}")


@pytest.fixture
def slow_cloud() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator(latency_ms=120)) as server:
        yield server


@pytest.fixture
def sender(slow_cloud: EmulatorServer, tmp_path) -> Iterator[Sender]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RAMFLOW_")}
    environment |= {
        "RAMFLOW_WEBHOOK_SECRET": NEW_SECRET,
        "RAMFLOW_STORE": f"sqlite:///{tmp_path}/state.db",
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
    }
    with serve_process("--cloud", slow_cloud.endpoint, "--seed", env=environment) as served:
        yield Sender(f"{served.endpoint}/webhook-ingress/")


def user_requested(public_key: str, ticket: str, user: str) -> dict[str, Any]:
    return envelope(
        USER_REQUESTED,
        {
            "ticket_id": ticket,
            "requester": REQUESTER,
            "user": {"logon_name": user, "owner": OWNER, "email": OWNER},
            "access_mode": "programmatic",
            "grants": [{"policy": "AliyunKafkaFullAccess", "type": "System"}],
            "justification": "on-call",
            "delivery_public_key": public_key,
        },
        source="itsm.example.com",
    )


def envelope(event_type: str, data: dict[str, Any], source: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "type": event_type, "data": data}


def approved(ticket: str) -> dict[str, Any]:
    return envelope(ACCESS_APPROVED, {"ticket_id": ticket, "approvers": [APPROVER]}, "itsm.example.com")


def offboarded() -> dict[str, Any]:
    return envelope("ramflow.user.offboarded", {"owner": OWNER, "hr_event_id": "WD-778"}, "hr.example.com")


def enabled_access(emulator: Emulator, user: str) -> dict[str, Any]:
    """What the user could still use: active keys and attached policies (empty when gone)."""
    found = emulator.account.ram.users.get(user)
    if found is None:
        return {}
    held = {
        "keys": sorted(k for k, v in found.access_keys.items() if v.status == "Active"),
        "policies": sorted(a.policy_name for a in found.policies.values()),
        "login_profile": found.login_profile is not None,
    }
    return {k: v for k, v in held.items() if v}


@pytest.mark.slow
def test_a_leavers_pending_ticket_is_refused_after_the_offboarding(
    sender: Sender, slow_cloud: EmulatorServer
) -> None:
    _, public = generate_keypair()
    pending = sender.until_final(user_requested(public, "ITSM-7001", "alice.late"))
    assert pending.json()["status"] == "pending_approval", pending.text
    assert sender.until_final(offboarded()).json()["status"] == "completed"

    reply = sender.until_final(approved("ITSM-7001"))

    assert reply.status_code == 400, reply.text
    assert reply.json()["status"] == "rejected"
    assert "alice.late" not in slow_cloud.emulator.account.ram.users
    # and the leaver is a fact: a new request for them is refused too, with no user created
    again = sender.until_final(user_requested(public, "ITSM-7002", "alice.again"))
    assert again.status_code == 400 and "left" in again.text
    assert "alice.again" not in slow_cloud.emulator.account.ram.users


@pytest.mark.slow
def test_offboarding_racing_an_approval_leaves_the_leaver_nothing(
    sender: Sender, slow_cloud: EmulatorServer
) -> None:
    _, public = generate_keypair()
    assert sender.until_final(user_requested(public, "ITSM-7003", "alice.race")).status_code == 202
    replies: dict[str, requests.Response] = {}

    def send(name: str, event: dict[str, Any]) -> None:
        replies[name] = sender.until_final(event)

    threads = [
        threading.Thread(target=send, args=("approve", approved("ITSM-7003"))),
        threading.Thread(target=send, args=("offboard", offboarded())),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert replies["offboard"].json()["status"] == "completed", replies["offboard"].text
    assert enabled_access(slow_cloud.emulator, "alice.race") == {}
    approval = replies["approve"].json()
    if approval["status"] == "completed":  # the approval ran first: the offboarding found its user
        assert "alice.race" in replies["offboard"].text
    else:
        assert approval["status"] == "rejected"


# --- in-process, with the order forced --------------------------------------------------------------
@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


def pending_ticket(world: World, ticket: str, user: str) -> None:
    data = UserRequested.model_validate(
        {
            "ticket_id": ticket,
            "requester": REQUESTER,
            "user": {"logon_name": user, "owner": OWNER, "email": OWNER},
            "access_mode": "programmatic",
            "grants": [
                {"policy": SYSTEM_POLICY, "type": "System"},
                {"policy": "AliyunKafkaFullAccess", "type": "System"},
            ],
            "justification": "tests",
            "delivery_public_key": world.public_key,
        }
    )
    result = request(data, event(USER_REQUESTED, data.model_dump(mode="json")), world.runtime())
    assert result.status == "pending_approval", result


def run_approval(world: World, ticket: str) -> Any:
    data = AccessApproved(ticket_id=ticket, approvers=[APPROVER])
    try:
        return process_event(
            event(ACCESS_APPROVED, data.model_dump(mode="json")),
            {ACCESS_APPROVED: approve},
            world.runtime(),
            owner=uuid.uuid4().hex,
            lease_until=time.time() + 60,
        )
    except FlowFailed as failed:
        return failed.result


def run_revoke(world: World, ticket: str) -> Any:
    data = AccessRevoked(ticket_id=ticket, reason="moved team")
    return revoke_event(data, event("ramflow.access.revoked", data.model_dump(mode="json")), world.runtime())


def before_lock(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, hook: Any) -> None:
    """Run `hook` once, when `module` is about to take a user lock (after its first reads)."""
    original = getattr(module, name)
    fired: list[bool] = []

    def locking(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            hook()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, locking)


def test_a_revoke_landing_before_the_approvals_lock_wins(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending_ticket(world, "T-R1", "bob.race")
    revoked: list[Any] = []
    before_lock(monkeypatch, provision, "user_locks", lambda: revoked.append(run_revoke(world, "T-R1")))

    result = run_approval(world, "T-R1")

    assert revoked and revoked[0].status == "completed"
    assert result.status == "rejected", result
    assert world.holds("bob.race") is None, "a revoked ticket created a user"
    ticket = world.runtime().store.ledger.get_ticket("T-R1")
    assert ticket is not None and ticket.status == "revoked"


def test_an_approval_finishing_before_the_revokes_lock_is_revoked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending_ticket(world, "T-R2", "carl.race")
    approvals: list[Any] = []
    before_lock(monkeypatch, revoke, "user_locks", lambda: approvals.append(run_approval(world, "T-R2")))

    result = run_revoke(world, "T-R2")

    assert approvals and approvals[0].status == "completed"
    assert result.status == "completed", result
    held = world.holds("carl.race")
    assert held is not None
    assert held["policies"] == [], "the revoked ticket's grants are still attached"
    assert set(held["keys"].values()) == {"Inactive"}
    assert not held["login_profile"]
    ticket = world.runtime().store.ledger.get_ticket("T-R2")
    assert ticket is not None and ticket.status == "revoked"
    assert {g.status for g in ticket.grants} == {"revoked"}
    # a second revoke changes nothing and still answers completed
    assert run_revoke(world, "T-R2").status == "completed"
    assert world.holds("carl.race") == held


def test_an_approval_before_its_request_is_kept_and_applied(world: World) -> None:
    early = run_approval(world, "T-E1")
    assert early.status == "pending_request", early
    assert world.holds("erin.early") is None

    data = UserRequested.model_validate(
        {
            "ticket_id": "T-E1",
            "requester": REQUESTER,
            "user": {"logon_name": "erin.early", "owner": OWNER, "email": OWNER},
            "access_mode": "programmatic",
            "grants": [{"policy": "AliyunKafkaFullAccess", "type": "System"}],
            "justification": "tests",
            "delivery_public_key": world.public_key,
        }
    )
    result = request(data, event(USER_REQUESTED, data.model_dump(mode="json")), world.runtime())

    assert result.status == "completed", result
    assert result.credential is not None
    held = world.holds("erin.early")
    assert held is not None and held["policies"] == ["System:AliyunKafkaFullAccess@account"]
    assert world.runtime().store.ledger.get_early_approval("T-E1") is None


def test_an_early_approval_still_meets_every_check(world: World) -> None:
    """The requester approving their own ticket early is refused when the request arrives."""
    data = AccessApproved(ticket_id="T-E2", approvers=[REQUESTER])
    reply = process_event(
        event(ACCESS_APPROVED, data.model_dump(mode="json")),
        {ACCESS_APPROVED: approve},
        world.runtime(),
        owner="x",
        lease_until=time.time() + 60,
    )
    assert reply.status == "pending_request"
    request_data = UserRequested.model_validate(
        {
            "ticket_id": "T-E2",
            "requester": REQUESTER,
            "user": {"logon_name": "eve.early", "owner": OWNER, "email": OWNER},
            "access_mode": "programmatic",
            "grants": [{"policy": "AliyunKafkaFullAccess", "type": "System"}],
            "justification": "tests",
            "delivery_public_key": world.public_key,
        }
    )
    result = request(
        request_data, event(USER_REQUESTED, request_data.model_dump(mode="json")), world.runtime()
    )
    assert result.status == "rejected", result
    assert world.holds("eve.early") is None
    assert json.dumps(result.to_json()).count("approver") >= 1


def test_a_rehire_clears_the_leaver_record_and_only_that(world: World) -> None:
    from shared.flows.offboard import offboard_event, rehire_event
    from shared.models.events import UserOffboarded, UserRehired

    pending_ticket(world, "T-H1", "hal.kafka")
    gone = UserOffboarded(owner=OWNER, hr_event_id="WD-1")
    assert (
        offboard_event(
            gone, event("ramflow.user.offboarded", gone.model_dump(mode="json")), world.runtime()
        ).status
        == "completed"
    )
    ledger = world.runtime().store.ledger
    leaver = ledger.get_leaver(OWNER)
    assert leaver is not None and leaver.hr_event_id == "WD-1"
    closed = ledger.get_ticket("T-H1")
    assert closed is not None and closed.status == "revoked"  # the pending ticket was closed
    assert run_approval(world, "T-H1").status == "rejected"

    back = UserRehired(owner=OWNER.upper(), hr_event_id="WD-2")
    result = rehire_event(back, event("ramflow.user.rehired", back.model_dump(mode="json")), world.runtime())

    assert result.status == "completed"
    assert ledger.get_leaver(OWNER) is None
    assert run_approval(world, "T-H1").status == "rejected", "a ticket closed at leaving stays closed"
    pending_ticket(world, "T-H2", "hal.kafka")  # a new request is accepted again
    assert run_approval(world, "T-H2").status == "completed"
    assert world.holds("hal.kafka") is not None


def test_an_approval_that_finds_no_ticket_and_keeps_itself_after_the_request_is_still_applied(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval reads no ticket; the request is recorded and finds no approval kept; only then
    does the approval keep itself. Neither may answer as if the other had not come: the ticket is
    carried out, and no approval is left kept for a ticket that exists."""
    from shared.store.ledger import Ledger

    requested: list[bool] = []
    original = Ledger.keep_early_approval

    def late(self: Ledger, approval: Any) -> Any:
        if not requested:
            requested.append(True)
            pending_ticket(world, "T-E3", "erin.late")  # recorded; it finds no approval kept
        return original(self, approval)

    monkeypatch.setattr(Ledger, "keep_early_approval", late)

    result = run_approval(world, "T-E3")

    assert requested
    assert result.status == "completed", result
    ledger = world.runtime().store.ledger
    ticket = ledger.get_ticket("T-E3")
    assert ticket is not None and ticket.status == "completed"
    assert ledger.get_early_approval("T-E3") is None
    held = world.holds("erin.late")
    assert held is not None and set(held["policies"]) == {
        f"System:{SYSTEM_POLICY}@account",
        "System:AliyunKafkaFullAccess@account",
    }


def test_a_revocation_that_finds_no_ticket_and_keeps_itself_after_the_request_still_revokes_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation reads no ticket; the request is recorded and finds no revocation kept; only
    then does the revocation keep itself. It must look again: the ticket ends revoked, and a late
    approval is refused."""
    from shared.store.ledger import Ledger

    requested: list[bool] = []
    original = Ledger.keep_early_revocation

    def late(self: Ledger, revocation: Any) -> Any:
        if not requested:
            requested.append(True)
            pending_ticket(world, "T-E4", "rex.late")  # recorded; it finds no revocation kept
        return original(self, revocation)

    monkeypatch.setattr(Ledger, "keep_early_revocation", late)

    result = run_revoke(world, "T-E4")

    assert requested
    assert result.status == "completed", result
    ticket = world.runtime().store.ledger.get_ticket("T-E4")
    assert ticket is not None and ticket.status == "revoked"
    assert run_approval(world, "T-E4").status == "rejected"
    assert world.holds("rex.late") is None


def test_an_approval_after_a_request_that_stopped_before_seeing_the_kept_revocation_is_refused(
    world: World,
) -> None:
    """The request recorded its ticket and stopped before it looked for a kept revocation (its
    redelivery is still to come); the approval arriving first must look for it as well."""
    from shared.store.records import EarlyRevocation

    pending_ticket(world, "T-E5", "ray.late")
    ledger = world.runtime().store.ledger
    ledger.keep_early_revocation(EarlyRevocation(ticket_id="T-E5", revocation={"ticket_id": "T-E5"}))

    result = run_approval(world, "T-E5")

    assert result.status == "rejected", result
    assert world.holds("ray.late") is None
    ticket = ledger.get_ticket("T-E5")
    assert ticket is not None and ticket.status == "revoked"
