"""Who may invoke: the FC API signatures, checked as the cloud checks them.

- 2016-08-15 (`aliyun-fc2`): `Authorization: FC <AccessKeyId>:<base64 HMAC-SHA256>` over the method,
  Content-MD5, Content-Type, Date, the sorted `x-fc-*` headers and the unescaped path (plus sorted
  `key=value` lines of the query when there is one), as `fc2/auth.py` builds it.
- 2023-03-30 (the v3 SDKs): ACS3-HMAC-SHA256, verified by the emulator's own `authenticate`.

The secret behind an AccessKeyId comes from a `KeyResolver`: the in-process emulator (root keys, RAM
users' keys, STS sessions) or, against a remote cloud, a fixed table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import unquote

from local.emulator.auth import parse_authorization
from local.emulator.core import Emulator, EmulatorRequest
from local.emulator.errors import ApiError
from shared.errors import InvokeDenied

DATE_SKEW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Caller:
    """Who signed an invocation (never their secret); the emulator's account and principal, if known."""

    access_key_id: str
    arn: str
    account: Any = field(default=None, compare=False, repr=False)
    principal: Any = field(default=None, compare=False, repr=False)


class KeyResolver(Protocol):
    def secret(self, access_key_id: str, security_token: str | None) -> tuple[str, Caller]: ...

    def authenticate_acs3(self, request: EmulatorRequest) -> Caller: ...

    def authorize_invoke(self, caller: Caller, function_arn: str) -> None: ...


def _denied(err: ApiError) -> InvokeDenied:
    status = 401 if err.code.startswith("Missing") and "Authorization" in err.code else 403
    return InvokeDenied(status, err.code, err.message)


class EmulatorKeys:
    """Keys the emulator knows: its accounts' root keys, RAM users' keys and live STS sessions."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    def secret(self, access_key_id: str, security_token: str | None) -> tuple[str, Caller]:
        try:
            secret, account, principal = self.emulator.resolve_key(access_key_id, security_token)
        except ApiError as err:
            raise _denied(err) from None
        return secret, Caller(access_key_id, principal.arn, account, principal)

    def authenticate_acs3(self, request: EmulatorRequest) -> Caller:
        try:
            account, principal = self.emulator.authenticate(request)
        except ApiError as err:
            raise _denied(err) from None
        return Caller(principal.access_key_id, principal.arn, account, principal)

    def authorize_invoke(self, caller: Caller, function_arn: str) -> None:
        """With the emulator's enforcement on, the caller's policies must allow fc:InvokeFunction on
        `acs:fc:<region>:<account>:functions/<name>`, as FC 3.0 checks it."""
        authorize = getattr(self.emulator.authorizer, "authorize", None)
        if authorize is None or caller.principal is None:
            return
        try:
            authorize(caller.account, caller.principal, "fc:InvokeFunction", [function_arn], {}, time.time())
        except ApiError as err:
            raise InvokeDenied(403, err.code, err.message) from None


@dataclass(frozen=True)
class IssuedSession:
    """An STS session this runtime handed one of its functions (FC gives each its role's session),
    with what that role's policy lets it invoke (the remote cloud's policies are not readable here)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    role_arn: str
    expires_at: float
    may_invoke: tuple[str, ...] = ()


class StaticKeys:
    """A fixed table of AccessKeys, for a runtime whose cloud is elsewhere, plus the sessions the
    runtime itself handed its functions (so one function may invoke another, as webhook-ingress does)."""

    def __init__(
        self,
        keys: Mapping[str, str],
        account_id: str = "",
        sessions: Callable[[], Iterable[IssuedSession]] = tuple,
        clock: Callable[[], float] = time.time,
    ):
        self._keys = dict(keys)
        self._account_id = account_id
        self._sessions = sessions
        self._clock = clock
        self._nonces: set[str] = set()

    def _session(self, access_key_id: str) -> IssuedSession | None:
        return next((s for s in self._sessions() if s.access_key_id == access_key_id), None)

    def secret(self, access_key_id: str, security_token: str | None) -> tuple[str, Caller]:
        secret = self._keys.get(access_key_id)
        if secret is not None:
            return secret, Caller(access_key_id, f"acs:ram::{self._account_id}:root")
        session = self._session(access_key_id)
        if session is None:
            raise InvokeDenied(
                403, "InvalidAccessKeyId.NotFound", f"Specified access key is not found: {access_key_id}"
            )
        if not hmac.compare_digest(session.security_token.encode(), (security_token or "").encode()):
            raise InvokeDenied(403, "InvalidSecurityToken.Mismatch", "The security token does not match.")
        if self._clock() >= session.expires_at:
            raise InvokeDenied(403, "InvalidSecurityToken.Expired", "The security token has expired.")
        session_arn = session.role_arn.replace(":role/", ":assumed-role/", 1) + "/fc-local"
        return session.access_key_secret, Caller(access_key_id, session_arn, principal=session)

    def authorize_invoke(self, caller: Caller, function_arn: str) -> None:
        """The root key may invoke anything; a function's session only what its role's policy
        allows (`fc:InvokeFunction` on the functions `local.roles` gives it)."""
        session = caller.principal
        if not isinstance(session, IssuedSession):
            return
        function = function_arn.rsplit("/", 1)[-1]
        if function not in session.may_invoke:
            raise InvokeDenied(
                403,
                "NoPermission",
                f"You are not authorized to do action fc:InvokeFunction on resource {function_arn}",
            )

    def authenticate_acs3(self, request: EmulatorRequest) -> Caller:
        try:
            auth = parse_authorization(request.header("authorization"))
            secret, caller = self.secret(auth.access_key_id, request.header("x-acs-security-token"))
            request.verify_signature(auth, secret)
        except ApiError as err:
            raise _denied(err) from None
        nonce = request.header("x-acs-signature-nonce") or ""
        if nonce in self._nonces:
            raise InvokeDenied(403, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(nonce)
        return caller


def fc2_string_to_sign(
    method: str, path: str, headers: Mapping[str, str], query: Mapping[str, list[str]] | None = None
) -> str:
    """The string `fc2.auth.Auth.sign_request` signs, rebuilt from the request as received."""
    lowered = {k.lower(): v for k, v in headers.items()}
    fc_headers = sorted((k, v) for k, v in lowered.items() if k.startswith("x-fc-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in fc_headers)
    resource = unquote(path)
    if query:
        params = sorted(f"{k}={v}" for k, values in query.items() for v in values)
        resource = resource + "\n" + "\n".join(params)
    return "\n".join(
        [
            method.upper(),
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            lowered.get("date", ""),
            canonical_headers + resource,
        ]
    )


def fc2_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_fc2(
    keys: KeyResolver,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, list[str]] | None = None,
    now: float | None = None,
) -> Caller:
    """Check an `Authorization: FC id:signature` request; InvokeDenied when it does not hold."""
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = lowered.get("authorization", "").strip()
    if not authorization:
        raise InvokeDenied(
            401, "MissingRequiredHeader", "The request does not carry an Authorization header."
        )
    scheme, _, credential = authorization.partition(" ")
    key_id, sep, signature = credential.strip().rpartition(":")
    if scheme != "FC" or not sep or not key_id or not signature:
        raise InvokeDenied(
            403, "InvalidAuthorization", "Authorization must be 'FC <AccessKeyId>:<Signature>'."
        )
    try:
        stamp = parsedate_to_datetime(lowered.get("date", "")).timestamp()
    except (TypeError, ValueError):
        raise InvokeDenied(403, "InvalidDate", "The Date header is missing or malformed.") from None
    if abs((now if now is not None else time.time()) - stamp) > DATE_SKEW_SECONDS:
        raise InvokeDenied(
            403, "RequestTimeTooSkewed", "The difference between the request time and now is too large."
        )
    secret, caller = keys.secret(key_id, lowered.get("x-fc-security-token"))
    expected = fc2_signature(secret, fc2_string_to_sign(method, path, headers, query))
    if not hmac.compare_digest(expected, signature):
        raise InvokeDenied(403, "SignatureNotMatch", "The request signature we calculated does not match.")
    return caller
