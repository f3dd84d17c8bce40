"""Token vending: a verified application gets short-lived STS credentials for a role it is entitled to.

Order matters: the token is verified and the entitlement and duration checked before anything
touches STS, so a refused caller costs no cloud call. Credentials are cached per warm instance and
key (application, role, session policy, ExternalId) until their expiry minus a safety margin, and
concurrent misses for one key wait for a single AssumeRole instead of stampeding STS.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from shared.entitlements import Entitlements, RoleGrant
from shared.errors import AssumeRoleFailed, CloudError
from shared.tokens import DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS, JwtVerifier, load_jwks

log = logging.getLogger("ramflow.vend")

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SESSION_CHARS = re.compile(r"[^A-Za-z0-9.@_-]")


@dataclass(frozen=True)
class VendRequest:
    token: str | None = field(default=None, repr=False)
    role: str | None = None
    duration: int | str | None = None


@dataclass(frozen=True)
class VendedCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime

    def body(self) -> dict[str, str]:
        """Exactly what the `credentials_uri` provider of alibabacloud-credentials reads."""
        return {
            "Code": "Success",
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "SecurityToken": self.security_token,
            "Expiration": self.expiration.astimezone(timezone.utc).strftime(EXPIRATION_FORMAT),
        }


class RoleAssumer(Protocol):
    """What the flow needs from STS (shared.cloud.sts.StsGateway fits)."""

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        duration_seconds: int = 3600,
        policy: dict[str, Any] | None = None,
        external_id: str | None = None,
    ) -> Any: ...


def session_name_for(subject: str) -> str:
    """RoleSessionName from the application's `sub`: 2–64 of `[A-Za-z0-9.@_-]`.

    A `sub` that had to be changed gets a short hash of the original, so two applications whose
    names differ only in dropped characters still get distinguishable sessions in the audit trail.
    """
    cleaned = _SESSION_CHARS.sub("-", subject)
    if cleaned == subject and 2 <= len(subject) <= 64:
        return subject
    digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[:55]}-{digest}"


def _secret(value: Any) -> str:
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def _expiration(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.strptime(str(value), EXPIRATION_FORMAT).replace(tzinfo=timezone.utc)


CacheKey = tuple[str, str, str, str, str]


class CredentialCache:
    """Credentials per key until `expiration - margin`; one loader per key at a time (single flight)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._entries: dict[CacheKey, VendedCredentials] = {}
        self._locks: dict[CacheKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def _usable(self, key: CacheKey, *, margin: float, longest: float) -> VendedCredentials | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        remaining = entry.expiration.timestamp() - self._clock()
        # Never hand out a session that outlives what was asked, nor one about to expire.
        return entry if margin < remaining <= longest else None

    def get_or_load(
        self, key: CacheKey, load: Callable[[], VendedCredentials], *, margin: float, longest: float
    ) -> tuple[VendedCredentials, bool]:
        """(credentials, True when served from cache)."""
        entry = self._usable(key, margin=margin, longest=longest)
        if entry is not None:
            return entry, True
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._usable(key, margin=margin, longest=longest)
            if entry is not None:
                return entry, True
            entry = load()
            self._entries[key] = entry
            return entry, False

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class VendOutcome:
    credentials: VendedCredentials
    app: str
    grant: RoleGrant
    session_name: str
    duration: int
    cached: bool


class TokenVendor:
    """The vend flow over a warm instance's verifier, entitlements and cache."""

    def __init__(
        self,
        entitlements: Entitlements,
        *,
        verifier: JwtVerifier | None = None,
        cache: CredentialCache | None = None,
        clock: Callable[[], float] = time.time,
        max_token_age: int = DEFAULT_MAX_AGE_SECONDS,
        max_token_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
    ):
        self.entitlements = entitlements
        self.verifier = verifier or JwtVerifier(
            load_jwks(entitlements.jwks),
            issuer=entitlements.issuer,
            audience=entitlements.audience,
            leeway_seconds=entitlements.leeway_seconds,
            max_age_seconds=max_token_age,
            max_lifetime_seconds=max_token_lifetime,
            clock=clock,
        )
        self.cache = cache or CredentialCache(clock)
        self._clock = clock

    def vend(self, request: VendRequest, sts: Callable[[], RoleAssumer]) -> VendOutcome:
        """Verify, authorise, then serve from cache or AssumeRole. `sts` is only built on a miss."""
        claims = self.verifier.verify(request.token)
        app = claims.subject
        grant = self.entitlements.grant_for(app, request.role)
        duration = self.entitlements.duration_for(grant, request.duration)
        session_name = session_name_for(app)
        key: CacheKey = (
            app,
            grant.alias,
            grant.role_arn,
            grant.policy_canonical or "",
            grant.external_id or "",
        )
        margin = min(float(self.entitlements.cache_margin_seconds), duration / 2)

        def assume() -> VendedCredentials:
            try:
                result = sts().assume_role(
                    grant.role_arn,
                    session_name,
                    duration_seconds=duration,
                    policy=grant.session_policy,
                    external_id=grant.external_id,
                )
            except CloudError as exc:
                log.warning("STS refused %s: %s (cloud request %s)", grant.alias, exc.code, exc.request_id)
                raise AssumeRoleFailed(f"STS refused the session: {exc.code}") from exc
            return VendedCredentials(
                access_key_id=str(result.access_key_id),
                access_key_secret=_secret(result.access_key_secret),
                security_token=_secret(result.security_token),
                expiration=_expiration(result.expiration),
            )

        credentials, cached = self.cache.get_or_load(key, assume, margin=margin, longest=duration + 5)
        log.info(
            "vended app=%s role=%s session=%s duration=%d cached=%s key_id=%s expires=%s",
            _loggable(app),
            grant.alias,
            session_name,
            duration,
            cached,
            credentials.access_key_id,
            credentials.expiration.strftime(EXPIRATION_FORMAT),
        )
        return VendOutcome(credentials, app, grant, session_name, duration, cached)


def _loggable(value: str) -> str:
    return _SESSION_CHARS.sub("?", value[:128])
