"""Error mapping: SDK and transport failures become ramflow errors that never echo a parameter."""

from __future__ import annotations

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError
from darabonba.policy.retry import RetryPolicyContext
from Tea.exceptions import UnretryableException

from shared.cloud.errors import map_error
from shared.errors import CloudError, CloudUnreachable, EntityAlreadyExists, EntityNotFound

SECRET = "Pa55word-that-must-never-show"


def client_error(code: str, status: int = 400) -> ClientException:
    return ClientException(
        status_code=status,
        code=code,
        message=f"code: {status}, the parameter Password={SECRET} is invalid request id: REQ-1",
        data={"Code": code, "Message": f"Password={SECRET}", "RequestId": "REQ-1"},
        request_id="REQ-1",
    )


def transport_error(cause: Exception) -> UnretryableException:
    """What the SDK raises when `requests` failed: the cause inside a RetryError inside the wrapper."""
    try:
        try:
            raise cause
        except OSError as exc:
            raise RetryError(str(exc))  # noqa: B904 - darabonba keeps the cause as the context, like this
    except RetryError as retry_error:
        return UnretryableException(request=None, ex=retry_error)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("EntityNotExist.User", 404, EntityNotFound),
        ("EntityNotExist.User.LoginProfile", 404, EntityNotFound),
        ("EntityNotExists.PolicyAttachment", 404, EntityNotFound),
        ("NotFound.ResourceGroup", 404, EntityNotFound),
        ("EntityAlreadyExists.User", 409, EntityAlreadyExists),
        ("EntityAlreadyExists.User.Policy", 409, EntityAlreadyExists),
        ("InvalidAccessKeyId.NotFound", 404, CloudError),
        ("DeleteConflict.User.AccessKey", 409, CloudError),
    ],
)
def test_codes_map_to_their_kind(code: str, status: int, kind: type[CloudError]) -> None:
    error = map_error(client_error(code, status), "GetUser")
    assert type(error) is kind
    assert (error.code, error.status, error.action, error.request_id) == (code, status, "GetUser", "REQ-1")
    assert not error.retryable


def test_message_is_rebuilt_without_the_sdk_text() -> None:
    error = map_error(client_error("InvalidParameter.Password"), "CreateLoginProfile")
    assert error is not None
    assert SECRET not in str(error) and SECRET not in repr(error)
    assert str(error) == "CreateLoginProfile: InvalidParameter.Password: HTTP 400, request REQ-1"


def test_throttling_and_server_errors_are_retryable() -> None:
    throttled = map_error(
        ThrottlingException(status_code=400, code="Throttling.User", retry_after=200, request_id="R"),
        "ListUsers",
    )
    server = map_error(
        ServerException(status_code=503, code="ServiceUnavailable", request_id="R"), "ListUsers"
    )
    assert throttled is not None and throttled.retryable
    assert server is not None and server.retryable and server.status == 503


def test_the_unretryable_wrapper_around_an_answer_is_unwrapped() -> None:
    wrapped = UnretryableException(request=None, ex=client_error("EntityNotExist.User", 404))
    assert isinstance(map_error(wrapped, "GetUser"), EntityNotFound)


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (requests.ReadTimeout("HTTPConnectionPool: Read timed out. url: /?Password=" + SECRET), "Timeout"),
        (requests.ConnectTimeout("connect timed out /?Password=" + SECRET), "Timeout"),
        (requests.ConnectionError("Connection refused /?Password=" + SECRET), "ConnectionError"),
    ],
)
def test_transport_failures_are_unreachable_and_retryable(cause: Exception, code: str) -> None:
    error = map_error(transport_error(cause), "CreateLoginProfile")
    assert isinstance(error, CloudUnreachable)
    assert (error.code, error.status, error.retryable) == (code, None, True)
    assert SECRET not in str(error)


def test_darabonba_unretryable_reraises_answers_itself() -> None:
    from darabonba.exceptions import UnretryableException as DaraUnretryable

    answer = client_error("EntityNotExist.Role", 404)
    with pytest.raises(ClientException) as info:
        DaraUnretryable(RetryPolicyContext(retries_attempted=1, exception=answer))
    assert isinstance(map_error(info.value, "AssumeRole"), EntityNotFound)


def test_other_exceptions_are_not_cloud_errors() -> None:
    assert map_error(ValueError("a bug"), "GetUser") is None
    assert map_error(KeyError("x"), "GetUser") is None
