"""Errors carry their HTTP meaning: a reply is chosen by the exception's type, never its text."""

from __future__ import annotations

import pytest

from shared.errors import (
    AssumeRoleFailed,
    AuthenticationFailed,
    BadRequest,
    CloudError,
    ConfigError,
    GuardDenied,
    MissingToken,
    NotEntitled,
    RamflowError,
    StoreError,
    UserBusy,
    ValidationFailed,
)
from shared.http import failure_of


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest("x"), 400, "InvalidParameter"),
        (ValidationFailed([{"field": "f", "reason": "r"}]), 400, "ValidationFailed"),
        (GuardDenied([{"field": "f", "reason": "r"}]), 400, "GuardDenied"),
        (AuthenticationFailed("x"), 401, "InvalidToken"),
        (MissingToken("x"), 401, "MissingToken"),
        (NotEntitled("x"), 403, "NotEntitled"),
        (UserBusy("x"), 409, "UserBusy"),
        (ConfigError("x"), 500, "ConfigError"),
        (AssumeRoleFailed("STS refused the session: NoPermission"), 502, "AssumeRoleFailed"),
        (StoreError("x"), 503, "StoreUnavailable"),
    ],
)
def test_each_error_carries_its_status_and_code(error: RamflowError, status: int, code: str) -> None:
    failure = failure_of(error)
    assert (failure.status, failure.code) == (status, code) == (error.status, error.code)


@pytest.mark.parametrize("text", ["no token: send one", "the token has expired", ""])
def test_the_code_comes_from_the_type_not_the_message(text: str) -> None:
    assert failure_of(MissingToken(text)).code == "MissingToken"
    assert failure_of(AuthenticationFailed(text)).code == "InvalidToken"


def test_a_callers_mistake_is_explained_and_our_failure_is_summarised() -> None:
    assert failure_of(BadRequest("'role' must be a string")).message == "'role' must be a string"
    config = failure_of(ConfigError("RAMFLOW_ENTITLEMENTS=/etc/secret-path is unreadable"), "the vendor")
    assert config.message == "the vendor is misconfigured"
    unexpected = failure_of(RuntimeError("password=hunter2"), "the vendor")
    assert (unexpected.status, unexpected.code, unexpected.message) == (
        500,
        "InternalError",
        "the vendor failed",
    )


def test_a_cloud_error_is_a_502_whatever_the_clouds_status() -> None:
    refused = CloudError("NoPermission", "You are not authorized", action="CreateUser", status=403)
    failure = failure_of(refused, "the ingress")
    assert (failure.status, failure.code) == (502, "CloudCallFailed")
    assert "authorized" not in failure.message
    assert (refused.status, refused.code) == (403, "NoPermission")  # the cloud's answer, kept for logs
