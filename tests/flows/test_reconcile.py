"""`reconcile` through the official SDK against the emulator: expiry, drift, remediation, dry run."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.flows.provision import approve, request
from shared.flows.reconcile import reconcile
from shared.flows.revoke import revoke_event
from shared.flows.users import user_locks
from shared.models.events import ACCESS_APPROVED, USER_REQUESTED, AccessApproved, AccessRevoked, UserRequested
from shared.store import StateStore
from tests.flows.test_offboard_world import (
    APPROVER,
    REQUESTER,
    SYSTEM_POLICY,
    TEMPLATE,
    World,
    event,
    make_world,
    revoked,
)

READ_ONLY = ("Get", "List")


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


def kinds(result_plan: dict) -> set[tuple[str, str, str]]:
    return {(d["user_name"], d["kind"], d["target"]) for d in result_plan["drift"]}


def test_a_grant_whose_duration_ended_is_revoked_and_others_stay(world: World) -> None:
    world.provision("short.lived", "s@example.com", ticket="T-S", grants=[TEMPLATE], duration="P1D")
    world.provision("long.lived", "l@example.com", ticket="T-L", duration="P30D")

    world.clock.advance(timedelta(hours=23))
    assert reconcile(world.runtime()).result().plan["expired_grants"] == []

    world.clock.advance(timedelta(hours=2))
    result = reconcile(world.runtime()).result()

    assert result.status == "completed", result.errors
    assert len(result.plan["expired_grants"]) == 1
    short = world.holds("short.lived")
    assert short is not None and short["policies"] == [] and set(short["keys"].values()) == {"Inactive"}
    assert [p for p in world.custom_policies() if p.startswith("ramflow-")] == []
    assert world.holds("long.lived")["policies"] == [f"System:{SYSTEM_POLICY}@account"]
    ledger = world.runtime().store.ledger
    assert ledger.get_ticket("T-S").status == "revoked"
    assert ledger.get_user("short.lived").status == "disabled"
    assert result.plan["drift"] == []
    assert reconcile(world.runtime()).result().plan["expired_grants"] == []  # done once


def test_a_ticket_waiting_for_approval_never_expires_and_its_approval_still_counts(world: World) -> None:
    """Its expiry was computed at request time, but nothing is granted until approval, which computes
    the expiry afresh."""
    world.provision("alice", "a@example.com", ticket="T-A")
    data = UserRequested.model_validate(
        {
            "ticket_id": "T-P",
            "requester": REQUESTER,
            "user": {"logon_name": "alice", "owner": "a@example.com"},
            "access_mode": "programmatic",
            "grants": [{"policy": "ReadOnlyAccess", "type": "System"}],
            "duration": "P1D",
            "delivery_public_key": world.public_key,
        }
    )
    assert request(data, event(USER_REQUESTED, data.model_dump(mode="json")), world.runtime()).status == (
        "pending_approval"
    )
    world.clock.advance(timedelta(days=2))
    seq = world.emulator.recorder.last_seq

    result = reconcile(world.runtime()).result()

    assert result.status == "completed" and result.plan["expired_grants"] == [] and result.actions == []
    assert all(c.action.startswith(READ_ONLY) for c in world.emulator.recorder.since(seq))
    ledger = world.runtime().store.ledger
    assert ledger.get_ticket("T-P").status == "pending_approval"

    approval = AccessApproved(ticket_id="T-P", approvers=[APPROVER])
    approved = approve(approval, event(ACCESS_APPROVED, approval.model_dump(mode="json")), world.runtime())

    assert approved.status == "completed", approved.errors
    assert "System:ReadOnlyAccess@account" in world.holds("alice")["policies"]
    (grant,) = ledger.get_ticket("T-P").grants
    assert grant.status == "active" and grant.expires_at == world.clock() + timedelta(days=1)


def out_of_band(world: World) -> str:
    """A managed programmatic user plus what people added by hand."""
    rg = world.resource_group()
    world.provision("drifty", "d@example.com", ticket="T-D")
    world.attach("drifty", "ReadOnlyAccess")
    world.attach_in_group("drifty", rg, "AliyunKafkaFullAccess")
    key = world.add_key("drifty")
    world.add_to_group("drifty", "admins")
    world.add_login_profile("drifty")
    return rg + "|" + key


def test_drift_is_reported_and_nothing_changes_without_remediation(world: World) -> None:
    rg, key = out_of_band(world).split("|")
    before = world.holds("drifty")
    seq = world.emulator.recorder.last_seq

    result = reconcile(world.runtime()).result()

    assert result.status == "completed"
    assert kinds(result.plan) == {
        ("drifty", "extra_policy", "System:ReadOnlyAccess"),
        ("drifty", "extra_rg_policy", f"System:AliyunKafkaFullAccess@{rg}"),
        ("drifty", "extra_access_key", f"{key} (Active)"),
        ("drifty", "extra_group", "admins"),
        ("drifty", "extra_login_profile", ""),
    }
    assert len(result.needs_human) == 5 and result.actions == []
    assert world.holds("drifty") == before
    assert all(c.action.startswith(READ_ONLY) for c in world.emulator.recorder.since(seq))


def test_drift_is_remediated_when_configured_and_the_ledgers_grants_stay(world: World) -> None:
    _, key = out_of_band(world).split("|")
    result = reconcile(world.runtime(reconcile_remediate=True)).result()

    assert result.status == "completed", result.errors
    assert all(d["remediated"] for d in result.plan["drift"]) and result.needs_human == []
    held = world.holds("drifty")
    assert held is not None
    assert held["policies"] == [f"System:{SYSTEM_POLICY}@account"]
    assert held["groups"] == [] and held["login_profile"] is False
    assert held["keys"][key] == "Inactive" and list(held["keys"].values()).count("Active") == 1
    # an inactive key made by hand is still reported (a person decides to delete it), nothing else
    again = reconcile(world.runtime(reconcile_remediate=True)).result()
    assert kinds(again.plan) == {("drifty", "extra_access_key", f"{key} (Inactive)")}


def test_access_provisioning_restores_while_a_pass_runs_is_not_taken_for_drift(world: World) -> None:
    """A revoked user gets a new ticket while reconcile is listing the managed users: its key comes
    back and a policy is attached. The pass compares under the user's lock with what it reads after
    taking it, so none of that looks like drift, and remediation leaves it alone."""
    world.provision("alice", "a@example.com", ticket="T-1")
    result = revoke_event(
        AccessRevoked(ticket_id="T-1", reason="left the team"), revoked("T-1"), world.runtime()
    )
    assert result.status == "completed", result.errors
    assert set(world.holds("alice")["keys"].values()) == {"Inactive"}
    rt = world.runtime(reconcile_remediate=True)
    list_managed = rt.cloud.ims.users_with_tag

    def provisioning_finishes_meanwhile(key: str, value: str, **options: Any) -> list[str]:
        world.provision("alice", "a@example.com", ticket="T-2")
        return list_managed(key, value, **options)

    rt.cloud.ims.users_with_tag = provisioning_finishes_meanwhile  # type: ignore[method-assign]

    result = reconcile(rt).result()

    assert result.status == "completed", result.errors
    assert result.plan["drift"] == [] and result.actions == []
    held = world.holds("alice")
    assert held is not None and set(held["keys"].values()) == {"Active"}
    assert held["policies"] == [f"System:{SYSTEM_POLICY}@account"]


def test_a_user_another_flow_is_changing_is_left_for_the_next_pass(world: World) -> None:
    _, key = out_of_band(world).split("|")
    world.provision("other", "o@example.com", ticket="T-O")
    world.add_to_group("other", "admins")
    before = world.holds("drifty")
    rt = world.runtime(reconcile_remediate=True)

    with user_locks(world.runtime(), ["drifty"]) as (held, _):
        assert held == ["drifty"]
        result = reconcile(rt).result()

    assert kinds(result.plan) == {("other", "extra_group", "admins")}
    assert [(e.field, e.reason) for e in result.errors] == [
        ("drifty:lock", "another ramflow flow is changing this user; next pass")
    ]
    assert world.holds("drifty") == before
    assert world.holds("other")["groups"] == []
    later = reconcile(world.runtime(reconcile_remediate=True)).result()
    assert ("drifty", "extra_access_key", f"{key} (Active)") in kinds(later.plan) and later.errors == []


def test_missing_grants_untagged_and_unknown_users_are_left_to_a_human(world: World) -> None:
    world.provision("lost.grant", "x@example.com", ticket="T-X")
    world.clients.ram.detach_policy_from_user(
        ram_models.DetachPolicyFromUserRequest(
            user_name="lost.grant", policy_name=SYSTEM_POLICY, policy_type="System"
        )
    )
    world.provision("untagged", "y@example.com", ticket="T-Y")
    world.ram.users["untagged"].tags.pop("managed-by")
    world.unmanaged_user("stranger", "z@example.com")
    world.ram.users["stranger"].tags["managed-by"] = "ramflow"  # tagged by hand, unknown to the ledger
    before = {name: world.holds(name) for name in ("lost.grant", "untagged", "stranger")}

    result = reconcile(world.runtime(reconcile_remediate=True)).result()

    assert kinds(result.plan) == {
        ("lost.grant", "missing_policy", f"System:{SYSTEM_POLICY}"),
        ("untagged", "untagged", "the ledger manages it; RAM lacks managed-by=ramflow"),
        ("stranger", "not_in_ledger", "tagged managed-by=ramflow"),
    }
    assert {h["subject"] for h in result.to_json()["needs_human"]} == {"lost.grant", "untagged", "stranger"}
    assert {name: world.holds(name) for name in before} == before


def test_a_user_deleted_by_hand_is_reported_missing_and_its_key_checks_do_not_fail(world: World) -> None:
    """The drift sweep names the missing user for a human; the key checks have no key to read and
    must not turn every pass into an error."""
    world.provision("gone.by.hand", "g@example.com", ticket="T-G")
    user = world.ram.users["gone.by.hand"]
    user.access_keys.clear()
    user.policies.clear()
    del world.ram.users["gone.by.hand"]

    result = reconcile(world.runtime()).result()

    assert kinds(result.plan) == {("gone.by.hand", "missing_user", "")}
    assert result.errors == []
    assert {h["subject"] for h in result.to_json()["needs_human"]} == {"gone.by.hand"}


def test_a_dry_run_plans_everything_and_calls_only_read_apis(world: World) -> None:
    world.provision("short.lived", "s@example.com", ticket="T-S", grants=[TEMPLATE], duration="P1D")
    out_of_band(world)
    world.provision("leaver", "leaver@example.com", ticket="T-Z")
    ledger = world.runtime().store.ledger
    ledger.schedule_deletion("leaver", world.clock() + timedelta(hours=1))
    world.clock.advance(timedelta(days=2))
    snapshot = {name: world.holds(name) for name in ("short.lived", "drifty", "leaver")}
    tickets = [t.model_dump() for t in ledger.all_tickets()]
    seq = world.emulator.recorder.last_seq

    result = reconcile(world.runtime(reconcile_remediate=True), dry_run=True).result()

    calls = world.emulator.recorder.since(seq)
    assert calls and all(c.action.startswith(READ_ONLY) for c in calls)
    assert {name: world.holds(name) for name in snapshot} == snapshot
    assert [t.model_dump() for t in ledger.all_tickets()] == tickets
    assert result.actions == [] and result.plan["dry_run"] is True
    planned = {(c["subject"], c["action"]) for c in result.plan["calls"]}
    assert ("short.lived", "DetachPolicyFromUser") in planned  # the expired grant
    assert ("leaver", "DeleteUser") in planned  # the deletion that is due
    assert ("drifty", "RemoveUserFromGroup") in planned  # remediation
    assert result.plan["deletions"] == {"leaver": "planned"}


def test_the_timer_handler_reads_fc_timer_payloads_and_never_overlaps(function_env, call, emulator) -> None:
    tick = {"triggerTime": "2026-11-28T02:00:00Z", "triggerName": "hourly", "payload": '{"dry_run": true}'}
    reply = call("reconcile", json.dumps(tick).encode())
    assert reply["status"] == "completed" and reply["plan"]["dry_run"] is True
    assert call("reconcile", b"")["plan"]["dry_run"] is False  # a manual invoke with no payload

    store = StateStore.from_url(f"sqlite:///{function_env}/state.db")
    assert store.idempotency.begin("reconcile/pass", "reconcile", "someone-else", 4e9).acquired
    seq = emulator.recorder.last_seq
    assert call("reconcile", json.dumps(tick).encode()) == {
        "status": "in_progress",
        "actions": [],
        "errors": [],
        "needs_human": [],
    }
    assert emulator.recorder.since(seq) == []


def test_the_timer_pass_holds_each_users_lock_until_its_own_deadline(
    function_env, call, delivery_keys, monkeypatch
) -> None:
    """A long pass must not outlive its locks: provisioning would then change a user mid-remediation."""
    import time

    from local.invoke import invoke as run
    from shared.fc import FcContext, FcFunction
    from shared.store.idempotency import IdempotencyStore
    from tests.flows.conftest import sample

    _, public = delivery_keys
    event = sample(
        "user-requested-programmatic.json",
        delivery_public_key=public,
        grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
    )
    assert call("user-requested", event)["status"] == "completed"
    leases: list[tuple[str, float]] = []
    begin = IdempotencyStore.begin

    def spy(self, key, payload_hash, owner, lease_until):
        leases.append((key, lease_until - time.time()))
        return begin(self, key, payload_hash, owner, lease_until)

    monkeypatch.setattr(IdempotencyStore, "begin", spy)
    run("reconcile", b"{}", FcContext(FcFunction("reconcile", timeout=900)))
    user_locks = [seconds for key, seconds in leases if key.startswith("lock:user:")]
    assert user_locks and min(user_locks) > 850
