"""`access.revoked` through the official SDK against the emulator: exactly one ticket's grants go."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ram20150501 import models as ram_models

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.errors import FlowFailed
from shared.flows.reconcile import reconcile
from shared.flows.revoke import UNMANAGED, revoke, revoke_event
from shared.handler import process_event
from shared.models.events import ACCESS_REVOKED, AccessRevoked
from shared.store import StateStore
from shared.store.records import TicketRecord
from tests.flows.conftest import sample
from tests.flows.test_offboard_world import SYSTEM_POLICY, TEMPLATE, World, make_world, revoked
from tests.flows.test_provision import approval, policies_of

OWNER = "bob@example.com"


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


def two_tickets(world: World, mode: str = "programmatic") -> tuple[str, str, str]:
    """T1: a system policy at account scope, ramflow's custom policy, a resource-group grant.
    T2 (same user): the same custom policy, and a system policy of its own."""
    rg = world.resource_group()
    world.provision(
        "bob.kafka",
        OWNER,
        ticket="T-1",
        mode=mode,
        grants=[
            {"policy": SYSTEM_POLICY, "type": "System"},
            TEMPLATE,
            {"policy": SYSTEM_POLICY, "type": "System", "resource_group": rg},
        ],
    )
    world.provision(
        "bob.kafka",
        OWNER,
        ticket="T-2",
        mode=mode,
        grants=[TEMPLATE, {"policy": "AliyunKafkaFullAccess", "type": "System"}],
    )
    return "T-1", "T-2", rg


def ramflow_policy(world: World) -> str:
    (name,) = [p for p in world.custom_policies() if p.startswith("ramflow-")]
    return name


def run(world: World, ticket: str):
    return revoke_event(
        AccessRevoked(ticket_id=ticket, reason="moved team"), revoked(ticket), world.runtime()
    )


def test_only_that_tickets_grants_go_and_access_stays_while_another_ticket_grants(world: World) -> None:
    first, second, rg = two_tickets(world)
    custom = ramflow_policy(world)

    result = run(world, first)

    assert result.status == "completed", result.errors
    held = world.holds("bob.kafka")
    assert held is not None
    assert held["policies"] == [f"Custom:{custom}@account", "System:AliyunKafkaFullAccess@account"]
    assert set(held["keys"].values()) == {"Active"}  # T-2 still grants: access stays
    assert custom in world.custom_policies()
    ledger = world.runtime().store.ledger
    t1, t2 = ledger.get_ticket(first), ledger.get_ticket(second)
    assert t1 is not None and t1.status == "revoked" and {g.status for g in t1.grants} == {"revoked"}
    assert t2 is not None and t2.status == "completed" and {g.status for g in t2.grants} == {"active"}
    assert {a["action"] for a in result.actions} == {"DetachPolicyFromUser", "DetachPolicy"}
    assert rg in {a["target"].rpartition("@")[2] for a in result.actions}


def test_the_last_ticket_going_disables_access_and_deletes_the_unused_custom_policy(world: World) -> None:
    first, second, _ = two_tickets(world)
    custom = ramflow_policy(world)
    world.add_key("bob.kafka")  # a second key, made by hand: disabled too

    assert run(world, first).status == "completed"
    result = run(world, second)

    assert result.status == "completed", result.errors
    held = world.holds("bob.kafka")
    assert held is not None and held["policies"] == []
    assert set(held["keys"].values()) == {"Inactive"}
    assert custom not in world.custom_policies()
    record = world.runtime().store.ledger.get_user("bob.kafka")
    assert record is not None and record.status == "disabled"


def test_a_console_user_left_without_grants_loses_its_login_profile(world: World) -> None:
    world.provision("carl.console", "carl@example.com", ticket="T-C", mode="console")
    assert world.holds("carl.console")["login_profile"] is True
    assert run(world, "T-C").status == "completed"
    held = world.holds("carl.console")
    assert held is not None and held["login_profile"] is False and held["policies"] == []


def test_a_custom_policy_another_user_holds_is_kept(world: World) -> None:
    world.provision("u.one", "one@example.com", ticket="T-A", grants=[TEMPLATE])
    world.provision("u.two", "two@example.com", ticket="T-B", grants=[TEMPLATE])
    custom = ramflow_policy(world)
    assert run(world, "T-A").status == "completed"
    assert custom in world.custom_policies()
    assert world.holds("u.two")["policies"] == [f"Custom:{custom}@account"]
    assert run(world, "T-B").status == "completed"
    assert custom not in world.custom_policies()


def test_an_unknown_ticket_is_kept_without_a_cloud_call(world: World) -> None:
    seq = world.emulator.recorder.last_seq
    result = run(world, "T-NOPE")
    assert result.status == "pending_request" and result.ticket_id == "T-NOPE"
    assert world.emulator.recorder.since(seq) == []
    kept = world.runtime().store.ledger.get_early_revocation("T-NOPE")
    assert kept is not None and kept.revocation["reason"] == "moved team"


@pytest.mark.parametrize("max_attempts", [1])
def test_a_failure_after_any_cloud_call_is_finished_by_a_replay(world: World, max_attempts: int) -> None:
    flows = {ACCESS_REVOKED: revoke}
    hits = 0
    for n in range(1, 100):
        name, rg = f"bob{n}", world.resource_group(f"rg{n}")
        world.provision(
            name,
            OWNER,
            ticket=f"T-{n}",
            grants=[
                {"policy": SYSTEM_POLICY, "type": "System"},
                TEMPLATE,
                {"policy": SYSTEM_POLICY, "type": "System", "resource_group": rg},
            ],
        )
        event = revoked(f"T-{n}")
        first, fired = world.process_with_crash(n, event, flows, world.runtime(max_attempts=max_attempts))
        if not fired:
            assert first.status == "completed"
            break
        hits += 1
        replay = process_event(event, flows, world.runtime(), owner="b", lease_until=2e9)
        assert replay.status == "completed" and replay.errors == [], (n, replay.errors)
        held = world.holds(name)
        assert held is not None and held["policies"] == [] and set(held["keys"].values()) == {"Inactive"}, n
        assert [p for p in world.custom_policies() if p.startswith("ramflow-")] == [], n
    assert hits >= 6


def test_the_handler_replays_a_delivered_event_from_its_record(function_env, call, emulator) -> None:
    requested = sample(
        "user-requested-programmatic.json", grants=[{"policy": SYSTEM_POLICY, "type": "System"}]
    )
    assert call("user-requested", requested)["status"] == "completed"
    ticket = requested["data"]["ticket_id"]
    event = sample("access-revoked.json", ticket_id=ticket)
    reply = call("access-revoked", event)
    assert reply["status"] == "completed" and reply["ticket_id"] == ticket
    seq = emulator.recorder.last_seq
    assert call("access-revoked", json.loads(json.dumps(event))) == reply
    assert emulator.recorder.since(seq) == []  # the duplicate was answered from the record


def test_revoking_a_ticket_never_approved_only_closes_it(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    """A ticket still waiting for approval attached nothing: revoking it changes nothing in RAM, even
    for a hand-made user of that name holding the same policy by hand."""
    _, public = delivery_keys
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="bob"))
    root_clients.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            user_name="bob", policy_name="ReadOnlyAccess", policy_type="System"
        )
    )
    requested = sample(
        "user-requested-programmatic.json",
        ticket_id="ITSM-9",
        delivery_public_key=public,
        grants=[{"policy": "ReadOnlyAccess", "type": "System"}],
    )
    requested["data"]["user"]["logon_name"] = "bob"
    assert call("user-requested", requested)["status"] == "pending_approval"
    seq = emulator.recorder.last_seq

    reply = call("access-revoked", sample("access-revoked.json", ticket_id="ITSM-9"))

    assert reply["status"] == "completed" and reply["actions"] == [] and reply["errors"] == []
    assert emulator.recorder.since(seq) == []
    assert policies_of(root_clients, "bob") == {("ReadOnlyAccess", "System")}
    ticket = StateStore.from_url(f"sqlite:///{function_env}/state.db").ledger.get_ticket("ITSM-9")
    assert (
        ticket is not None and ticket.status == "revoked" and {g.status for g in ticket.grants} == {"revoked"}
    )
    late = call("access-approved", approval("ITSM-9"))
    assert late["status"] == "rejected" and late["errors"][0]["reason"] == "the ticket is revoked"
    assert policies_of(root_clients, "bob") == {("ReadOnlyAccess", "System")}


def test_a_user_no_longer_tagged_managed_is_not_changed_and_is_reported(world: World) -> None:
    world.provision("bob.kafka", OWNER, ticket="T-1")
    world.ram.users["bob.kafka"].tags.pop("managed-by")  # someone took it over by hand
    before = world.holds("bob.kafka")
    seq = world.emulator.recorder.last_seq

    result = run(world, "T-1")

    assert result.status == "completed" and result.actions == [] and result.errors == []
    assert result.needs_human == [{"subject": "bob.kafka", "reason": UNMANAGED}]
    assert world.holds("bob.kafka") == before
    assert all(c.action.startswith(("Get", "List")) for c in world.emulator.recorder.since(seq))
    ticket = world.runtime().store.ledger.get_ticket("T-1")
    assert (
        ticket is not None
        and ticket.status == "completed"
        and {g.status for g in ticket.grants} == {"active"}
    )


def test_an_approved_ticket_whose_provisioning_stopped_part_way_loses_what_it_attached(world: World) -> None:
    """Approved but not finished (the grants still `planned`): some may be attached, so they go."""
    world.provision("bob.kafka", OWNER, ticket="T-1", grants=[{"policy": SYSTEM_POLICY, "type": "System"}])

    def unfinished(ticket: TicketRecord) -> None:
        ticket.status = "approved"
        for grant in ticket.grants:
            grant.status = "planned"

    world.runtime().store.ledger.update_ticket("T-1", unfinished)

    result = run(world, "T-1")

    assert result.status == "completed", result.errors
    held = world.holds("bob.kafka")
    assert held is not None and held["policies"] == [] and set(held["keys"].values()) == {"Inactive"}
    ticket = world.runtime().store.ledger.get_ticket("T-1")
    assert ticket is not None and ticket.status == "revoked"


def test_a_republished_event_gets_the_stored_reply_and_a_changed_one_is_refused(
    function_env, call, emulator
) -> None:
    """Same source and id: a new `time` and transport extensions are a republish of the same event;
    different `data` is another event reusing the id."""
    requested = sample(
        "user-requested-programmatic.json", grants=[{"policy": SYSTEM_POLICY, "type": "System"}]
    )
    assert call("user-requested", requested)["status"] == "completed"
    event = sample("access-revoked.json", ticket_id=requested["data"]["ticket_id"])
    reply = call("access-revoked", event)
    assert reply["status"] == "completed"
    seq = emulator.recorder.last_seq

    republished = {**event, "time": "2025-03-20T16:35:00Z", "aliyunpublishtime": "2025-03-20T16:35:00.417Z"}
    assert call("access-revoked", republished) == reply
    changed = {**event, "data": {**event["data"], "reason": "left the company"}}
    refused = call("access-revoked", changed)

    assert refused["status"] == "rejected"
    assert refused["errors"] == [
        {"field": "id", "reason": "this event id was already used with a different payload"}
    ]
    assert emulator.recorder.since(seq) == []


def test_a_revocation_whose_disabling_failed_disables_the_user_when_delivered_again(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings
) -> None:
    """The first delivery detaches the grants (and records them revoked) but the key's deactivation
    fails; the redelivery finds no grant left to detach and must still take the user's access away."""
    world = make_world(emulator, root_clients, cloud_settings, max_attempts=1)
    world.provision("dan.kafka", OWNER, ticket="T-9", grants=[{"policy": SYSTEM_POLICY, "type": "System"}])
    emulator.faults.fail_nth_call(1, when="before", actions={"UpdateAccessKey"})

    first = run(world, "T-9")
    assert first.status == "partial"
    second = run(world, "T-9")

    assert second.status == "completed", second.errors
    held = world.holds("dan.kafka")
    assert held is not None and held["policies"] == [] and set(held["keys"].values()) == {"Inactive"}
    ledger = world.runtime().store.ledger
    user, ticket = ledger.get_user("dan.kafka"), ledger.get_ticket("T-9")
    assert user is not None and user.status == "disabled"
    assert ticket is not None and ticket.status == "revoked"


def test_revoking_a_ticket_whose_user_was_never_created_leaves_no_user_in_the_ledger(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings
) -> None:
    """The approval records the user before CreateUser; when CreateUser fails and the ticket is then
    revoked, the approval never runs again: the ledger must not keep a user RAM has never had (it
    would be reported missing by every reconcile, and its key checks would fail every pass)."""
    world = make_world(emulator, root_clients, cloud_settings, max_attempts=1)
    emulator.faults.fail_nth_call(1, when="before", actions={"CreateUser"})
    with pytest.raises(FlowFailed):
        world.provision("eve.kafka", OWNER, ticket="T-7")
    ledger = world.runtime().store.ledger
    before = ledger.get_user("eve.kafka")
    assert before is not None and before.status == "active"  # recorded before CreateUser, which failed
    assert world.holds("eve.kafka") is None

    result = run(world, "T-7")

    assert result.status == "completed", result.errors
    user, ticket = ledger.get_user("eve.kafka"), ledger.get_ticket("T-7")
    assert user is not None and user.status == "deleted"
    assert ticket is not None and ticket.status == "revoked"
    report = reconcile(world.runtime(), remediate=False)
    assert report.drift == [] and report.journal.errors == []


def test_a_stale_account_alias_never_makes_an_existing_user_look_gone(world: World) -> None:
    """IMS names users `<user>@<alias>.onaliyun.com`: with a stale alias it answers "no such user"
    for every user. RAM's own GetUser decides; the revocation is retried, nothing is written off."""
    world.provision("fay.kafka", OWNER, ticket="T-5", grants=[{"policy": SYSTEM_POLICY, "type": "System"}])
    before = world.holds("fay.kafka")

    result = revoke_event(
        AccessRevoked(ticket_id="T-5", reason="moved team"),
        revoked("T-5"),
        world.runtime(account_alias="some-old-alias"),
    )

    assert result.status == "partial"
    assert [e.field for e in result.errors] == ["fay.kafka:ListTagResources"]
    assert "account alias" in result.errors[0].reason
    assert world.holds("fay.kafka") == before
    ledger = world.runtime().store.ledger
    user, ticket = ledger.get_user("fay.kafka"), ledger.get_ticket("T-5")
    assert user is not None and user.status == "active" and user.credential is not None
    assert ticket is not None and ticket.status == "completed"
    assert {g.status for g in ticket.grants} == {"active"}
    assert run(world, "T-5").status == "completed"  # with the right alias, the replay revokes


def test_a_revocation_before_its_request_is_kept_and_the_ticket_is_born_revoked(world: World) -> None:
    """Deliveries are not ordered (a request parked in the failed-events queue is replayed after the
    revocation that followed it): the revocation is kept, not dropped, and the request, when it
    comes, records its ticket revoked, so no approval, early or late, creates the user."""
    from shared.flows.provision import approve, request
    from shared.models.events import ACCESS_APPROVED, USER_REQUESTED, AccessApproved, UserRequested
    from tests.flows.test_offboard_world import APPROVER, REQUESTER, event

    early = run(world, "T-8")
    assert early.status == "pending_request", early

    rt = world.runtime()
    approved = AccessApproved(ticket_id="T-8", approvers=[APPROVER])
    kept = approve(approved, event(ACCESS_APPROVED, approved.model_dump(mode="json")), rt)
    assert kept.status == "pending_request", kept
    data = UserRequested.model_validate(
        {
            "ticket_id": "T-8",
            "requester": REQUESTER,
            "user": {"logon_name": "fay.kafka", "owner": OWNER, "email": OWNER},
            "access_mode": "programmatic",
            "grants": [{"policy": SYSTEM_POLICY, "type": "System"}],
            "justification": "tests",
            "delivery_public_key": world.public_key,
        }
    )
    requested = request(data, event(USER_REQUESTED, data.model_dump(mode="json")), rt)
    late = approve(approved, event(ACCESS_APPROVED, approved.model_dump(mode="json")), rt)

    assert requested.status == "rejected", requested
    assert late.status == "rejected", late
    assert world.holds("fay.kafka") is None
    ticket = rt.store.ledger.get_ticket("T-8")
    assert ticket is not None and ticket.status == "revoked"
    assert {g.status for g in ticket.grants} == {"revoked"}
    assert rt.store.ledger.get_user("fay.kafka") is None


def test_a_revocation_deletes_the_key_an_approval_created_but_never_recorded(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings
) -> None:
    """CreateAccessKey took effect but its reply was lost; the ticket is revoked before the approval
    is delivered again, so that approval (refused) never deletes the unrecorded key: the revocation
    must, or an orphan key and a `started` intent (which hides it from reconcile) stay for good."""
    world = make_world(emulator, root_clients, cloud_settings, max_attempts=1)
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})
    with pytest.raises(FlowFailed):
        world.provision("hal.kafka", OWNER, ticket="T-6")
    assert len(world.ram.users["hal.kafka"].access_keys) == 1  # created, never recorded

    result = run(world, "T-6")

    assert result.status == "completed", result.errors
    held = world.holds("hal.kafka")
    assert held is not None and held["keys"] == {} and held["policies"] == []
    ledger = world.runtime().store.ledger
    assert ledger.get_intent("access_key/hal.kafka") is None
    report = reconcile(world.runtime(), dry_run=True)
    assert report.drift == [] and report.journal.errors == []
