"""Caller authentication for the token vendor: JWTs checked against a JWKS, an issuer and an audience.

Only asymmetric algorithms (RS256, ES256) are accepted: the vendor holds public keys only, so a
leaked configuration cannot mint tokens, and `alg: none` / HS256 confusion attacks have no key to use.
The same JWKS can be given to FC's `authType: jwt` HTTP trigger to check tokens at the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from shared.config import DEV_MODE_ENV, dev_mode
from shared.errors import AuthenticationFailed, ConfigError, MissingToken

log = logging.getLogger("ramflow.tokens")

ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
MAX_TOKEN_CHARS = 8192  # a JWT from our issuers is < 2 KB; bigger ones are refused before parsing
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
DEFAULT_MAX_AGE_SECONDS = 43200  # RAMFLOW_JWT_MAX_AGE: a token older than this (by `iat`) is refused
DEFAULT_MAX_LIFETIME_SECONDS = 86400  # RAMFLOW_JWT_MAX_LIFETIME: `exp - iat` above this is refused

# local/dev/entitlements.yaml and jwks.json: the private half of this key is in the repository, so
# whoever copies that configuration trusts everyone. Refused unless RAMFLOW_DEV_MODE=1.
DEV_ISSUER = "https://dev-issuer.ramflow.invalid"
DEV_KEY_ID = "ramflow-dev-1"
DEV_KEY_THUMBPRINT = "luJtzYC3P4fNSztYLbBJXnZQmhqmgdn7Hn9i0X456aA"  # RFC 7638, whatever its kid


@dataclass(frozen=True)
class Claims:
    """The verified facts of a token: who the application is, and until when the token holds."""

    subject: str
    issuer: str
    audience: str | list[str]
    expires_at: int
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)


def load_jwks(source: Mapping[str, Any] | str | Path) -> PyJWKSet:
    """A JWKS from an inline mapping (`{"keys": [...]}`) or a JSON file.

    An identity provider's JWKS often also publishes encryption keys or keys for other algorithms;
    those are skipped (and logged by kid), so one of them cannot stop the vendor. Only a JWKS left
    without any RS256 / ES256 signing key is refused.
    """
    if isinstance(source, str | Path):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the JWKS file {source}: {type(exc).__name__}") from None
    if not isinstance(source, Mapping) or not isinstance(source.get("keys"), list):
        raise ConfigError("a JWKS must be a JSON object with a 'keys' list")
    usable: list[dict[str, Any]] = []
    for entry in source["keys"]:
        kid = _printable_kid(entry.get("kid") if isinstance(entry, Mapping) else None)
        reason = _unusable(entry)
        if reason:
            log.warning("JWKS key %s skipped: %s", kid, reason)
            continue
        usable.append(dict(entry))
    if not usable:
        raise ConfigError("the JWKS holds no usable key: give at least one RS256 or ES256 signing key")
    return PyJWKSet(usable)


def _unusable(entry: Any) -> str | None:
    """Why a JWKS entry cannot verify our tokens, or None. A private key is refused outright."""
    if not isinstance(entry, Mapping):
        return "not a JSON object"
    try:
        key = PyJWK(dict(entry))
    except jwt.exceptions.MissingCryptographyError:
        raise ConfigError("the JWKS needs the 'cryptography' package") from None
    except jwt.PyJWTError:
        return "not a key of a supported type (RS256 or ES256)"
    if _is_private(key):
        raise ConfigError("the JWKS holds a private key; give the vendor public keys only")
    if "use" in entry and entry["use"] != "sig":
        return "its 'use' is not 'sig'"
    if key.algorithm_name not in ALLOWED_ALGORITHMS:
        return "its algorithm is not RS256 or ES256"
    return None


def _printable_kid(kid: Any) -> str:
    """A kid fit for a log line: cut and stripped to safe characters."""
    if not isinstance(kid, str) or not kid:
        return "(no kid)"
    return repr(re.sub(r"[^A-Za-z0-9._:@/+=-]", "?", kid[:64]))


def _is_private(key: PyJWK) -> bool:
    return hasattr(key.key, "private_bytes")


def _thumbprint(key: PyJWK) -> str | None:
    """RFC 7638 thumbprint of an RSA key (the development key is one); None for other key types."""
    if key.key_type != "RSA":
        return None
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.key, as_dict=True)
    members = json.dumps({m: jwk[m] for m in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()


def _refuse_development_trust(issuer: str, keys: Sequence[PyJWK]) -> None:
    """The development issuer or key outside development: a copied local/dev configuration."""
    if issuer == DEV_ISSUER:
        raise ConfigError(
            f"the issuer is the development issuer {DEV_ISSUER}, trusted only with {DEV_MODE_ENV}=1: "
            "configure your identity provider's issuer, audience and JWKS"
        )
    if any(k.key_id == DEV_KEY_ID or _thumbprint(k) == DEV_KEY_THUMBPRINT for k in keys):
        raise ConfigError(
            f"the JWKS holds the development key ({DEV_KEY_ID}), whose private half is published in the "
            f"repository; it is trusted only with {DEV_MODE_ENV}=1: give your identity provider's JWKS"
        )


class JwtVerifier:
    """Verify a caller's JWT. Every failure is `AuthenticationFailed` with a message safe to return."""

    def __init__(
        self,
        jwks: PyJWKSet,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        algorithms: Sequence[str] = ALLOWED_ALGORITHMS,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        unknown = set(algorithms) - set(ALLOWED_ALGORITHMS)
        if unknown:
            raise ConfigError(f"unsupported JWT algorithms: {sorted(unknown)}")
        self._keys = list(jwks.keys)
        if not dev_mode():
            _refuse_development_trust(issuer, self._keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._algorithms = list(algorithms)
        self._max_age = max_age_seconds
        self._max_lifetime = max_lifetime_seconds
        self._clock = clock

    def verify(self, token: str | None) -> Claims:
        if not token:
            raise MissingToken("no token: send ?token=<JWT> or Authorization: Bearer <JWT>")
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AuthenticationFailed("the token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed("the token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthenticationFailed("the token's algorithm is not accepted (RS256 or ES256 only)")
        key = self._key_for(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed("the token's issuer is not trusted") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed("the token is not meant for this audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationFailed(f"the token lacks the '{exc.claim}' claim") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("the token is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("the token's signature does not verify") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("the token is invalid") from None
        self._check_freshness(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationFailed("the token's 'sub' claim must name the application")
        return Claims(
            subject=subject,
            issuer=str(claims["iss"]),
            audience=claims["aud"],
            expires_at=int(claims["exp"]),
            raw=claims,
        )

    def _check_freshness(self, claims: Mapping[str, Any]) -> None:
        """A stolen token is worth little: it must be recent (`iat`) and short-lived (`exp - iat`)."""
        issued, expires = claims["iat"], claims["exp"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (issued, expires)):
            raise AuthenticationFailed("the token's 'iat' and 'exp' claims must be numbers")
        now = self._clock()
        if issued > now + self._leeway:
            raise AuthenticationFailed("the token's 'iat' is in the future")
        if now - issued > self._max_age + self._leeway:
            raise AuthenticationFailed(f"the token was issued more than {self._max_age} seconds ago")
        if expires - issued > self._max_lifetime:
            raise AuthenticationFailed(
                f"the token's lifetime (exp - iat) exceeds {self._max_lifetime} seconds"
            )

    def _key_for(self, kid: Any, alg: str) -> PyJWK:
        """The key named by `kid`, or the only key for `alg` when the token names none."""
        candidates = [k for k in self._keys if k.algorithm_name == alg]
        if kid is not None:
            candidates = [k for k in candidates if k.key_id == kid]
        if len(candidates) != 1:
            raise AuthenticationFailed("no trusted key matches the token")
        return candidates[0]
