"""AccessKey hygiene through the official SDK against the emulator: the three Cloud Config rules,
rotation with an overlap (age → rotation → overlap → deactivation → deletion, with the emulator's
clock advanced), the hold when the old key is still used, unused keys, and crashes after every call."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.errors import CloudError
from shared.flows import FLOWS
from shared.flows.keys import (
    RULE_CREATE_DATE,
    RULE_QUANTITY,
    RULE_USED,
    KeyFacts,
    KeyRules,
    check_user_keys,
    evaluate,
    resume,
    rotate,
)
from shared.flows.reconcile import reconcile
from shared.models.events import KEY_ROTATION_REQUESTED, KeyRotationRequested
from shared.sealing import generate_keypair, open_sealed
from tests.flows.test_offboard_world import World, event

USER, OWNER = "orders-etl", "etl-team@example.com"


class EmulatorClock:
    """ramflow's clock and the emulator's are one: advancing moves key ages and flow deadlines alike."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.emulator.clock(), timezone.utc)

    def advance(self, delta: timedelta) -> None:
        self.emulator.advance(delta.total_seconds())


@pytest.fixture
def keypair() -> tuple[str, str]:
    return generate_keypair()


def make(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings, public: str, **settings: Any
) -> World:
    defaults: dict[str, Any] = {"rate_limit_qps": 1000.0, "account_alias": None}
    return World(
        emulator,
        root_clients,
        cloud_settings.model_copy(update={**defaults, **settings}),
        clock=EmulatorClock(emulator),  # type: ignore[arg-type]
        public_key=public,
    )


@pytest.fixture
def world(emulator, root_clients, cloud_settings, keypair) -> World:
    return make(
        emulator,
        root_clients,
        cloud_settings,
        keypair[1],
        key_rotation=True,
        key_max_age_days=30,  # the catalog's grants last at most 90 days: rotate well inside them
        key_rotation_overlap=timedelta(days=7),
        key_rotation_delete_after=timedelta(days=7),
    )


def provisioned_key(world: World, private: str) -> CloudClients:
    """Provision the programmatic user; the clients its owner builds from the delivered secret."""
    reply = world.provision(USER, OWNER)
    assert reply.credential is not None
    secret = open_sealed(private, reply.credential.sealed_secret)  # type: ignore[union-attr]
    return CloudClients(world.clients.settings, CloudCredentials(reply.credential.access_key_id, secret))  # type: ignore[union-attr]


def keys(world: World) -> dict[str, str]:
    return {k: v.status for k, v in world.ram.users[USER].access_keys.items()}


def findings(plan: dict) -> set[tuple[str, str]]:
    return {(f["rule"], f["access_key_id"]) for f in plan["findings"]}


def test_the_rules_as_cloud_config_evaluates_them_with_its_defaults() -> None:
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    day = timedelta(days=1)

    def key(name: str, age: int, used: int | None = None, status: str = "Active") -> KeyFacts:
        return KeyFacts(name, status, now - age * day, None if used is None else now - used * day)

    assert evaluate("u", [key("young", 89, used=1)], now, KeyRules()) == []
    found = evaluate("u", [key("old", 91), key("idle", 90, used=90, status="Inactive")], now, KeyRules())
    assert {(f.rule, f.access_key_id) for f in found} == {
        (RULE_CREATE_DATE, "old"),  # older than 90 days
        (RULE_USED, "old"),  # never used, created 91 days ago
        (RULE_USED, "idle"),  # 90 days without use is already non-compliant (>=)
    }
    pair = [key("a", 31, used=1), key("b", 31, used=1)]
    assert [f.rule for f in evaluate("u", pair, now, KeyRules())] == [RULE_QUANTITY]
    assert (
        evaluate("u", [key("a", 31, used=1), key("b", 5, used=1)], now, KeyRules()) == []
    )  # rotation overlap
    assert (
        evaluate("u", [key("a", 31, used=1), key("b", 31, used=1, status="Inactive")], now, KeyRules()) == []
    )


def test_the_three_rules_in_the_reconcile_report(emulator, root_clients, cloud_settings, keypair) -> None:
    # rotation off: report only; 60-day thresholds keep the test inside the grant's 90-day duration
    world = make(emulator, root_clients, cloud_settings, keypair[1], key_max_age_days=60, key_unused_days=60)
    first = provisioned_key(world, keypair[0]).credentials.access_key_id
    world.clock.advance(timedelta(days=31))
    second = world.add_key(USER)  # by hand: two Active keys now
    assert findings(reconcile(world.runtime()).result().plan) == set()  # the second one is young

    world.clock.advance(timedelta(days=31))  # the first is 62 days old and never used; both are > 30 days
    result = reconcile(world.runtime()).result()
    assert findings(result.plan) == {
        (RULE_QUANTITY, f"{first},{second}"),
        (RULE_CREATE_DATE, first),
        (RULE_USED, first),
    }
    assert any(RULE_CREATE_DATE in str(h) for h in result.needs_human)
    assert set(keys(world).values()) == {"Active"}  # findings alone change nothing


def test_use_clears_the_unused_finding_and_thresholds_are_settings(
    emulator, root_clients, cloud_settings, keypair
) -> None:
    world = make(emulator, root_clients, cloud_settings, keypair[1], key_unused_days=10, key_max_age_days=15)
    own = provisioned_key(world, keypair[0])
    key_id = own.credentials.access_key_id
    world.clock.advance(timedelta(days=10))
    assert findings(reconcile(world.runtime()).result().plan) == {(RULE_USED, key_id)}
    own.sts.get_caller_identity()  # the key signs a call: GetAccessKeyLastUsed moves
    assert findings(reconcile(world.runtime()).result().plan) == set()
    world.clock.advance(timedelta(days=9))  # 19 days old, used 9 days ago
    assert findings(reconcile(world.runtime()).result().plan) == {(RULE_CREATE_DATE, key_id)}


def test_settings_read_from_the_environment_and_refuse_bad_values() -> None:
    settings = Settings.from_env(
        {
            "RAMFLOW_KEY_MAX_AGE_DAYS": "30",
            "RAMFLOW_KEY_ROTATION": "true",
            "RAMFLOW_KEY_ROTATION_OVERLAP": "PT12H",
        }
    )
    assert (settings.key_max_age_days, settings.key_rotation) == (30, True)
    assert settings.key_rotation_overlap == timedelta(hours=12)
    defaults = Settings.from_env({})
    assert (defaults.key_max_age_days, defaults.key_unused_days, defaults.key_quantity_days) == (90, 90, 30)
    assert not defaults.key_rotation and not defaults.key_unused_deactivate
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="RAMFLOW_KEY_ROTATION_OVERLAP: months and years"):
        Settings.from_env({"RAMFLOW_KEY_ROTATION_OVERLAP": "P1M"})
    with pytest.raises(ConfigError, match="RAMFLOW_KEY_MAX_AGE_DAYS: Input should be greater"):
        Settings.from_env({"RAMFLOW_KEY_MAX_AGE_DAYS": "0"})


def test_age_rotation_overlap_deactivation_deletion(world: World, keypair, caplog) -> None:
    caplog.set_level(logging.INFO)
    private = keypair[0]
    old = provisioned_key(world, private)
    old_id = old.credentials.access_key_id
    world.clock.advance(timedelta(days=29))
    assert reconcile(world.runtime()).result().plan["rotations"] == {}  # not yet of age

    world.clock.advance(timedelta(days=2))
    plan = reconcile(world.runtime()).result().plan
    rotation = plan["rotations"][USER]
    assert rotation["state"] == "delivered" and rotation["old_key_id"] == old_id
    new_id = rotation["new_key_id"]
    assert keys(world) == {old_id: "Active", new_id: "Active"}  # the overlap: both work
    assert not [d for d in plan["drift"] if d["kind"] == "extra_access_key"]
    secret = open_sealed(private, rotation["sealed_secret"])
    new = CloudClients(world.clients.settings, CloudCredentials(new_id, secret))
    assert new.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")
    record = world.runtime().store.ledger.get_user(USER)
    assert record.credential.access_key_id == new_id  # type: ignore[union-attr]
    assert (RULE_QUANTITY, f"{old_id},{new_id}") not in findings(plan)  # a fresh key during overlap is fine

    world.clock.advance(timedelta(days=6))
    assert reconcile(world.runtime()).result().plan["rotations"][USER]["state"] == "delivered"
    world.clock.advance(timedelta(days=1, hours=1))
    assert reconcile(world.runtime()).result().plan["rotations"][USER]["state"] == "deactivated"
    assert keys(world) == {old_id: "Inactive", new_id: "Active"}
    with pytest.raises(Exception):  # noqa: B017 - the SDK's ClientException: the old key is refused
        old.sts.get_caller_identity()

    world.clock.advance(timedelta(days=7, hours=1))
    result = reconcile(world.runtime()).result()
    assert result.plan["rotations"][USER]["state"] == "completed"
    assert keys(world) == {new_id: "Active"}  # exactly one key, the new one
    assert result.status == "completed", result.errors
    assert new.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")

    # the secret never reached the logs, the audit trail or the store
    assert secret not in caplog.text
    store = world.settings.store.removeprefix("sqlite:///")
    dump = "\n".join(sqlite3.connect(store).iterdump())
    assert secret not in dump and new_id in dump


def test_the_old_key_still_in_use_holds_the_rotation(world: World, keypair, caplog) -> None:
    caplog.set_level(logging.INFO)
    old = provisioned_key(world, keypair[0])
    old_id = old.credentials.access_key_id
    world.clock.advance(timedelta(days=31))
    new_id = reconcile(world.runtime()).result().plan["rotations"][USER]["new_key_id"]
    world.clock.advance(timedelta(days=3))
    old.sts.get_caller_identity()  # the application still signs with the old key
    world.clock.advance(timedelta(days=5))
    result = reconcile(world.runtime()).result()
    rotation = result.plan["rotations"][USER]
    assert rotation["state"] == "held" and old_id in rotation["hold_reason"]
    assert keys(world) == {old_id: "Active", new_id: "Active"}  # nothing breaks
    assert any("key rotation held" in str(h) for h in result.needs_human)
    assert "rotation_held" in caplog.text  # the owner's notice

    world.clock.advance(timedelta(days=10))  # held means held: nothing happens without a person
    held = reconcile(world.runtime()).result().plan["rotations"][USER]
    assert held["state"] == "held"
    assert keys(world) == {old_id: "Active", new_id: "Active"}

    # the person moves the application to the new key, then asks for the rotation again: it goes on
    secret = open_sealed(keypair[0], held["sealed_secret"])
    CloudClients(world.clients.settings, CloudCredentials(new_id, secret)).sts.get_caller_identity()
    assert rotate(world.runtime(), USER).state == "deactivated"
    assert keys(world) == {old_id: "Inactive", new_id: "Active"}


def test_the_owner_switched_so_the_old_keys_earlier_use_does_not_hold(world: World, keypair) -> None:
    old = provisioned_key(world, keypair[0])
    world.clock.advance(timedelta(days=31))
    rotation = reconcile(world.runtime()).result().plan["rotations"][USER]
    world.clock.advance(timedelta(days=1))
    old.sts.get_caller_identity()  # used after delivery…
    world.clock.advance(timedelta(days=1))
    new = CloudClients(
        world.clients.settings,
        CloudCredentials(rotation["new_key_id"], open_sealed(keypair[0], rotation["sealed_secret"])),
    )
    new.sts.get_caller_identity()  # …but then the owner switched to the new key
    world.clock.advance(timedelta(days=6))
    assert reconcile(world.runtime()).result().plan["rotations"][USER]["state"] == "deactivated"


def test_unused_keys_are_deactivated_when_configured_and_never_deleted(
    emulator, root_clients, cloud_settings, keypair, caplog
) -> None:
    caplog.set_level(logging.INFO)
    world = make(
        emulator, root_clients, cloud_settings, keypair[1], key_unused_deactivate=True, key_unused_days=30
    )
    key_id = provisioned_key(world, keypair[0]).credentials.access_key_id
    world.clock.advance(timedelta(days=30))
    plan = reconcile(world.runtime()).result().plan
    assert plan["deactivated_unused_keys"] == {USER: [key_id]}
    assert "unused_key_deactivated" in caplog.text
    world.clock.advance(timedelta(days=400))  # past the grant's end too: the user is disabled, not deleted
    reconcile(world.runtime())
    assert keys(world) == {key_id: "Inactive"}  # still there: deleting is for a person


def test_unused_keys_are_only_reported_by_default(emulator, root_clients, cloud_settings, keypair) -> None:
    world = make(emulator, root_clients, cloud_settings, keypair[1], key_unused_days=30)
    key_id = provisioned_key(world, keypair[0]).credentials.access_key_id
    world.clock.advance(timedelta(days=30))
    plan = reconcile(world.runtime()).result().plan
    assert (RULE_USED, key_id) in findings(plan) and plan["deactivated_unused_keys"] == {}
    assert keys(world) == {key_id: "Active"}


def test_rotation_requested_event_rotates_now_and_a_replay_makes_no_second_key(world: World, keypair) -> None:
    old_id = provisioned_key(world, keypair[0]).credentials.access_key_id
    flow = FLOWS[KEY_ROTATION_REQUESTED]
    data = KeyRotationRequested(user_name=USER, requested_by="sec@example.com", reason="leaked in a log")
    result = flow(data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json")), world.runtime())
    assert result.status == "completed"
    new_id = result.credential.access_key_id
    assert open_sealed(keypair[0], result.credential.sealed_secret)
    again = flow(data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json")), world.runtime())
    assert again.credential.access_key_id == new_id  # the open rotation, not a third key
    assert keys(world) == {old_id: "Active", new_id: "Active"}


def test_rotation_of_an_unknown_user_is_rejected_without_a_cloud_call(world: World, emulator) -> None:
    data = KeyRotationRequested(user_name="nobody", requested_by="sec@example.com")
    before = emulator.recorder.last_seq
    result = FLOWS[KEY_ROTATION_REQUESTED](
        data, event(KEY_ROTATION_REQUESTED, data.model_dump(mode="json")), world.runtime()
    )
    assert result.status == "rejected" and result.errors[0].field == "data.user_name"
    assert emulator.recorder.since(before) == []


def _drive(world: World) -> None:
    """What replays and later reconcile passes do: continue the rotation, moving time along."""
    rt = world.runtime(max_attempts=1)
    for _ in range(8):
        rotation = rt.store.ledger.get_rotation(USER)
        if rotation is not None and rotation.state == "completed":
            return
        try:
            if rotation is None:
                rotate(rt, USER)
            else:
                resume(rt, USER)
        except CloudError:
            pass  # the crash: the next replay finishes the job
        world.clock.advance(timedelta(days=8))


def test_a_crash_after_every_cloud_call_of_the_rotation_converges(tmp_path, keypair) -> None:
    """With retries off, the nth call of the rotation takes effect and its reply is lost; replays
    finish the rotation with exactly one key, Active, recorded, whose delivered secret works."""
    nth, crashed = 0, []
    while True:
        nth += 1
        with EmulatorServer(Emulator()) as server:
            emulator = server.emulator
            settings = Settings(cloud_endpoint=server.endpoint, store=f"sqlite:///{tmp_path}/state-{nth}.db")
            world = make(
                emulator,
                CloudClients(settings, ROOT_CREDENTIALS),
                settings,
                keypair[1],
                key_rotation_overlap=timedelta(days=7),
                key_rotation_delete_after=timedelta(days=7),
            )
            provisioned_key(world, keypair[0])
            before = emulator.recorder.last_seq
            emulator.faults.fail_nth_call(nth, when="after")
            _drive(world)
            emulator.faults.clear()
            failed = [c.action for c in emulator.recorder.since(before) if c.outcome == "InternalError"]
            if not failed:
                break
            crashed += failed
            rotation = world.runtime().store.ledger.get_rotation(USER)
            assert rotation is not None and rotation.state == "completed", (nth, failed, rotation)
            assert list(keys(world).values()) == ["Active"], (nth, failed, keys(world))
            (only,) = keys(world)
            assert world.runtime().store.ledger.get_user(USER).credential.access_key_id == only  # type: ignore[union-attr]
            secret = open_sealed(keypair[0], rotation.sealed_secret)
            own = CloudClients(world.clients.settings, CloudCredentials(only, secret))
            assert own.sts.get_caller_identity().body.arn.endswith(f":user/{USER}")
    # every kind of call the rotation makes was crashed once
    assert {
        "ListAccessKeys",
        "CreateAccessKey",
        "GetAccessKeyLastUsed",
        "UpdateAccessKey",
        "DeleteAccessKey",
    } <= set(crashed), crashed


def test_a_catalog_entry_turns_automatic_rotation_on_for_its_holders(
    emulator, root_clients, cloud_settings, keypair, tmp_path
) -> None:
    """RAMFLOW_KEY_ROTATION is off; the user's grant's catalog entry asks for rotation every 20 days."""
    from shared.config import DEFAULT_CATALOG

    catalog = tmp_path / "catalog.yaml"
    text = DEFAULT_CATALOG.read_text(encoding="utf-8")
    marker = "  AliyunKafkaReadOnlyAccess:\n"
    catalog.write_text(text.replace(marker, marker + "    key_rotation_days: 20\n", 1), encoding="utf-8")
    world = make(emulator, root_clients, cloud_settings, keypair[1], catalog_path=catalog)
    assert world.runtime().settings.key_rotation is False
    old_id = provisioned_key(world, keypair[0]).credentials.access_key_id
    world.clock.advance(timedelta(days=19))
    assert reconcile(world.runtime()).result().plan["rotations_handed_off"] == {}
    world.clock.advance(timedelta(days=2))
    plan = reconcile(world.runtime()).result().plan
    assert plan["rotations_handed_off"] == {USER: "rotated in-process"}  # no FC here: the same flow, locally
    rotation = plan["rotations"][USER]
    assert rotation["state"] == "delivered" and rotation["old_key_id"] == old_id
    assert rotation["reason"] == "age" and rotation["recipient"]
    assert open_sealed(keypair[0], rotation["sealed_secret"])
    # the next pass continues the open rotation and asks for nothing new
    assert reconcile(world.runtime()).result().plan["rotations_handed_off"] == {}


def test_without_the_setting_or_a_catalog_entry_keys_are_only_reported(world: World, keypair) -> None:
    rt = world.runtime()
    off = make(
        world.emulator, world.clients, rt.settings, keypair[1], key_rotation=False, key_max_age_days=30
    )
    old_id = provisioned_key(off, keypair[0]).credentials.access_key_id
    off.clock.advance(timedelta(days=31))
    plan = reconcile(off.runtime()).result().plan
    assert (RULE_CREATE_DATE, old_id) in findings(plan)
    assert plan["rotations_handed_off"] == {} and plan["rotations"] == {}
    assert keys(off) == {old_id: "Active"}


def test_an_in_process_hand_off_that_crashes_is_reported_and_finished_on_the_next_pass(
    world: World, keypair: tuple[str, str], emulator: Emulator
) -> None:
    old_id = provisioned_key(world, keypair[0]).credentials.access_key_id
    world.clock.advance(timedelta(days=31))
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})
    result = reconcile(world.runtime(max_attempts=1)).result()
    assert any("key rotation" in e.reason for e in result.errors), result.errors
    rotation = world.runtime().store.ledger.get_rotation(USER)
    assert rotation is not None and rotation.state == "creating"
    (lost,) = set(keys(world)) - {old_id}  # made, never recorded
    plan = reconcile(world.runtime()).result().plan
    assert plan["rotations_handed_off"] == {USER: "rotated in-process"}  # asked again, same request id
    shown = plan["rotations"][USER]
    assert shown["state"] == "delivered" and shown["new_key_id"] != lost
    assert set(keys(world)) == {old_id, shown["new_key_id"]}
    assert open_sealed(keypair[0], shown["sealed_secret"])


def test_a_key_deleted_between_the_two_reads_is_an_error_not_a_clean_user(world: World, keypair) -> None:
    """ListAccessKeys, then GetAccessKeyLastUsed per key, outside the lock: a key deleted in between
    answers EntityNotExist.User.AccessKey. That is not a missing user: the pass reports an error and
    keeps the findings on record, rather than recording the user as clean."""
    provisioned_key(world, keypair[0])
    user = world.ram.users[USER]

    def delete_the_key(when: str, action: str) -> None:
        if when == "before" and action == "GetAccessKeyLastUsed":
            user.access_keys.clear()

    world.emulator.hooks.append(delete_the_key)
    try:
        report = check_user_keys(world.runtime(), USER, now=world.clock())
    finally:
        world.emulator.hooks.remove(delete_the_key)

    assert len(report.errors) == 1 and "EntityNotExist.User.AccessKey" in report.errors[0]
    assert not report.missing and report.findings == []


def test_a_user_ram_does_not_have_is_skipped_and_its_findings_stay(world: World, keypair) -> None:
    provisioned_key(world, keypair[0])
    world.clock.advance(timedelta(days=40))  # past key_max_age_days (30), inside the grant's 90 days
    reconcile(world.runtime(key_rotation=False))
    recorded = world.runtime().store.ledger.get_key_findings(USER)
    assert recorded is not None and recorded.findings, "a key past its age is a finding"
    user = world.ram.users[USER]
    user.access_keys.clear()
    user.policies.clear()
    del world.ram.users[USER]

    report = check_user_keys(world.runtime(), USER, now=world.clock())
    reconcile(world.runtime(key_rotation=False))

    after = world.runtime().store.ledger.get_key_findings(USER)
    assert after is not None and after.findings == recorded.findings
    assert report.missing and report.errors == []
