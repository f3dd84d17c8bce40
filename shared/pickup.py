"""Credential pickup: the sealed secret of a ticket, handed to its requester, for a bounded time.

For requesters whose ticket system cannot receive callbacks. When a ticket completes with a new
credential, `offer` stores the reply's ciphertext under `pickup:<ticket>` with a TTL
(`RAMFLOW_PICKUP_TTL`, default 7 days): after that the store forgets it. `collect` hands it to the
caller whose verified JWT names the ticket's requester (`sub` or `email`, compared case-insensitively)
and records when it was first collected; a collected secret stays available for a short grace
(`COLLECTED_GRACE_SECONDS`, a reply lost on the way can be fetched again), then is gone. Only
ciphertext is ever stored or returned: the private key never leaves the requester.

Who may call is configured in `RAMFLOW_PICKUP_AUTH` (YAML: `issuer`, `audience`, `jwks` or
`jwks_file`, `leeway_seconds`), the organisation's identity provider, verified exactly as the token
vendor verifies its callers (shared/tokens.py: RS256 / ES256 only, issuer, audience, expiry).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.audit import audit
from shared.errors import ConfigError, NotEntitled, RecordNotFound
from shared.store.base import KeyValueBackend

if TYPE_CHECKING:
    from shared.tokens import Claims, JwtVerifier

PREFIX = "pickup:"
COLLECTED_GRACE_SECONDS = 15 * 60


class PickupAuthFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, Field(min_length=1)]
    audience: Annotated[str, Field(min_length=1)]
    jwks: dict[str, Any] | None = None
    jwks_file: str | None = None
    leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30

    @model_validator(mode="after")
    def _one_jwks(self) -> PickupAuthFile:
        if (self.jwks is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of 'jwks' (inline) or 'jwks_file'")
        return self


def load_verifier(path: Path | None) -> JwtVerifier:
    """The verifier of `RAMFLOW_PICKUP_AUTH`; ConfigError when it is missing or malformed."""
    from shared.tokens import JwtVerifier, load_jwks  # the JWT stack loads in credential-pickup only

    if path is None:
        raise ConfigError("RAMFLOW_PICKUP_AUTH is not set: credential-pickup trusts no identity provider")
    try:
        spec = PickupAuthFile.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read RAMFLOW_PICKUP_AUTH {path}: {type(exc).__name__}") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"invalid RAMFLOW_PICKUP_AUTH {path}: {where}") from None
    if spec.jwks is not None:
        jwks = spec.jwks
    else:
        jwks_path = Path(spec.jwks_file or "")
        if not jwks_path.is_absolute():
            jwks_path = Path(path).parent / jwks_path
        try:
            jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"RAMFLOW_PICKUP_AUTH: cannot read jwks_file ({type(exc).__name__})") from None
    return JwtVerifier(
        load_jwks(jwks), issuer=spec.issuer, audience=spec.audience, leeway_seconds=spec.leeway_seconds
    )


class PickupRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_id: str
    requester: str
    user_name: str | None = None
    credential: dict[str, Any] = Field(description="the reply's credential: ids in clear, the secret sealed")
    available_until: float
    collected_at: float | None = None
    collections: int = 0


@dataclass(frozen=True)
class Pickup:
    """What `collect` hands back: the answer body (ciphertext only)."""

    body: dict[str, Any]


def offer(
    backend: KeyValueBackend,
    *,
    ticket_id: str,
    requester: str,
    user_name: str | None,
    credential: Mapping[str, Any],
    ttl_seconds: int,
    now: float | None = None,
) -> bool:
    """Make the sealed credential of a completed ticket available to its requester; False if it was
    offered already (a replay changes nothing)."""
    moment = time.time() if now is None else now
    record = PickupRecord(
        ticket_id=ticket_id,
        requester=requester,
        user_name=user_name,
        credential=dict(credential),
        available_until=moment + ttl_seconds,
    )
    added = backend.put_if_absent(PREFIX + ticket_id, record.model_dump(mode="json"), ttl_seconds)
    if added:
        audit(
            "pickup.offered",
            actor="ramflow",
            ticket_id=ticket_id,
            outcome="ok",
            requester=requester,
            available_until=int(record.available_until),
        )
    return added


def _identities(claims: Claims) -> set[str]:
    found = {claims.subject.strip().lower()}
    email = claims.raw.get("email")
    if isinstance(email, str) and email.strip():
        found.add(email.strip().lower())
    return found


def collect(backend: KeyValueBackend, ticket_id: str, claims: Claims, *, now: float | None = None) -> Pickup:
    """The ticket's sealed credential for its requester.

    RecordNotFound: nothing waits under that ticket (never offered, expired, or collected and past the
    grace). NotEntitled: the caller is not the ticket's requester (nothing of the secret is returned)."""
    moment = time.time() if now is None else now
    key = PREFIX + ticket_id
    for _ in range(5):
        found = backend.get(key)
        if found is None:
            raise RecordNotFound(
                "no sealed secret waits for this ticket (never issued, expired or collected)"
            )
        record = PickupRecord.model_validate(found.value)
        if record.requester.strip().lower() not in _identities(claims):
            audit(
                "pickup.refused",
                actor=claims.subject,
                ticket_id=ticket_id,
                outcome="denied",
                reason="not the requester",
            )
            raise NotEntitled("only the ticket's requester may collect its secret")
        if moment > record.available_until or (
            record.collected_at is not None and moment > record.collected_at + COLLECTED_GRACE_SECONDS
        ):
            raise RecordNotFound(
                "no sealed secret waits for this ticket (never issued, expired or collected)"
            )
        collected = record.model_copy(
            update={"collected_at": record.collected_at or moment, "collections": record.collections + 1}
        )
        remaining = max(1.0, record.available_until - moment)
        if backend.put_if_version(key, collected.model_dump(mode="json"), found.version, remaining):
            audit(
                "pickup.collected",
                actor=claims.subject,
                ticket_id=ticket_id,
                outcome="ok",
                collections=collected.collections,
            )
            return Pickup(
                {
                    "status": "completed",
                    "ticket_id": record.ticket_id,
                    "user_name": record.user_name,
                    "credential": record.credential,
                    "available_until": int(record.available_until),
                    "collected_at": int(collected.collected_at or moment),
                }
            )
    raise RecordNotFound("the pickup changed while it was read; ask again")
