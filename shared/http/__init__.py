"""HTTP-triggered functions: an FC 3.0 HTTP event in, a reply out, every failure a reply chosen by its type.

What every HTTP function shares: the reply for an exception comes from the exception's class
(`status`, `code`, see `shared.errors`), never from its message text, and a reply never carries a
stack trace or the message of an unexpected error (it might echo input or a secret).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.errors import CloudError, RamflowError

CLOUD_FAILED = 502  # a cloud API refused or did not answer: the caller's request was fine


@dataclass(frozen=True)
class Failure:
    """What a reply says about an exception."""

    status: int
    code: str
    message: str


def failure_of(exc: BaseException, what: str = "the function") -> Failure:
    """The reply about `exc`, by its type. `what` names the function in 5xx summaries."""
    if isinstance(exc, CloudError):  # its status and code are the cloud's, not the caller's
        return Failure(CLOUD_FAILED, "CloudCallFailed", exc.summary.format(what=what))
    if isinstance(exc, RamflowError):
        return Failure(exc.status or 500, exc.code, exc.public_message(what))
    return Failure(500, "InternalError", f"{what} failed")


def log_failure(log: logging.Logger, request_id: str, exc: BaseException, failure: Failure) -> None:
    """A refusal at info, our own failure at error; an unexpected error by its type only."""
    if failure.status < 500:
        log.info("refused request %s: %d %s", request_id, failure.status, exc)
    elif isinstance(exc, RamflowError):
        log.error("request %s: %d %s: %s", request_id, failure.status, type(exc).__name__, exc)
    else:
        log.error("request %s: unexpected %s", request_id, type(exc).__name__)
