"""Fixtures for the cloud gateways: a `Cloud` over the loopback emulator, with sleeps recorded."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from local.emulator.core import Emulator
from local.testing import ROOT_CREDENTIALS
from shared.cloud import Cloud, CloudRunner, RetryPolicy
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.cloud.ratelimit import TokenBucket
from shared.config import Settings


class Sleeps(list[float]):
    """A stand-in for time.sleep that remembers what it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_cloud(cloud_settings: Settings, sleeps: Sleeps) -> Callable[..., Cloud]:
    """A `Cloud` on the emulator with its own bucket; backoff sleeps are recorded, not slept."""

    def make(
        credentials: CloudCredentials | None = None,
        *,
        qps: float = 1000.0,
        max_attempts: int = 4,
        real_sleep: bool = False,
    ) -> Cloud:
        clients = CloudClients(cloud_settings, credentials or ROOT_CREDENTIALS)
        policy = RetryPolicy(max_attempts=max_attempts)
        runner = CloudRunner(TokenBucket(qps), policy, sleep=time.sleep if real_sleep else sleeps)
        return Cloud(clients, cloud_settings, runner=runner)

    return make


@pytest.fixture
def cloud(make_cloud: Callable[..., Cloud]) -> Cloud:
    return make_cloud()


@pytest.fixture
def calls(emulator: Emulator) -> Callable[[str], list[str]]:
    """The outcomes the emulator answered for one action, in order."""
    return lambda action: [c.outcome for c in emulator.recorder.calls if c.action == action]
