"""ACS3-HMAC-SHA256 request signatures, verified the way the cloud does.

The SDK signs method, path, the sorted query, every header it names in SignedHeaders and the
payload hash. We rebuild the same canonical request from what arrived on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from local.emulator import errors

ALGORITHM = "ACS3-HMAC-SHA256"
_AUTH_RE = re.compile(
    r"^(?P<alg>ACS3-[A-Z0-9-]+)\s+Credential=(?P<key>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]*),\s*"
    r"Signature=(?P<sig>[0-9a-fA-F]+)$"
)


@dataclass(frozen=True)
class Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    if not value:
        raise errors.MissingAuthorization()
    match = _AUTH_RE.match(value.strip())
    if not match:
        raise errors.InvalidAuthorization()
    if match["alg"] != ALGORITHM:
        raise errors.UnsupportedSignatureAlgorithm(match["alg"])
    return Authorization(
        algorithm=match["alg"],
        access_key_id=match["key"],
        signed_headers=tuple(h for h in match["headers"].split(";") if h),
        signature=match["sig"].lower(),
    )


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{key}={quote(query[key], safe='~')}" for key in sorted(query))


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def sign(secret: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify_signature(
    auth: Authorization,
    secret: str,
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Raise SignatureDoesNotMatch unless the request was signed with `secret` and is intact."""
    lowered = {k.lower(): v for k, v in headers.items()}
    payload_hash = hashlib.sha256(body).hexdigest()
    if lowered.get("x-acs-content-sha256", "").lower() != payload_hash:
        raise errors.ContentSHA256NotMatched()
    required = {"x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "host"}
    if not required.issubset(auth.signed_headers):
        raise errors.HeadersNotSigned()
    if not set(h for h in lowered if h.startswith("x-acs-")).issubset(auth.signed_headers):
        raise errors.SignatureDoesNotMatch()
    expected = sign(
        secret, canonical_request(method, path, query, headers, auth.signed_headers, payload_hash)
    )
    if not hmac.compare_digest(expected, auth.signature):
        raise errors.SignatureDoesNotMatch()
