"""Every exception ramflow raises, in one place.

Messages never carry a secret: callers pass names, codes and field paths only.
"""

from __future__ import annotations


class RamflowError(Exception):
    """Base of every ramflow error."""


class ConfigError(RamflowError):
    """Settings, the catalog or the entitlements are missing or malformed."""


class ValidationFailed(RamflowError):
    """Input was rejected before any cloud call; `errors` lists field and reason."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class GuardDenied(ValidationFailed):
    """The safety rules refuse the request (deny by default, break-glass, approvers)."""


class CloudError(RamflowError):
    """A cloud API answered with an error. `code` is the API's error code."""

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


class IdempotencyConflict(StoreError):
    """The same idempotency key arrived with a different payload."""


class IdempotencyInProgress(StoreError):
    """Another invocation holds the lease for this idempotency key."""


class LeaseLost(StoreError):
    """This invocation no longer holds the lease it tries to complete or release."""


class AuthenticationFailed(RamflowError):
    """A caller's token or signature did not verify (HTTP 401)."""


class NotEntitled(RamflowError):
    """The caller is authenticated but not allowed what it asked (HTTP 403)."""


class BadRequest(RamflowError):
    """The request's parameters are invalid (HTTP 400)."""


class SealedSecretUnreadable(RamflowError):
    """A sealed secret did not open: the private key is wrong or the ciphertext was altered."""


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


class RotationRefused(RamflowError):
    """This user's AccessKey cannot be rotated (no managed programmatic key, no delivery key)."""


class UserBusy(RamflowError):
    """Another invocation holds this user's lock; the event is retried later, not dropped."""


class PolicyContentMismatch(RamflowError):
    """A custom policy with ramflow's content-derived name exists but holds another document."""


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
