"""Turn what the SDK raises into ramflow's cloud errors.

SDK messages may echo request parameters (a password, a policy document), and transport errors
carry the request URL, so the message is rebuilt from the code, the action and the request id only.
"""

from __future__ import annotations

import requests
from darabonba.exceptions import RetryError as DaraRetryError
from Tea.exceptions import RetryError as TeaRetryError
from Tea.exceptions import TeaException, UnretryableException

from shared.errors import CloudError, CloudUnreachable, EntityAlreadyExists, EntityNotFound

# What darabonba raises when `requests` got no answer (it keeps the original as __context__).
TRANSPORT_ERRORS = (DaraRetryError, TeaRetryError, requests.RequestException, ConnectionError, TimeoutError)

# RAM, IMS and STS say "EntityNotExist.User"; ResourceManager also uses "EntityNotExists.…",
# "NotExist.…" and "NotFound.…" (e.g. NotFound.ResourceGroup). "InvalidAccessKeyId.NotFound" is an
# authentication failure, not a missing entity, and stays a plain CloudError.
NOT_FOUND_PREFIXES = ("EntityNotExist", "NotExist.", "NotFound.")
ALREADY_EXISTS_PREFIXES = ("EntityAlreadyExist", "AlreadyExist.", "AlreadyExists.")


def map_error(exc: BaseException, action: str) -> CloudError | None:
    """The ramflow error for an SDK or transport failure of `action`; None for anything else."""
    if isinstance(exc, CloudError):
        return exc
    if isinstance(exc, UnretryableException):
        inner = exc.inner_exception
        if isinstance(inner, TeaException):
            return _answered(inner, action)
        return _unreachable(inner, action)
    if isinstance(exc, TeaException):
        return _answered(exc, action)
    if isinstance(exc, TRANSPORT_ERRORS):
        return _unreachable(exc, action)
    return None


def _answered(exc: TeaException, action: str) -> CloudError:
    """The cloud answered with an error code."""
    code = str(exc.code or "Unknown")
    status = _status(exc)
    request_id = _request_id(exc)
    message = f"HTTP {status}" if status is not None else "no HTTP status"
    if request_id:
        message += f", request {request_id}"
    kind = (
        EntityNotFound
        if code.startswith(NOT_FOUND_PREFIXES)
        else EntityAlreadyExists
        if code.startswith(ALREADY_EXISTS_PREFIXES)
        else CloudError
    )
    return kind(code, message, action=action, status=status, request_id=request_id)


def _unreachable(exc: BaseException | None, action: str) -> CloudUnreachable:
    """No answer: darabonba wraps the `requests` error in a RetryError, keeping it as the context."""
    wrapped = isinstance(exc, DaraRetryError | TeaRetryError)
    context = exc.__context__ if exc is not None else None
    cause = context if wrapped and context is not None else exc
    is_timeout = isinstance(cause, requests.Timeout | TimeoutError) or (
        wrapped and "timed out" in str(getattr(exc, "message", "")).lower()
    )
    code = "Timeout" if is_timeout else "ConnectionError"
    return CloudUnreachable(code, "no answer from the cloud endpoint", action=action)


def _status(exc: TeaException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    if status is None and isinstance(exc.data, dict):
        status = exc.data.get("statusCode")
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _request_id(exc: TeaException) -> str | None:
    request_id = getattr(exc, "request_id", None)
    if (not request_id or request_id == "None") and isinstance(exc.data, dict):
        request_id = exc.data.get("RequestId") or exc.data.get("requestId")
    return str(request_id) if request_id and request_id != "None" else None
