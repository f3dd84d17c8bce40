"""`user.offboarded` end to end through the official SDK against the emulator on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.errors import FlowFailed
from shared.flows.offboard import offboard, offboard_event
from shared.flows.reconcile import reconcile
from shared.handler import process_event
from shared.models.events import USER_OFFBOARDED, UserOffboarded
from tests.flows.conftest import sample
from tests.flows.test_offboard_world import SYSTEM_POLICY, TEMPLATE, World, make_world, offboarded

OWNER = "alice@example.com"


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    return make_world(emulator, root_clients, cloud_settings)


def rich_user(world: World, name: str = "alice.kafka", owner: str = OWNER) -> dict[str, object]:
    """2 keys (one by hand), a login profile, a bound MFA device, 3 groups, system + custom policies
    at account scope (ramflow's and hand-made) and two resource-group grants (ramflow's and one
    made by hand through ResourceManager)."""
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
    world.attach_in_group(name, rg, "ReadOnlyAccess")  # out of band, straight through ResourceManager
    held = world.holds(name)
    assert held is not None and len(held["keys"]) == 2 and held["login_profile"] and held["mfa"]
    assert len(held["groups"]) == 3 and len(held["policies"]) == 6
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


def test_with_grace_the_user_is_disabled_at_once_and_deleted_by_reconcile_later(world: World) -> None:
    facts = rich_user(world)
    rt = world.runtime()
    data = UserOffboarded.model_validate({"owner": OWNER, "hr_event_id": "WD-2", "grace": "P7D"})
    result = offboard_event(data, offboarded(owner=OWNER, grace="P7D"), rt)

    assert result.status == "completed", result.errors
    held = world.holds("alice.kafka")
    assert held is not None  # disabled, not deleted
    assert held["login_profile"] is False and set(held["keys"].values()) == {"Inactive"}
    assert held["policies"] == [] and held["groups"] == []
    assert held["mfa"] == facts["serial"]  # unbound only when the user is deleted
    record = rt.store.ledger.get_user("alice.kafka")
    assert record is not None and record.status == "disabled"
    assert record.delete_after == world.clock() + timedelta(days=7)

    world.clock.advance(timedelta(days=6))
    early = reconcile(world.runtime()).result()
    assert early.status == "completed" and early.plan["deletions"] == {}
    assert world.holds("alice.kafka") is not None

    world.clock.advance(timedelta(days=1, seconds=1))
    late = reconcile(world.runtime()).result()
    assert late.status == "completed", late.errors
    assert late.plan["deletions"] == {"alice.kafka": "deleted"}
    assert world.holds("alice.kafka") is None
    assert facts["serial"] not in world.ram.mfa_devices
    assert ramflow_policies(world) == set()
    assert rt.store.ledger.get_user("alice.kafka").status == "deleted"
    assert reconcile(world.runtime()).result().plan["deletions"] == {}  # done once, then forgotten


def test_an_unmanaged_user_named_directly_is_reported_and_audited_never_changed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.unmanaged_user("legacy.admin", OWNER)
    world.add_key("legacy.admin")
    world.add_login_profile("legacy.admin")
    world.attach("legacy.admin", "ReadOnlyAccess")
    before = world.holds("legacy.admin")
    seq = world.emulator.recorder.last_seq

    with caplog.at_level("INFO", logger="ramflow.audit"):
        result = offboard_event(
            UserOffboarded(user_name="legacy.admin", hr_event_id="WD-3"),
            offboarded(user_name="legacy.admin"),
            world.runtime(),
        )

    assert result.status == "completed" and result.user_name == "legacy.admin"
    assert [h["subject"] for h in result.to_json()["needs_human"]] == ["legacy.admin"]
    assert world.holds("legacy.admin") == before
    assert all(c.action.startswith(("Get", "List")) for c in world.emulator.recorder.since(seq))
    assert any('"user.unmanaged"' in r.message and "legacy.admin" in r.message for r in caplog.records)


def test_a_user_that_does_not_exist_is_done(world: World) -> None:
    result = offboard_event(
        UserOffboarded(user_name="nobody", hr_event_id="WD-4"),
        offboarded(user_name="nobody"),
        world.runtime(),
    )
    assert result.status == "completed" and result.errors == [] and result.needs_human == []


@pytest.mark.parametrize("max_attempts", [1, 4])
@pytest.mark.slow
def test_a_failure_after_any_cloud_call_is_finished_by_a_replay(world: World, max_attempts: int) -> None:
    """Call N takes effect and then answers 500 (a crash between the cloud acting and ramflow
    hearing of it). With one attempt the flow itself meets the failure; with more, the runner's
    retry meets "already done" instead. Either way a replay of the event ends fully deleted."""
    flows = {USER_OFFBOARDED: offboard}
    fired_at = []
    for n in range(1, 200):
        owner, name = f"leaver{n}@example.com", f"leaver{n}"
        facts = rich_user(world, name, owner)
        rt = world.runtime(max_attempts=max_attempts)
        event = offboarded(owner=owner)
        first, fired = world.process_with_crash(n, event, flows, rt)
        if not fired:
            assert first.status == "completed"
            break
        fired_at.append(first.status)
        replay = process_event(
            event, flows, world.runtime(max_attempts=max_attempts), owner="replay", lease_until=2e9
        )
        assert replay.status == "completed", (n, replay.errors)
        assert replay.errors == []
        assert world.holds(name) is None, n
        assert facts["serial"] not in world.ram.mfa_devices, n
        assert ramflow_policies(world) == set(), n
        ledger = rt.store.ledger
        assert ledger.get_intent(f"offboard/{name}") is None and ledger.get_user(name).status == "deleted"
        assert ledger.due_deletions(world.clock() + timedelta(days=1)) == []
    assert len(fired_at) >= 20  # every call of a rich user's offboarding was hit once
    if max_attempts == 1:
        assert "partial" in fired_at  # the flow met the failures itself, and asked to be retried


def test_the_handler_raises_a_partial_outcome_so_the_event_is_delivered_again(
    function_env, call, emulator, monkeypatch
) -> None:
    monkeypatch.setenv("RAMFLOW_MAX_ATTEMPTS", "1")  # the injected failure reaches the flow
    requested = sample(
        "user-requested-programmatic.json", grants=[{"policy": SYSTEM_POLICY, "type": "System"}]
    )
    assert call("user-requested", requested)["status"] == "completed"
    event = sample("user-offboarded.json", owner="frank@example.com")
    emulator.faults.fail_nth_call(1, when="after", actions={"DeleteUser"})

    with pytest.raises(FlowFailed) as failed:
        call("user-offboarded", event)

    assert failed.value.result.status == "partial"
    assert failed.value.result.errors[0].reason == "InternalError"
    assert "orders-etl" not in emulator.account.ram.users  # the call did act, before it "failed"
    again = call("user-offboarded", event)  # the redelivery: the idempotency record was released
    assert again["status"] == "completed" and again["errors"] == []
    assert call("user-offboarded", event) == again  # and now it is recorded


def test_a_stale_account_alias_never_makes_a_leavers_user_look_gone(world: World) -> None:
    """IMS names users `<user>@<alias>.onaliyun.com`: with a stale alias it answers "no such user".
    RAM's GetUser decides: the offboarding fails and is retried, the ledger does not write the user
    off, and with the right alias the replay takes everything away."""
    world.provision("gil.kafka", OWNER, ticket="T-G")
    before = world.holds("gil.kafka")
    data = UserOffboarded(owner=OWNER, hr_event_id="WD-5")

    stale = offboard_event(data, offboarded(owner=OWNER), world.runtime(account_alias="some-old-alias"))

    assert stale.status != "completed"
    assert any("account alias" in e.reason for e in stale.errors)
    assert world.holds("gil.kafka") == before
    record = world.runtime().store.ledger.get_user("gil.kafka")
    assert record is not None and record.status == "active"
    replay = offboard_event(data, offboarded(owner=OWNER), world.runtime())
    assert replay.status == "completed", replay.errors
    assert world.holds("gil.kafka") is None
