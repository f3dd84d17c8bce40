"""The emulator's heart: accounts, credentials, routing by x-acs-version/x-acs-action, and the
fault/record wrapper every call goes through. Transports (loopback server, `responses`) only turn
their requests into `EmulatorRequest` and back.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl

from local.emulator import errors
from local.emulator.auth import Authorization, parse_authorization, verify_signature
from local.emulator.errors import ApiError
from local.emulator.faults import FaultControls
from local.emulator.recorder import CallRecorder

DEFAULT_ACCOUNT_ID = "5123456789012345"
DEFAULT_ACCOUNT_ALIAS = "ramflow-demo"
DEFAULT_ROOT_KEY_ID = "LTAI5tRamflowEmulatorRoot"
DEFAULT_ROOT_KEY_SECRET = "ramflow-emulator-root-secret-0001"  # documented in the README; never a real key
TIMESTAMP_SKEW_SECONDS = 15 * 60
CONTROL_PREFIX = "/emulator-api/"  # the control surface (local/emulator/control.py); the APIs use "/"

Handler = Callable[["CallContext"], dict[str, Any]]


@dataclass
class Principal:
    """Who signed a request, as GetCallerIdentity would name them."""

    account_id: str
    kind: Literal["root", "user", "assumed-role"]
    arn: str
    principal_id: str
    access_key_id: str
    user_name: str | None = None
    role_name: str | None = None
    role_id: str | None = None
    session_name: str | None = None
    session_policy: dict[str, Any] | None = None


@dataclass
class StsSession:
    """Credentials issued by AssumeRole; accepted back until `expires_at`."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: float
    account_id: str
    role_name: str
    role_id: str
    session_name: str
    session_policy: dict[str, Any] | None = None

    @property
    def arn(self) -> str:
        """The session as a caller: what GetCallerIdentity answers and what the enforcer records."""
        return f"acs:ram::{self.account_id}:assumed-role/{self.role_name.lower()}/{self.session_name}"

    @property
    def assumed_role_user_arn(self) -> str:
        """AssumeRole's `AssumedRoleUser.Arn`: `role/`, not `assumed-role/` (the API reference's and the
        SDK model's example `acs:ram::123456789012****:role/adminrole/alice`, e.g.
        github.com/alibabacloud-go/sts-20150401/v2 client.go, AssumeRoleResponseBodyAssumedRoleUser;
        https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerole)."""
        return f"acs:ram::{self.account_id}:role/{self.role_name.lower()}/{self.session_name}"


class Service:
    """One cloud API (product + version) and its actions."""

    def __init__(self, name: str, version: str, host: str):
        self.name = name
        self.version = version
        self.host = host
        self.actions: dict[str, Handler] = {}

    def action(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.actions[name] = fn
            return fn

        return register


@dataclass
class EmulatorRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @classmethod
    def from_raw(cls, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> EmulatorRequest:
        path, _, raw_query = raw_path.partition("?")
        return cls(method, path or "/", dict(parse_qsl(raw_query, keep_blank_values=True)), headers, body)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), None)

    def verify_signature(self, auth: Authorization, secret: str) -> None:
        """Raise SignatureDoesNotMatch unless this request, as received, was signed with `secret`."""
        verify_signature(
            auth,
            secret,
            method=self.method,
            path=self.path,
            query=self.query,
            headers=self.headers,
            body=self.body,
        )


@dataclass
class EmulatorResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class Account:
    """One Alibaba Cloud account: its RAM world, its resource groups, its root keys."""

    def __init__(self, account_id: str, alias: str, clock: Callable[[], float] = time.time):
        from local.emulator.eventbridge.models import EventBridgeBackend
        from local.emulator.ram.models import RamBackend
        from local.emulator.resourcemanager.models import ResourceManagerBackend

        self.account_id = account_id
        self.alias = alias
        self.root_keys: dict[str, str] = {}
        self.ram = RamBackend(account_id, alias, clock)
        self.resource_manager = ResourceManagerBackend(account_id, ram=self.ram, now=clock())
        self.eventbridge = EventBridgeBackend(account_id)

    def __repr__(self) -> str:
        return f"Account({self.account_id!r}, alias={self.alias!r})"


@dataclass
class CallContext:
    """What an action handler sees: the account, the caller, the parameters."""

    emulator: Emulator
    account: Account
    principal: Principal
    service: Service
    action: str
    params: dict[str, str]
    request_id: str

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return default if value is None or value == "" else value

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise errors.MissingParameter(name)
        return value

    def integer(self, name: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise errors.InvalidParameter(name, f"{raw!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise errors.InvalidParameter(name, f"must be between {low} and {high}")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() not in {"true", "false"}:
            raise errors.InvalidParameter(name, f"{raw!r} is not a boolean")
        return raw.lower() == "true"

    def indexed(self, prefix: str) -> list[str]:
        """RPC flat lists: `Prefix.1`, `Prefix.2`, … in index order."""
        found = {
            int(k[len(prefix) + 1 :]): v
            for k, v in self.params.items()
            if k.startswith(prefix + ".") and k[len(prefix) + 1 :].isdigit()
        }
        return [found[i] for i in sorted(found)]

    def indexed_maps(self, prefix: str) -> list[dict[str, str]]:
        """RPC flat lists of objects: `Tag.1.Key`, `Tag.1.Value`, … in index order."""
        items: dict[int, dict[str, str]] = {}
        for key, value in self.params.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == prefix and parts[1].isdigit():
                items.setdefault(int(parts[1]), {})[parts[2]] = value
        return [items[i] for i in sorted(items)]

    def now(self) -> float:
        return self.emulator.clock()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Emulator:
    """A stateful, thread-safe Alibaba Cloud for RAM, IMS, STS and ResourceManager."""

    def __init__(
        self,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        account_alias: str = DEFAULT_ACCOUNT_ALIAS,
        root_key: tuple[str, str] = (DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET),
        latency_ms: float = 0.0,
        qps: float | None = None,
        fault_rate: float = 0.0,
        seed: int | None = None,
        resource_group_ready_seconds: float | None = None,
    ):
        from local.emulator.resourcemanager.models import DEFAULT_READY_SECONDS
        from local.emulator.services import all_services

        self.lock = threading.RLock()
        self.services: dict[str, Service] = {s.version: s for s in all_services()}
        self.accounts: dict[str, Account] = {}
        self.sts_sessions: dict[str, StsSession] = {}
        self.faults = FaultControls(latency_ms=latency_ms, qps=qps, fault_rate=fault_rate, seed=seed)
        self.recorder = CallRecorder()
        self.authorizer: Callable[[CallContext], None] | None = None  # policy enforcement, when switched on
        self.hooks: list[Callable[[str, str], None]] = []  # (when, action) at each call's boundaries
        self.reset_hooks: list[Callable[[Emulator], None]] = []  # e.g. `ramflow serve` re-seeds its account
        self._clock_offset = 0.0
        # How long a new resource group answers `Creating` before `OK` (0: at once, for tests).
        self.resource_group_ready_seconds = (
            DEFAULT_READY_SECONDS if resource_group_ready_seconds is None else resource_group_ready_seconds
        )
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self.default_account_id = account_id
        self.add_account(account_id, account_alias, root_key)

    # --- accounts and credentials -------------------------------------------------------------
    def add_account(self, account_id: str, alias: str, root_key: tuple[str, str] | None = None) -> Account:
        with self.lock:
            account = self.accounts.get(account_id)
            if account is None:
                account = self.accounts[account_id] = Account(account_id, alias, self.clock)
            if root_key:
                account.root_keys[root_key[0]] = root_key[1]
            return account

    @property
    def account(self) -> Account:
        return self.accounts[self.default_account_id]

    def clock(self) -> float:
        """The one clock of the emulated cloud: creation dates, last use, STS expiry, resource groups.

        Signature freshness (`x-acs-date`) alone is checked against the wall clock, because the SDK
        stamps requests with the wall clock."""
        return time.time() + self._clock_offset

    @property
    def clock_offset(self) -> float:
        """Seconds the clock was moved ahead of the wall clock."""
        return self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (STS expiry, timestamps) without sleeping."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self._clock_offset += seconds

    def reset(self) -> None:
        """Back to a fresh cloud: every account emptied (ids, aliases and root keys kept), STS
        sessions, the recorder, faults and the clock's offset cleared; then the reset hooks run."""
        with self.lock:
            kept = [(a.account_id, a.alias, dict(a.root_keys)) for a in self.accounts.values()]
            self._clock_offset = 0.0
            self.accounts = {}
            for account_id, alias, root_keys in kept:
                account = self.add_account(account_id, alias)
                account.root_keys.update(root_keys)
            self.sts_sessions.clear()
        self.recorder.clear()
        self.faults.clear()
        for hook in list(self.reset_hooks):
            hook(self)

    def issue_sts_session(
        self,
        *,
        account_id: str,
        role_name: str,
        role_id: str,
        session_name: str,
        duration_seconds: int,
        session_policy: dict[str, Any] | None,
    ) -> StsSession:
        session = StsSession(
            access_key_id="STS." + secrets.token_hex(12).upper()[:21],
            access_key_secret=secrets.token_urlsafe(30)[:40],
            security_token="CAIS" + secrets.token_urlsafe(180),
            expires_at=self.clock() + duration_seconds,
            account_id=account_id,
            role_name=role_name,
            role_id=role_id,
            session_name=session_name,
            session_policy=session_policy,
        )
        with self.lock:
            self.sts_sessions[session.access_key_id] = session
        return session

    def authenticate(self, request: EmulatorRequest) -> tuple[Account, Principal]:
        auth = parse_authorization(request.header("authorization"))
        key_id = auth.access_key_id
        token = request.header("x-acs-security-token")
        secret, account, principal = self.resolve_key(key_id, token)
        request.verify_signature(auth, secret)
        self._check_freshness(request)
        if principal.kind == "user":
            with self.lock:
                account.ram.access_key_used(key_id)  # what GetAccessKeyLastUsed reports
        return account, principal

    def resolve_key(self, key_id: str, token: str | None) -> tuple[str, Account, Principal]:
        """The secret, account and principal behind an AccessKey id (and STS token), or the cloud's
        refusal; other signers (the local FC runtime's FC-signature check) share it."""
        with self.lock:
            if key_id.startswith("STS."):
                session = self.sts_sessions.get(key_id)
                if session is None:
                    raise errors.InvalidAccessKeyIdNotFound(key_id)
                if not token:
                    raise errors.MissingSecurityToken()
                if not secrets.compare_digest(token, session.security_token):
                    raise errors.InvalidSecurityTokenMismatchWithAccessKey()
                if self.clock() >= session.expires_at:
                    raise errors.InvalidSecurityTokenExpired()
                principal = Principal(
                    session.account_id,
                    "assumed-role",
                    session.arn,
                    f"{session.role_id}:{session.session_name}",
                    key_id,
                    role_name=session.role_name,
                    role_id=session.role_id,
                    session_name=session.session_name,
                    session_policy=session.session_policy,
                )
                return session.access_key_secret, self.accounts[session.account_id], principal
            for account in self.accounts.values():
                if key_id in account.root_keys:
                    arn = f"acs:ram::{account.account_id}:root"
                    return (
                        account.root_keys[key_id],
                        account,
                        Principal(account.account_id, "root", arn, account.account_id, key_id),
                    )
                found = account.ram.find_access_key(key_id)
                if found is not None:
                    user, key = found
                    if key.status != "Active":
                        raise errors.InvalidAccessKeyIdInactive(key_id)
                    arn = f"acs:ram::{account.account_id}:user/{user.user_name}"
                    return (
                        key.secret,
                        account,
                        Principal(
                            account.account_id, "user", arn, user.user_id, key_id, user_name=user.user_name
                        ),
                    )
        raise errors.InvalidAccessKeyIdNotFound(key_id)

    def _check_freshness(self, request: EmulatorRequest) -> None:
        stamp = request.header("x-acs-date") or ""
        try:
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise errors.InvalidTimeStampFormat() from None
        if abs(time.time() - when) > TIMESTAMP_SKEW_SECONDS:
            raise errors.InvalidTimeStampExpired()
        nonce = request.header("x-acs-signature-nonce") or ""
        with self.lock:
            if nonce in self._nonces:
                raise errors.SignatureNonceUsed()
            self._nonces[nonce] = when
            while len(self._nonces) > 100_000:
                self._nonces.popitem(last=False)

    # --- the call pipeline ---------------------------------------------------------------------
    def handle(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.path.startswith(CONTROL_PREFIX):
            from local.emulator.control import handle_control

            return handle_control(self, request)
        started = time.time()
        request_id = str(uuid.uuid4()).upper()
        version = request.header("x-acs-version") or ""
        action = request.header("x-acs-action") or ""
        service = self.services.get(version)
        caller = "anonymous"
        params = dict(request.query)
        self.faults.sleep()
        try:
            if service is None:
                raise errors.InvalidVersion(version)
            handler = service.actions.get(action)
            if handler is None:
                raise errors.InvalidActionNotFound(action)
            params.update(self._form_params(request))
            account, principal = self.authenticate(request)
            caller = principal.arn
            if not self.faults.take_token():
                raise errors.Throttling()
            planned = self.faults.planned_failure(action)
            if planned is None and self.faults.random_fault():
                planned = "after" if self.faults.lost_reply() else "before"
            if planned == "before":
                raise errors.ServiceUnavailable()
            ctx = CallContext(self, account, principal, service, action, params, request_id)
            self._run_hooks("before", action)
            with self.lock:
                if self.authorizer is not None:
                    self.authorizer(ctx)
                try:
                    result = handler(ctx)
                except ApiError:
                    if planned == "after":  # the reply is lost either way
                        raise errors.InternalError() from None
                    raise
            self._run_hooks("after", action)
            if planned == "after":
                raise errors.InternalError()
        except ApiError as err:
            self.recorder.record(
                service=service.name if service else version,
                action=action,
                params=params,
                caller=caller,
                outcome=err.code,
                status=err.status,
                started=started,
            )
            return self._error(err, request_id, service)
        self.recorder.record(
            service=service.name,
            action=action,
            params=params,
            caller=caller,
            outcome="OK",
            status=200,
            started=started,
        )
        body = {"RequestId": request_id, **result}
        return EmulatorResponse(200, json.dumps(body).encode(), self._headers(request_id))

    def _run_hooks(self, when: str, action: str) -> None:
        """Test hooks at a call's boundaries ("before" it acts, "after" it took effect), outside the
        emulator's lock so a hook may itself call the cloud (the interleaving explorer does)."""
        for hook in list(self.hooks):
            hook(when, action)

    @staticmethod
    def _form_params(request: EmulatorRequest) -> dict[str, str]:
        content_type = (request.header("content-type") or "").lower()
        if request.body and content_type.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        return {}

    @staticmethod
    def _headers(request_id: str) -> dict[str, str]:
        return {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}

    def _error(self, err: ApiError, request_id: str, service: Service | None) -> EmulatorResponse:
        host = service.host if service else "aliyuncs.com"
        body = {
            "RequestId": request_id,
            "HostId": host,
            "Code": err.code,
            "Message": err.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&requestId={request_id}",
        }
        return EmulatorResponse(err.status, json.dumps(body).encode(), self._headers(request_id))
