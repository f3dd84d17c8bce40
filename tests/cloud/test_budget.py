"""The account's API budget at work: instances share it, throttling lowers it, and an event that
cannot get budget in time goes back to be retried rather than end `partial`.

The store is a real Redis (own namespace), the cloud the loopback emulator with a QPS limit.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS
from shared.cloud import Cloud, CloudRunner, RetryPolicy, account_runner
from shared.cloud.clients import CloudClients
from shared.cloud.ratelimit import AccountBudget, TokenBucket, quota_group
from shared.concurrency import run_all
from shared.config import Settings
from shared.errors import BudgetExhausted
from shared.flows import FLOWS
from shared.handler import FlowFailed, process_event
from shared.models.events import parse_events
from shared.runtime import Runtime
from shared.store import StateStore, open_store
from shared.store.budget import Bucket, budget_store

pytestmark = pytest.mark.redis

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def store_url(redis_url: str) -> Iterator[str]:
    namespace = f"ramflow-test:budget:{uuid.uuid4().hex}:"
    yield f"{redis_url}?namespace={namespace}"
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=namespace + "*"):
            client.delete(key)


def instance(settings: Settings, store_url: str, **policy: float) -> Cloud:
    """One FC instance: its own store connection and clients, the account's budget in the store."""
    backend = open_store(store_url)
    runner = account_runner(settings, ROOT_CREDENTIALS, store=backend)
    if policy:
        runner.policy = RetryPolicy(max_attempts=settings.max_attempts, **policy)  # type: ignore[arg-type]
    return Cloud(CloudClients(settings, ROOT_CREDENTIALS), settings, runner=runner)


def burst(clouds: list[Cloud], calls_each: int) -> list[BaseException | None]:
    tasks = [(f"{i}", c.ram.get_account_alias) for c in clouds for i in range(calls_each)]
    return [o.error for o in run_all(tasks, max_workers=len(tasks))]


def scheduled(clouds: list[Cloud]) -> list[float]:
    """Record when each limiter lets a call go (the time its token is due), across instances."""
    times: list[float] = []
    for cloud in clouds:
        limiter = cloud.runner.limiter
        acquire = limiter.acquire

        def recording(action: str = "", max_wait: float | None = None, acquire=acquire) -> float:
            before = time.time()
            wait = acquire(action, max_wait)
            times.append(before + wait)
            return wait

        limiter.acquire = recording  # type: ignore[method-assign]
    return times


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


def test_quota_groups_follow_the_published_limits() -> None:
    assert quota_group("ListAccessKeys").rate == 100
    assert quota_group("DeleteLoginProfile").rate == 20
    assert quota_group("RemoveUserFromGroup").rate == 10
    assert quota_group("AssumeRole").rate == 100


def test_instances_sharing_the_store_stay_within_the_account_limit(store_url: str) -> None:
    """Two instances, each firing 20 calls at once, at a cloud allowing 10/s: between them they send
    at most the account's rate (plus its half-second burst) in any second, and every call succeeds.
    (What the cloud answered depends on when the requests arrive, which a loaded machine blurs; the
    schedule the shared budget made does not.)"""
    with EmulatorServer(Emulator(qps=10)) as server:
        settings = Settings(cloud_endpoint=server.endpoint, rate_limit_qps=10)
        clouds = [instance(settings, store_url), instance(settings, store_url)]
        times = scheduled(clouds)
        errors = burst(clouds, 20)
        assert errors == [None] * 40
        assert most_in_one_second(times) <= 10 + 5 + 3  # rate + burst, and slots blurred by a busy machine
        assert server.emulator.recorder.actions(outcome="OK") == ["GetAccountAlias"] * 40


def test_without_a_shared_budget_the_same_instances_send_twice_the_rate() -> None:
    """The control: each instance pacing itself at the account's rate sends twice too much."""
    with EmulatorServer(Emulator()) as server:
        settings = Settings(cloud_endpoint=server.endpoint, rate_limit_qps=10)
        clouds = [
            Cloud(CloudClients(settings, ROOT_CREDENTIALS), settings, runner=CloudRunner(TokenBucket(10)))
            for _ in range(2)
        ]
        times = scheduled(clouds)
        burst(clouds, 20)
        assert most_in_one_second(times) >= 18


def test_throttling_lowers_the_shared_rate_and_every_call_still_succeeds(store_url: str) -> None:
    """Budget 20/s against a cloud that allows 5/s: throttled answers cut the rate (AIMD) and the
    calls wait their turn again, so all of them succeed."""
    with EmulatorServer(Emulator()) as server:
        server.emulator.faults.set_qps(5, start_full=False)
        settings = Settings(cloud_endpoint=server.endpoint, rate_limit_qps=20)
        cloud = instance(settings, store_url)
        budget = cloud.runner.limiter
        assert isinstance(budget, AccountBudget)
        rates: list[float] = []
        throttled = budget.throttled

        def cut(action: str = "") -> None:
            throttled(action)
            rates.append(budget.current_rate(action))

        budget.throttled = cut  # type: ignore[method-assign]
        errors = burst([cloud], 20)
        assert errors == [None] * 20
        stats = cloud.stats.snapshot()
        assert stats["throttled"] > 0 and stats["budget_exhausted"] == 0
        assert rates and min(rates) < 20


def test_a_call_without_budget_in_time_is_refused_before_it_is_sent(store_url: str) -> None:
    with EmulatorServer(Emulator()) as server:
        settings = Settings(cloud_endpoint=server.endpoint, rate_limit_qps=0.2)
        cloud = instance(settings, store_url, max_wait=0.2)
        cloud.ram.get_account_alias()
        with pytest.raises(BudgetExhausted) as info:
            cloud.ram.get_account_alias()  # the next token is up to 5 s away
        assert info.value.code == "Throttling.Budget" and info.value.wait > 0.2
        assert server.emulator.recorder.actions() == ["GetAccountAlias"]


def test_an_event_without_budget_is_handed_back_and_finishes_on_redelivery(store_url: str) -> None:
    """Not `partial`, not failed: `in_progress`, the idempotency record released, nothing called;
    delivered again once the budget has room, it completes."""
    with EmulatorServer(Emulator()) as server:
        settings = Settings(
            cloud_endpoint=server.endpoint, store=store_url, rate_limit_qps=20, budget_max_wait=0.3
        )
        store = StateStore(open_store(store_url))
        rt = Runtime(settings, ROOT_CREDENTIALS, store)
        # other instances have reserved the account's next 1.5 s of calls
        shared = budget_store(open_store(store_url))
        for _ in range(30):
            shared.take([Bucket(f"{server.endpoint}:account", 20)], float("inf"))
        raw = json.loads((EVENTS / "user-offboarded.json").read_text())
        raw["id"] = str(uuid.uuid4())
        raw["data"] = {"user_name": "nobody.here", "hr_event_id": "WD-1", "grace": "P0D"}
        (event,) = parse_events(raw)
        lease = time.time() + 60

        with pytest.raises(FlowFailed) as info:
            process_event(event, FLOWS, rt, owner="first", lease_until=lease)
        assert info.value.result.status == "in_progress"
        assert "budget" in info.value.result.errors[0].reason
        assert server.emulator.recorder.actions() == []

        time.sleep(1.6)
        result = process_event(event, FLOWS, rt, owner="second", lease_until=lease)
        assert result.status == "completed"
        assert server.emulator.recorder.actions()  # the redelivery did the work
