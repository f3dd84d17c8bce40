"""Errors the emulator answers with, shaped like the cloud's: code, message, HTTP status.

Every error code is a class (moto's `exceptions.py` shape): its code, HTTP status and message
template are declared once, on the class, so every action that reaches a rule answers alike. The
errors of one service live in its `exceptions.py`; here are those every service shares (parameters,
authentication, signatures, flow control, faults).
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    """One API error. Rendered as {"RequestId","HostId","Code","Message","Recommend"}."""

    def __init__(self, code: str, message: str, status: int = 400):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")


class DeclaredError(ApiError):
    """An error code declared on its class. `{name}` fields of the code and message templates are
    the constructor's keyword arguments (format syntax, so `{action!r}` works)."""

    code_template: ClassVar[str]
    message_template: ClassVar[str]
    http_status: ClassVar[int] = 400

    def __init__(self, **fields: object) -> None:
        super().__init__(
            self.code_template.format(**fields), self.message_template.format(**fields), self.http_status
        )


# --- parameters (every service) -----------------------------------------------------------------
class MissingParameter(DeclaredError):
    code_template = "MissingParameter"
    message_template = "The input parameter \u201c{name}\u201d that is mandatory for processing this request is not supplied."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class InvalidParameter(DeclaredError):
    """A parameter the emulator checks beyond what the reference documents: the reason says why."""

    code_template = "InvalidParameter.{name}"
    message_template = "The parameter \u201c{name}\u201d is invalid: {reason}"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name=name, reason=reason)


class InvalidVersion(DeclaredError):
    code_template = "InvalidVersion"
    message_template = "Specified parameter Version is not valid: {version!r}."

    def __init__(self, version: str | None) -> None:
        super().__init__(version=version)


class InvalidActionNotFound(DeclaredError):
    code_template = "InvalidAction.NotFound"
    message_template = "Specified api is not found: {action!r}."
    http_status = 404

    def __init__(self, action: str | None) -> None:
        super().__init__(action=action)


# --- authentication and signatures --------------------------------------------------------------
class MissingAuthorization(DeclaredError):
    code_template = "MissingAuthorization"
    message_template = "The request does not carry an Authorization header."


class InvalidAuthorization(DeclaredError):
    """`InvalidAuthorization`: the subclasses say what is wrong with the header."""

    code_template = "InvalidAuthorization"
    message_template = "The Authorization header is malformed."


class UnsupportedSignatureAlgorithm(InvalidAuthorization):
    message_template = "Unsupported signature algorithm: {algorithm}."

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm=algorithm)


class HeadersNotSigned(InvalidAuthorization):
    message_template = "SignedHeaders must include host and the x-acs-* headers."


class ContentSHA256NotMatched(DeclaredError):
    code_template = "ContentSHA256NotMatched"
    message_template = "The x-acs-content-sha256 header does not match the body."


class SignatureDoesNotMatch(DeclaredError):
    code_template = "SignatureDoesNotMatch"
    message_template = "The request signature does not conform to Aliyun standards."


class InvalidAccessKeyIdNotFound(DeclaredError):
    code_template = "InvalidAccessKeyId.NotFound"
    message_template = "Specified access key is not found: {key_id}"
    http_status = 404

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id=key_id)


class InvalidAccessKeyIdInactive(DeclaredError):
    code_template = "InvalidAccessKeyId.Inactive"
    message_template = "Specified access key is disabled: {key_id}"

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id=key_id)


class MissingSecurityToken(DeclaredError):
    code_template = "MissingSecurityToken"
    message_template = "The security token is required for STS credentials."


class InvalidSecurityTokenMismatchWithAccessKey(DeclaredError):
    code_template = "InvalidSecurityToken.MismatchWithAccessKey"
    message_template = "The security token does not match the access key."


class InvalidSecurityTokenExpired(DeclaredError):
    code_template = "InvalidSecurityToken.Expired"
    message_template = "Specified SecurityToken is expired."


class InvalidTimeStampFormat(DeclaredError):
    code_template = "InvalidTimeStamp.Format"
    message_template = "Specified time stamp or date value is not well formatted."


class InvalidTimeStampExpired(DeclaredError):
    code_template = "InvalidTimeStamp.Expired"
    message_template = "Specified time stamp or date value is expired."


class SignatureNonceUsed(DeclaredError):
    code_template = "SignatureNonceUsed"
    message_template = "Specified signature nonce was used already."


class NoPermission(DeclaredError):
    """A policy does not allow the call (enforcement)."""

    code_template = "NoPermission"
    message_template = "You are not authorized to do this action. Action: {action}, Resource: {resource}"
    http_status = 403

    def __init__(self, action: str, resource: str) -> None:
        super().__init__(action=action, resource=resource)


# --- tags: the same rules in IMS's and ResourceManager's TagResources ------------------------


class InvalidTagKey(DeclaredError):
    code_template = "InvalidParameter.TagKey"
    message_template = "The Tag.N.Key parameter is invalid."


class InvalidTagValue(DeclaredError):
    code_template = "InvalidParameter.TagValue"
    message_template = "The Tag.N.Value parameter is invalid."


class DuplicateTagKey(DeclaredError):
    code_template = "Duplicate.TagKey"
    message_template = "The Tag.N.Key contains duplicate keys."


# --- flow control and faults --------------------------------------------------------------------
class Throttling(DeclaredError):
    code_template = "Throttling.User"
    message_template = "Request was denied due to user flow control."


class ServiceUnavailable(DeclaredError):
    code_template = "ServiceUnavailable"
    message_template = "The request has failed due to a temporary failure of the server."
    http_status = 503


class InternalError(DeclaredError):
    code_template = "InternalError"
    message_template = "The request processing has failed due to some unknown error."
    http_status = 500
