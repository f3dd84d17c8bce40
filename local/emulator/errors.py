"""Errors the emulator answers with, shaped like the cloud's: code, message, HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    """One API error. Rendered as {"RequestId","HostId","Code","Message","Recommend"}."""

    def __init__(self, code: str, message: str, status: int = 400):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")


def missing(name: str) -> ApiError:
    return ApiError(
        "MissingParameter",
        f"The input parameter \u201c{name}\u201d that is mandatory for processing "
        "this request is not supplied.",
    )


def invalid(name: str, reason: str) -> ApiError:
    return ApiError(f"InvalidParameter.{name}", f"The parameter \u201c{name}\u201d is invalid: {reason}")


def not_found(entity: str, name: str) -> ApiError:
    return ApiError(f"EntityNotExist.{entity}", f"The {entity.lower()} does not exist: {name}.", 404)


def already_exists(entity: str, name: str) -> ApiError:
    return ApiError(f"EntityAlreadyExists.{entity}", f"The {entity.lower()} already exists: {name}.", 409)


def delete_conflict(entity: str, leftover: str, detail: str) -> ApiError:
    return ApiError(f"DeleteConflict.{entity}.{leftover}", detail, 409)


def limit_exceeded(what: str, detail: str) -> ApiError:
    return ApiError(f"LimitExceeded.{what}", detail, 409)


# Authentication and service-level errors, as the cloud names them.
def unknown_access_key(key_id: str) -> ApiError:
    return ApiError("InvalidAccessKeyId.NotFound", f"Specified access key is not found: {key_id}", 404)


def inactive_access_key(key_id: str) -> ApiError:
    return ApiError("InvalidAccessKeyId.Inactive", f"Specified access key is disabled: {key_id}", 400)


def signature_mismatch() -> ApiError:
    return ApiError(
        "SignatureDoesNotMatch", "The request signature does not conform to Aliyun standards.", 400
    )


def throttled() -> ApiError:
    return ApiError("Throttling.User", "Request was denied due to user flow control.", 400)


def service_unavailable() -> ApiError:
    return ApiError(
        "ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503
    )


def internal_error() -> ApiError:
    return ApiError("InternalError", "The request processing has failed due to some unknown error.", 500)


def no_permission(action: str, resource: str) -> ApiError:
    return ApiError(
        "NoPermission",
        f"You are not authorized to do this action. Action: {action}, Resource: {resource}",
        403,
    )
