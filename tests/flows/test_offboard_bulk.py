"""Bulk offboarding under the emulator's QPS limit: the shared per-account rate limiter keeps every
call within the allowed rate, so hundreds of users go without a single failure."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from shared.cloud.ratelimit import AccountBudget, limiters
from shared.config import Settings
from shared.flows.offboard import offboard_event
from shared.models.events import UserOffboarded
from shared.models.results import Result
from shared.store.records import UserRecord
from tests.flows.test_offboard_world import World, make_world, offboarded

QPS = 200.0
# "Absent" answers are part of the plan (a blind DeleteLoginProfile, no MFA device); nothing else fails.
EXPECTED_OUTCOMES = {
    "OK",
    "Throttling.User",
    "EntityNotExist.User.LoginProfile",
    "EntityNotExist.User.MFADevice",
}


@pytest.fixture
def world(emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings) -> World:
    limiters.clear()  # a fresh account bucket, at this test's rate
    return make_world(emulator, root_clients, cloud_settings, rate_limit_qps=QPS)


def managed_users(world: World, owner: str, count: int, prefix: str) -> list[str]:
    """Users as provisioning leaves them (tags, a key, a policy) plus a group added by hand.
    Made straight in the emulator's state: the setup is not what is measured. Half are in the
    ledger; the others are found through their IMS `owner` tag only (the ledger may be behind)."""
    ram = world.ram
    if "staff" not in ram.groups:
        ram.create_group("staff")
    names = [f"{prefix}{i:03d}" for i in range(count)]
    for index, name in enumerate(names):
        ram.create_user(name)
        ram.users[name].tags.update({"managed-by": "ramflow", "owner": owner, "ticket": "T-bulk"})
        ram.create_access_key(name)
        ram.attach_policy("User", name, "System", "AliyunKafkaReadOnlyAccess")
        ram.add_user_to_group(name, "staff")
        if index % 2 == 0:
            assert world.store is not None
            world.store.ledger.save_user(UserRecord(user_name=name, owner=owner, access_mode="programmatic"))
    return names


@pytest.mark.slow
def test_two_hundred_users_offboarded_within_the_qps_limit_without_a_failure(world: World) -> None:
    names = managed_users(world, "team@example.com", 200, "bulk")
    world.emulator.faults.set_qps(QPS, start_full=True)  # a quiet second
    rt = world.runtime()

    result = offboard_event(
        UserOffboarded(owner="team@example.com", hr_event_id="WD-BULK"),
        offboarded(owner="team@example.com"),
        rt,
    )

    assert result.status == "completed" and result.errors == []
    assert not any(name in world.ram.users for name in names)
    stats = rt.cloud.stats.snapshot()
    assert stats["calls"] >= 200 * 10
    outcomes = Counter(c.outcome for c in world.emulator.recorder.calls)
    assert set(outcomes) <= EXPECTED_OUTCOMES
    assert outcomes["Throttling.User"] == stats["throttled"] == 0  # paced, never refused


@pytest.mark.slow
def test_concurrent_events_share_one_rate_limit_and_throttling_is_absorbed(world: World) -> None:
    """Four HR events at once, each its own runtime (as separate invocations), draw on one budget
    in the store they share. The account allows a quarter of what is configured and starts
    with no burst to spare, so the cloud does throttle: backoff and retries absorb all of it."""
    owners = [f"team{i}@example.com" for i in range(4)]
    names = [n for i, owner in enumerate(owners) for n in managed_users(world, owner, 25, f"t{i}u")]
    world.emulator.faults.set_qps(QPS * 0.25, start_full=False)  # reachable even on a busy machine
    results: dict[str, Result] = {}
    runtimes = {owner: world.runtime(max_attempts=10) for owner in owners}

    def run(owner: str) -> None:
        data = UserOffboarded(owner=owner, hr_event_id="WD-" + owner.partition("@")[0])
        results[owner] = offboard_event(data, offboarded(owner=owner), runtimes[owner])

    threads = [threading.Thread(target=run, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {owner: r.status for owner, r in results.items()} == dict.fromkeys(owners, "completed")
    assert not any(name in world.ram.users for name in names)
    buckets = set()
    for rt in runtimes.values():
        budget = rt.cloud.runner.limiter
        assert isinstance(budget, AccountBudget)
        buckets.add(tuple(b.key for b in budget.buckets("DeleteUser")))
    assert len(buckets) == 1  # one account budget, in the one store they share
    outcomes = Counter(c.outcome for c in world.emulator.recorder.calls)
    assert set(outcomes) <= EXPECTED_OUTCOMES
    throttled = sum(rt.cloud.stats.snapshot()["throttled"] for rt in runtimes.values())
    assert outcomes["Throttling.User"] == throttled > 0
