"""The vend flow on its own: order of checks, the cache and its margin, single flight, session names."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from local.dev import DEV_ENTITLEMENTS
from shared.entitlements import Entitlements
from shared.errors import AssumeRoleFailed, AuthenticationFailed, CloudError, NotEntitled
from shared.flows.vend import TokenVendor, VendRequest, session_name_for
from tests.vendor.conftest import Mint


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCredentials:
    access_key_id: str
    access_key_secret: SecretStr
    security_token: SecretStr
    expiration: datetime


@dataclass
class FakeSts:
    """Answers AssumeRole like StsGateway, counting calls; optionally slow or failing."""

    clock: Clock
    delay: float = 0.0
    fail: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        duration_seconds: int = 3600,
        policy: dict[str, Any] | None = None,
        external_id: str | None = None,
    ) -> FakeCredentials:
        with self.lock:
            self.calls.append(
                {
                    "role_arn": role_arn,
                    "session": session_name,
                    "duration": duration_seconds,
                    "policy": policy,
                    "external_id": external_id,
                }
            )
            n = len(self.calls)
        time.sleep(self.delay)
        if self.fail:
            raise CloudError("ServiceUnavailable", "HTTP 503", action="AssumeRole", status=503)
        expires = datetime.fromtimestamp(int(self.clock() + duration_seconds), timezone.utc)
        return FakeCredentials(f"STS.KEY{n}", SecretStr(f"secret-{n}"), SecretStr(f"token-{n}"), expires)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sts(clock: Clock) -> FakeSts:
    return FakeSts(clock)


@pytest.fixture
def vendor(jwks: dict[str, Any], clock: Clock) -> TokenVendor:
    raw = yaml.safe_load(DEV_ENTITLEMENTS.read_text())
    raw.pop("jwks_file")
    raw["jwks"] = jwks
    return TokenVendor(Entitlements.from_dict(raw), clock=clock)


def test_vend_assumes_the_role_with_session_policy_and_external_id(
    vendor: TokenVendor, sts: FakeSts, mint: Mint
) -> None:
    outcome = vendor.vend(VendRequest(mint("ops-app"), "kafka-operator", "7200"), lambda: sts)

    assert sts.calls == [
        {
            "role_arn": "acs:ram::5123456789012345:role/ramflow-kafka-operator",
            "session": "ops-app",
            "duration": 7200,
            "policy": vendor.entitlements.roles["kafka-operator"].session_policy,
            "external_id": "ramflow-dev-ops",
        }
    ]
    body = outcome.credentials.body()
    assert (
        body["Code"] == "Success"
        and body["AccessKeySecret"] == "secret-1"
        and body["SecurityToken"] == "token-1"
    )
    assert "secret-1" not in repr(outcome) and "token-1" not in repr(outcome)


def test_refusals_never_build_an_sts_client(vendor: TokenVendor, mint: Mint) -> None:
    def no_sts() -> Any:
        raise AssertionError("STS must not be reached")

    with pytest.raises(AuthenticationFailed):
        vendor.vend(VendRequest(None), no_sts)
    with pytest.raises(NotEntitled):
        vendor.vend(VendRequest(mint("demo-app"), "kafka-operator"), no_sts)


def test_cache_until_expiry_minus_margin(vendor: TokenVendor, sts: FakeSts, clock: Clock, mint: Mint) -> None:
    first = vendor.vend(VendRequest(mint()), lambda: sts)
    clock.now += 3600 - 1200 - 1  # 1201 s left: still above the 1200 s margin
    second = vendor.vend(VendRequest(mint()), lambda: sts)
    clock.now += 2  # 1199 s left
    third = vendor.vend(VendRequest(mint()), lambda: sts)

    assert (first.cached, second.cached, third.cached) == (False, True, False)
    assert second.credentials == first.credentials
    assert third.credentials.access_key_id == "STS.KEY2"
    assert len(sts.calls) == 2


def test_cache_never_serves_longer_than_asked(vendor: TokenVendor, sts: FakeSts, mint: Mint) -> None:
    vendor.vend(VendRequest(mint(), duration=3600), lambda: sts)
    short = vendor.vend(VendRequest(mint(), duration=900), lambda: sts)

    assert not short.cached and sts.calls[-1]["duration"] == 900
    # …and a 900 s session has a margin of half its life, so it is served from cache at first.
    assert vendor.vend(VendRequest(mint(), duration=900), lambda: sts).cached


def test_cache_keys_on_app_and_role(vendor: TokenVendor, sts: FakeSts, mint: Mint) -> None:
    vendor.vend(VendRequest(mint("demo-app")), lambda: sts)
    vendor.vend(VendRequest(mint("ops-app"), "kafka-reader"), lambda: sts)
    vendor.vend(VendRequest(mint("ops-app"), "kafka-operator"), lambda: sts)
    vendor.vend(VendRequest(mint("ops-app"), "kafka-operator"), lambda: sts)
    assert len(sts.calls) == 3


def test_failures_are_not_cached(vendor: TokenVendor, sts: FakeSts, mint: Mint) -> None:
    sts.fail = True
    with pytest.raises(AssumeRoleFailed) as refused:
        vendor.vend(VendRequest(mint()), lambda: sts)
    assert (refused.value.status, refused.value.code) == (502, "AssumeRoleFailed")
    assert isinstance(refused.value.__cause__, CloudError)
    sts.fail = False
    assert not vendor.vend(VendRequest(mint()), lambda: sts).cached
    assert len(sts.calls) == 2


def test_concurrent_misses_make_one_call(vendor: TokenVendor, sts: FakeSts, mint: Mint) -> None:
    sts.delay = 0.2
    token = mint()
    barrier = threading.Barrier(16)
    keys: list[str] = []

    def ask() -> None:
        barrier.wait()
        keys.append(vendor.vend(VendRequest(token), lambda: sts).credentials.access_key_id)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert keys == ["STS.KEY1"] * 16
    assert len(sts.calls) == 1


def test_misses_for_different_keys_do_not_wait_for_each_other(
    vendor: TokenVendor, sts: FakeSts, mint: Mint
) -> None:
    """Each AssumeRole waits until the other one has started: had the vendor made one miss wait for
    the other's call, the first would wait alone and the rendezvous would break."""
    both_inside = threading.Barrier(2, timeout=10)
    met: list[bool] = []

    class Rendezvous:
        def assume_role(self, *args: Any, **kwargs: Any) -> FakeCredentials:
            try:
                both_inside.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
            return sts.assume_role(*args, **kwargs)

    threads = [
        threading.Thread(target=vendor.vend, args=(VendRequest(tok, "kafka-reader"), Rendezvous))
        for tok in (mint("demo-app"), mint("ops-app"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert met == [True, True]
    assert len(sts.calls) == 2


@pytest.mark.parametrize(
    ("sub", "expected"),
    [
        ("demo-app", "demo-app"),
        ("svc@payments.example.com", "svc@payments.example.com"),
        ("a_b.c-d", "a_b.c-d"),
    ],
)
def test_session_names_kept_when_valid(sub: str, expected: str) -> None:
    assert session_name_for(sub) == expected


@pytest.mark.parametrize("sub", ["x", "spiffe://prod/ns/app", "app name", "é" * 10, "a" * 65, "a" * 200])
def test_session_names_sanitised(sub: str) -> None:
    name = session_name_for(sub)
    assert 2 <= len(name) <= 64
    assert all(c.isascii() and (c.isalnum() or c in ".@_-") for c in name)


def test_sanitised_names_stay_distinct() -> None:
    assert session_name_for("team/app") != session_name_for("team:app")
    assert session_name_for("a" * 70 + "1") != session_name_for("a" * 70 + "2")
