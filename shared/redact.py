"""Mask secrets in anything about to be logged, audited or recorded.

Redaction is by key name (nested dicts and lists included), plus values that are unmistakably
credentials (`Bearer …`, `ACS3-HMAC-SHA256 …`). Sealed ciphertext (`sealed_*`) stays: it is
useless without the requester's private key, and the demo and tests need to see it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

MASK = "***"
MAX_DEPTH = 32

_SECRET_KEY_PARTS = (
    "secret",
    "password",
    "passwd",
    "token",
    "authorization",
    "signature",
    "privatekey",
    "apikey",
    "cookie",
    "jwt",
)
# Names about a secret rather than of one: `PasswordResetRequired`, `MinimumPasswordLength`,
# `MaxPasswordAge`, `SignatureMethod`, `x-acs-signature-nonce`.
_METADATA_SUFFIXES = ("required", "enabled", "length", "age", "prevention", "method", "version", "nonce")
_CREDENTIAL_VALUE = re.compile(r"\s*(bearer|basic|acs3-hmac-sha256)\s", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    """`AccessKeySecret`, `x-acs-security-token`, `private_key` … but not `sealed_secret`."""
    normalised = re.sub(r"[^a-z0-9]", "", str(key).lower())
    if normalised.startswith("sealed") or normalised.endswith(_METADATA_SUFFIXES):
        return False
    return any(part in normalised for part in _SECRET_KEY_PARTS)


def redact(obj: Any, *, _depth: int = 0) -> Any:
    """A copy of `obj` with secret values replaced by `"***"`; the input is never modified."""
    if _depth > MAX_DEPTH:
        return "…"
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    if isinstance(obj, Mapping):
        return {
            key: (_masked(value) if is_secret_key(key) else redact(value, _depth=_depth + 1))
            for key, value in obj.items()
        }
    if isinstance(obj, list | tuple | set | frozenset):
        return [redact(item, _depth=_depth + 1) for item in obj]
    if isinstance(obj, str) and _CREDENTIAL_VALUE.match(obj):
        return MASK
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    return obj


def _masked(value: Any) -> Any:
    # A flag or an absent value cannot be a secret: keep `password_reset_required: true` readable.
    return value if value is None or isinstance(value, bool) else MASK
