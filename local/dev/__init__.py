"""DEVELOPMENT ONLY: the local configuration and the published signing key that `ramflow dev-token` uses.

The private key in this folder is public (it is in the repository), so anything that trusts
`jwks.json` trusts everyone. Only the local development configuration does.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import yaml

DEV_DIR = Path(__file__).resolve().parent
DEV_SIGNING_KEY = DEV_DIR / "signing-key.dev-only.pem"
DEV_JWKS = DEV_DIR / "jwks.json"
DEV_ENTITLEMENTS = DEV_DIR / "entitlements.yaml"
DEV_PICKUP_AUTH = DEV_DIR / "pickup-auth.yaml"  # credential-pickup's issuer and audience, same key
DEV_KEY_ID = "ramflow-dev-1"


def mint_dev_token(
    sub: str,
    *,
    ttl: int = 3600,
    entitlements: Path = DEV_ENTITLEMENTS,
    now: float | None = None,
    **claims: Any,
) -> str:
    """A JWT for `sub` that the development entitlements accept (their issuer and audience)."""
    config = yaml.safe_load(entitlements.read_text(encoding="utf-8"))
    issued = int(now if now is not None else time.time())
    payload: dict[str, Any] = {
        "iss": config["issuer"],
        "aud": config["audience"],
        "sub": sub,
        "iat": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(
        payload, DEV_SIGNING_KEY.read_text(encoding="utf-8"), algorithm="RS256", headers={"kid": DEV_KEY_ID}
    )
