"""Scrub secret values from anything about to be logged, recorded or audited."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(secret|password|token|authorization|signature|privatekey|private_key)", re.IGNORECASE)
_ALLOWED = re.compile(r"^sealed_", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _ALLOWED.match(key)


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-looking key's value masked, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
