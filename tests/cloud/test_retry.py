"""The runner's decisions: what is retried, what is not, and what the caller is told."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

from shared.cloud.ratelimit import TokenBucket
from shared.cloud.retry import CloudRunner, RetryPolicy
from shared.errors import AmbiguousOutcome, CloudError, CloudUnreachable, EntityNotFound

SECRET = "AccessKeySecret-never-shown"


def throttled(retry_after: int | None = None) -> ThrottlingException:
    return ThrottlingException(
        status_code=400, code="Throttling.User", retry_after=retry_after, request_id="R"
    )


def server_error() -> ServerException:
    return ServerException(status_code=500, code="InternalError", message=f"echo {SECRET}", request_id="R")


def timeout() -> requests.ReadTimeout:
    return requests.ReadTimeout(f"Read timed out /?Secret={SECRET}")


def not_found() -> ClientException:
    return ClientException(status_code=404, code="EntityNotExist.User", request_id="R")


class Script:
    """An SDK call that fails with the given exceptions, in turn, then answers 'done'."""

    def __init__(self, *failures: Exception):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def runner(sleeps: list[float]) -> CloudRunner:
    return CloudRunner(TokenBucket(1e6), RetryPolicy(max_attempts=4), sleep=sleeps.append, rand=lambda: 1.0)


def test_throttling_is_retried_with_growing_backoff(runner: CloudRunner, sleeps: list[float]) -> None:
    call = Script(throttled(), throttled(), throttled())
    assert runner.call("ListUsers", call) == "done"
    assert call.calls == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    stats = runner.stats.snapshot()
    assert (stats["calls"], stats["attempts"], stats["retries"], stats["throttled"]) == (1, 4, 3, 3)
    assert stats["attempts_by_action"] == {"ListUsers": 4}


@pytest.mark.parametrize("action", ["CreateAccessKey", "CreateLoginProfile", "GetUser"])
def test_throttling_is_retried_even_for_calls_that_are_not_idempotent(
    runner: CloudRunner, action: str
) -> None:
    call = Script(throttled())
    assert runner.call(action, call) == "done"
    assert call.calls == 2


@pytest.mark.parametrize("failure", [server_error, timeout])
def test_ambiguous_failures_are_retried_for_idempotent_calls(runner: CloudRunner, failure: Callable) -> None:
    call = Script(failure(), failure())
    assert runner.call("DeleteUser", call) == "done"
    assert call.calls == 3


@pytest.mark.parametrize(
    ("failure", "code", "status"), [(server_error, "InternalError", 500), (timeout, "Timeout", None)]
)
@pytest.mark.parametrize("action", ["CreateAccessKey", "CreateLoginProfile"])
def test_ambiguous_failures_are_not_retried_for_creates_that_mint_secrets(
    runner: CloudRunner, sleeps: list[float], failure: Callable, code: str, status: int | None, action: str
) -> None:
    call = Script(failure())
    with pytest.raises(AmbiguousOutcome) as info:
        runner.call(action, call)
    assert call.calls == 1 and sleeps == []
    error = info.value
    assert (error.code, error.status, error.action, error.retryable) == (code, status, action, True)
    assert runner.stats.snapshot()["ambiguous"] == 1


def test_the_last_error_is_raised_once_attempts_run_out(runner: CloudRunner) -> None:
    call = Script(*(timeout() for _ in range(10)))
    with pytest.raises(CloudUnreachable) as info:
        runner.call("GetUser", call)
    assert call.calls == 4
    assert info.value.code == "Timeout"
    assert runner.stats.snapshot()["failures"] == 1


def test_client_errors_are_not_retried(runner: CloudRunner) -> None:
    call = Script(not_found())
    with pytest.raises(EntityNotFound):
        runner.call("GetUser", call)
    assert call.calls == 1


def test_other_exceptions_pass_through_untouched(runner: CloudRunner) -> None:
    call = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        runner.call("GetUser", call)
    assert call.calls == 1


def test_the_cloud_retry_after_hint_is_a_floor(runner: CloudRunner, sleeps: list[float]) -> None:
    runner.call("ListUsers", Script(throttled(retry_after=700)))
    assert sleeps == pytest.approx([0.7])


def test_full_jitter_stays_under_the_capped_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=5.0)
    assert policy.backoff(1, 0.0) == 0.0
    assert policy.backoff(3, 0.5) == pytest.approx(0.2)
    assert policy.backoff(12, 1.0) == 5.0
    assert policy.backoff(1, 0.1, retry_after=60) == 5.0


def test_raised_errors_carry_no_sdk_text(runner: CloudRunner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CloudError) as info:
        runner.call("GetUser", Script(*(server_error() for _ in range(4))))
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered and SECRET not in repr(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert "retrying GetUser after InternalError" in caplog.text
    assert SECRET not in caplog.text
