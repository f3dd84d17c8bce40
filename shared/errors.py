"""Every exception ramflow raises, in one place.

Each class carries the HTTP `status` and the error `code` a caller is told about it, as the
Powertools event handler's `ServiceError` does
(https://docs.powertools.aws.dev/lambda/python/latest/core/event_handler/api_gateway/#raising-http-errors):
an HTTP function maps an exception to its reply by type (`shared.http`), never by its message.
A reply shows the message of a 4xx error (it tells the caller what to fix) and only `summary` of a
5xx one. Messages never carry a secret: callers pass names, codes and field paths only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from shared.models.results import Result


class RamflowError(Exception):
    """Base of every ramflow error."""

    status: int | None = 500
    code: str = "InternalError"
    summary: ClassVar[str] = "{what} failed"

    def public_message(self, what: str = "the function") -> str:
        """What a reply may say: the message of a caller's mistake, a summary of ours (`what`
        names the function)."""
        status = self.status or 500
        return str(self) if status < 500 else self.summary.format(what=what)


class ConfigError(RamflowError):
    """Settings, the catalog or the entitlements are missing or malformed."""

    code = "ConfigError"
    summary = "{what} is misconfigured"


class BadRequest(RamflowError):
    """The request's parameters are invalid (HTTP 400)."""

    status = 400
    code = "InvalidParameter"


class ValidationFailed(BadRequest):
    """Input was rejected before any cloud call; `errors` lists field and reason."""

    code = "ValidationFailed"

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class GuardDenied(ValidationFailed):
    """The safety rules refuse the request (deny by default, break-glass, approvers)."""

    code = "GuardDenied"


class CloudError(RamflowError):
    """A cloud API answered with an error. `code` and `status` are the API's (status None: no
    answer); an HTTP reply about it is 502 (`shared.http`), never the cloud's status."""

    summary = "{what} could not complete a cloud call"

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        action: str = "",
        status: int | None = None,
        request_id: str | None = None,
    ):
        self.code = code
        self.action = action
        self.status = status
        self.request_id = request_id
        super().__init__(f"{action}: {code}: {message}" if action else f"{code}: {message}")

    @property
    def retryable(self) -> bool:
        return (
            self.code.startswith("Throttling")
            or self.code in {"ServiceUnavailable", "InternalError"}
            or (self.status is not None and self.status >= 500)
        )


class EntityNotFound(CloudError):
    """The thing named does not exist (EntityNotExist.*)."""


class EntityAlreadyExists(CloudError):
    """The thing named exists already (EntityAlreadyExists.*)."""


class StoreError(RamflowError):
    """The state store failed or refused a write."""

    status = 503
    code = "StoreUnavailable"
    summary = "{what} could not reach its state store; retry later"


class LeaseLost(StoreError):
    """This invocation no longer holds the lease it tries to complete or release."""


class AuthenticationFailed(RamflowError):
    """A caller's token or signature did not verify (HTTP 401)."""

    status = 401
    code = "InvalidToken"


class MissingToken(AuthenticationFailed):
    """The caller sent no token at all (HTTP 401)."""

    code = "MissingToken"


class NotEntitled(RamflowError):
    """The caller is authenticated but not allowed what it asked (HTTP 403)."""

    status = 403
    code = "NotEntitled"


class AssumeRoleFailed(RamflowError):
    """STS refused the session the token vendor asked for (HTTP 502): the caller may retry later."""

    status = 502
    code = "AssumeRoleFailed"

    def public_message(self, what: str = "the function") -> str:
        return str(self)  # names the STS error code only, never a secret


class SealedSecretUnreadable(RamflowError):
    """A sealed secret did not open: the private key is wrong or the ciphertext was altered."""

    status = 400
    code = "SealedSecretUnreadable"


class CloudUnreachable(CloudError):
    """No answer came back (timeout, refused or dropped connection): the call may or may not have acted."""

    @property
    def retryable(self) -> bool:
        return True


class AmbiguousOutcome(CloudError):
    """A call that is not idempotent at the cloud failed after it may have taken effect.

    It is never repeated blindly: the caller finds out what happened (e.g. lists the user's
    AccessKeys) before trying again. `code` and `status` are those of the failure that hid the outcome.
    """

    @property
    def retryable(self) -> bool:
        return True


class RecordNotFound(StoreError):
    """The ledger holds no record under that id."""

    status = 404
    code = "RecordNotFound"


class RotationRefused(RamflowError):
    """This user's AccessKey cannot be rotated (no managed programmatic key, no delivery key)."""


class UserBusy(RamflowError):
    """Another invocation holds this user's lock; the event is retried later, not dropped."""

    status = 409
    code = "UserBusy"


class PolicyContentMismatch(RamflowError):
    """A custom policy with ramflow's content-derived name exists but holds another document."""

    status = 409
    code = "PolicyContentMismatch"


class NeedsHuman(RamflowError):
    """The named RAM user exists but ramflow does not manage it: a person must decide."""

    status = 409
    code = "NeedsHuman"


class FlowFailed(RamflowError):
    """The flow stopped on a cloud or store failure; the event may be replayed to finish the job.

    Raised out of the handler so that FC / EventBridge retries it; `result` is what was done.
    """

    status = 503
    code = "FlowFailed"
    summary = "{what} stopped before it finished; retry"

    def __init__(self, result: Result, *, retryable: bool = True):
        self.result = result
        self.retryable = retryable
        super().__init__("; ".join(e.reason for e in result.errors) or "flow failed")


class InvokeDenied(RamflowError):
    """The local FC runtime refuses an invocation: 401 (unsigned) or 403 (unknown key, bad signature)."""

    status: int

    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    def public_message(self, what: str = "the function") -> str:
        return self.message


class DeliveryFailed(RamflowError):
    """One attempt to deliver a result or a notice failed; the reason is a status or an error type."""


class BudgetExhausted(CloudError):
    """The account's API budget has no call for this one before the invocation must end (or the
    cloud kept throttling it). Nothing was sent: the event is retried later, never left `partial`."""

    def __init__(self, action: str, wait: float):
        self.wait = wait
        super().__init__(
            "Throttling.Budget", f"no API budget within the time left (next in {wait:.1f} s)", action=action
        )

    @property
    def retryable(self) -> bool:
        return True


class OutOfScope(CloudError):
    """A write on a user outside the managed-user prefix: refused by ramflow before any cloud call."""

    def __init__(self, user_name: str, action: str, prefix: str):
        super().__init__(
            "Ramflow.UnmanagedUser",
            f"{user_name!r} does not start with the managed-user prefix {prefix!r}",
            action=action,
        )
