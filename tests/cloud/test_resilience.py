"""Retries and the rate limit against the emulator's fault controls, over the loopback socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.utils_models import Config

from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS
from shared.cloud import Cloud, CloudRunner, RamGateway, RetryPolicy
from shared.cloud.clients import CloudClients
from shared.cloud.ratelimit import TokenBucket
from shared.concurrency import run_all
from shared.config import Settings
from shared.errors import AmbiguousOutcome, BudgetExhausted, CloudError, CloudUnreachable


def test_a_throttled_burst_succeeds_through_retries(
    make_cloud: Callable[..., Cloud], emulator: Emulator, calls
) -> None:
    emulator.faults.qps = 4
    cloud = make_cloud(qps=1000, max_attempts=20, real_sleep=True)
    outcomes = run_all([(str(i), cloud.ram.get_account_alias) for i in range(12)], max_workers=6)

    assert all(o.ok for o in outcomes)
    answers = calls("GetAccountAlias")
    assert answers.count("OK") == 12
    assert answers.count("Throttling.User") > 0
    assert set(answers) == {"OK", "Throttling.User"}
    stats = cloud.stats.snapshot()
    assert stats["throttled"] == stats["retries"] == answers.count("Throttling.User")
    assert stats["attempts"] == len(answers) and stats["failures"] == 0


@pytest.fixture
def limited_cloud() -> Iterator[tuple[Emulator, Settings]]:
    """An emulator that allows 10 calls a second, its bucket full from the start like a cloud at rest."""
    with EmulatorServer(Emulator(qps=10)) as server:
        yield server.emulator, Settings(cloud_endpoint=server.endpoint)


def test_the_rate_limiter_keeps_a_burst_under_the_account_qps(
    limited_cloud: tuple[Emulator, Settings],
) -> None:
    """With our limit equal to the cloud's, the cloud never has to throttle, and calls are spaced out."""
    emulator, settings = limited_cloud
    runner = CloudRunner(TokenBucket(10), RetryPolicy(max_attempts=1))
    cloud = Cloud(CloudClients(settings, ROOT_CREDENTIALS), settings, runner=runner)
    began = time.time()
    outcomes = run_all([(str(i), cloud.ram.get_account_alias) for i in range(25)], max_workers=8)

    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert emulator.recorder.actions(outcome="OK") == ["GetAccountAlias"] * 25
    # one token at once, then 24 more at 1/10 s each: the last call cannot reach the cloud before
    # 2.4 s have passed (a lower bound: a slow machine only adds to it, never takes from it)
    assert max(c.started for c in emulator.recorder.calls) - began >= 2.4 - 0.01
    stats = cloud.stats.snapshot()
    assert stats["throttled"] == 0 and stats["rate_limit_wait"] > 0


def test_without_the_limit_the_same_burst_is_throttled(limited_cloud: tuple[Emulator, Settings]) -> None:
    """The control for the test above: the same emulator does throttle the burst when nothing limits it
    (with no time to wait, a throttled call gives up as BudgetExhausted, the cloud's answer its cause)."""
    _, settings = limited_cloud
    runner = CloudRunner(TokenBucket(1000), RetryPolicy(max_attempts=1, max_wait=0.05))
    cloud = Cloud(CloudClients(settings, ROOT_CREDENTIALS), settings, runner=runner)
    outcomes = run_all([(str(i), cloud.ram.get_account_alias) for i in range(25)], max_workers=8)
    refused = [o.error for o in outcomes if not o.ok]
    assert refused and all(isinstance(e, BudgetExhausted) for e in refused)
    assert any(isinstance(e.__cause__, CloudError) and e.__cause__.code == "Throttling.User" for e in refused)
    assert cloud.stats.snapshot()["throttled"] > 0


def test_create_access_key_is_not_retried_after_a_5xx(cloud: Cloud, emulator: Emulator, calls) -> None:
    cloud.ram.create_user("bob")
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})

    with pytest.raises(AmbiguousOutcome) as info:
        cloud.ram.create_access_key("bob")

    error = info.value
    assert (error.code, error.status, error.action, error.retryable) == (
        "InternalError",
        500,
        "CreateAccessKey",
        True,
    )
    assert calls("CreateAccessKey") == ["InternalError"]
    assert len(cloud.ram.list_access_keys("bob")) == 1  # the cloud did act: the flow must find and delete it


def test_create_login_profile_is_not_retried_after_a_5xx(cloud: Cloud, emulator: Emulator, calls) -> None:
    cloud.ram.create_user("bob")
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateLoginProfile"})
    with pytest.raises(AmbiguousOutcome) as info:
        cloud.ram.create_login_profile("bob", "Corr3ct-Horse-Battery")
    assert "Corr3ct-Horse-Battery" not in str(info.value)
    assert calls("CreateLoginProfile") == ["InternalError"]


def test_a_new_password_is_not_repeated_but_other_profile_changes_are(
    cloud: Cloud, emulator: Emulator, calls
) -> None:
    cloud.ram.create_user("bob")
    cloud.ram.create_login_profile("bob", "Corr3ct-Horse-Battery")
    emulator.faults.fail_nth_call(1, when="after", actions={"UpdateLoginProfile"})
    with pytest.raises(AmbiguousOutcome):
        cloud.ram.update_login_profile("bob", password="An0ther-Passw0rd!")
    assert calls("UpdateLoginProfile") == ["InternalError"]

    emulator.faults.fail_nth_call(1, when="after", actions={"UpdateLoginProfile"})
    cloud.ram.update_login_profile("bob", mfa_bind_required=False)
    assert calls("UpdateLoginProfile") == ["InternalError", "InternalError", "OK"]


def test_an_idempotent_read_is_retried_after_a_5xx(cloud: Cloud, emulator: Emulator, calls, sleeps) -> None:
    cloud.ram.create_user("bob")
    emulator.faults.fail_nth_call(1, when="after", actions={"GetUser"})
    user = cloud.ram.get_user("bob")
    assert user is not None and user.name == "bob"
    assert calls("GetUser") == ["InternalError", "OK"]
    assert len(sleeps) == 1


def test_an_idempotent_create_retried_after_a_5xx_reports_the_duplicate(
    cloud: Cloud, emulator: Emulator, calls
) -> None:
    """The first try landed; the retry says so. Flows treat EntityAlreadyExists.User as done."""
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateUser"})
    with pytest.raises(CloudError) as info:
        cloud.ram.create_user("carol")
    assert info.value.code == "EntityAlreadyExists.User"
    assert calls("CreateUser") == ["InternalError", "EntityAlreadyExists.User"]


def test_a_failure_before_acting_is_retried_too(cloud: Cloud, emulator: Emulator, calls) -> None:
    emulator.faults.fail_nth_call(1, when="before", actions={"CreateUser"})
    assert cloud.ram.create_user("carol").name == "carol"
    assert calls("CreateUser") == ["ServiceUnavailable", "OK"]


def test_random_faults_are_ridden_out(make_cloud: Callable[..., Cloud], emulator: Emulator) -> None:
    emulator.faults.fault_rate = 0.3
    emulator.faults._rng.seed(7)
    cloud = make_cloud(max_attempts=10)
    for i in range(10):
        cloud.ram.create_user(f"user-{i}")
    emulator.faults.fault_rate = 0.0
    assert len(cloud.ram.list_users()) == 10
    assert cloud.stats.snapshot()["retries"] > 0


def _slow_ram(endpoint: str, read_timeout_ms: int) -> RamClient:
    host = endpoint.removeprefix("http://")
    return RamClient(
        Config(
            access_key_id=ROOT_CREDENTIALS.access_key_id,
            access_key_secret=ROOT_CREDENTIALS.access_key_secret,
            endpoint=host,
            protocol="http",
            region_id="cn-hangzhou",
            read_timeout=read_timeout_ms,
        )
    )


def test_a_timeout_is_retried_for_reads_and_ambiguous_for_key_creation(
    cloud: Cloud, emulator: Emulator, cloud_settings: Settings, sleeps, calls
) -> None:
    cloud.ram.create_user("dave")
    slow = RamGateway(_slow_ram(cloud_settings.cloud_endpoint or "", 150), cloud.runner)
    emulator.faults.latency_ms = 400

    with pytest.raises(CloudUnreachable) as read:
        slow.get_user("dave")
    assert (read.value.code, read.value.retryable) == ("Timeout", True)
    assert len(sleeps) == cloud.runner.policy.max_attempts - 1

    with pytest.raises(AmbiguousOutcome) as create:
        slow.create_access_key("dave")
    assert create.value.code == "Timeout"

    emulator.faults.latency_ms = 0
    _wait_for(lambda: calls("CreateAccessKey") == ["OK"])  # the server finishes after the client gave up
    assert len(cloud.ram.list_access_keys("dave")) == 1


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_closed_port_is_an_unreachable_cloud(sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(cloud_endpoint=f"http://127.0.0.1:{port}")
    runner = CloudRunner(TokenBucket(1000), RetryPolicy(max_attempts=3), sleep=sleeps)
    cloud = Cloud(CloudClients(settings, ROOT_CREDENTIALS), settings, runner=runner)
    with pytest.raises(CloudUnreachable) as info:
        cloud.ram.get_account_alias()
    assert (info.value.code, info.value.status) == ("ConnectionError", None)
    assert cloud.stats.snapshot()["attempts"] == 3
    with pytest.raises(AmbiguousOutcome):
        cloud.ram.create_access_key("anyone")


def test_cloud_from_settings_shares_the_process_bucket(cloud_settings: Settings) -> None:
    a = Cloud.from_settings(cloud_settings, ROOT_CREDENTIALS)
    b = Cloud.from_settings(cloud_settings, ROOT_CREDENTIALS)
    assert a.runner.limiter is b.runner.limiter
    assert isinstance(a.runner.limiter, TokenBucket)
    assert a.runner.limiter.rate == cloud_settings.rate_limit_qps
    assert a.runner.policy.max_attempts == cloud_settings.max_attempts
    assert a.ram is a.ram and a.ims is a.ims
