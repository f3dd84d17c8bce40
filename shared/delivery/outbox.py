"""The outbox: one stored record per (destination, message), delivered at least once, in the store.

A record is written (put-if-absent, so a replayed event adds nothing) BEFORE anything is sent, and
every attempt updates it with a conditional write: a restart, another instance or the reconcile
timer picks up exactly where the last attempt stopped. A claim is a short lease (`delivering` until
`lease_until`), so two dispatchers never send the same record at once; a dispatcher that dies mid-send
leaves a lease that expires, and the message is sent again with the same id (receivers deduplicate
on `webhook-id` / the CloudEvent `id`, as Standard Webhooks asks of them).

The message is the CloudEvent to send, ciphertext only: the store refuses any secret-named field that
is not `sealed_*` (shared/store/base.py), and replaying a record re-sends the stored event, so a
secret is never re-created for a redelivery.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import DEFAULT_DELIVERY_LEASE_SECONDS
from shared.store.base import KeyValueBackend

PREFIX = "delivery:"
Status = Literal["pending", "delivering", "delivered", "failing", "dead"]
DELIVERED_TTL_SECONDS = 30 * 86400  # delivered records stay listable for a month, then go


class DeliveryRecord(BaseModel):
    """One message on its way to one destination (`<route>/webhook`, `<route>/eventbridge`, …)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="the message id: the webhook-id and the CloudEvent id, stable across retries")
    destination: str
    kind: Literal["result", "notice"] = "result"
    ticket_id: str | None = None
    source: str | None = Field(default=None, description="the CloudEvent source of the request it answers")
    event: dict[str, Any] = Field(description="the CloudEvent sent, ciphertext only")
    status: Status = "pending"
    attempts: int = 0
    next_at: float = 0.0
    lease_until: float | None = None
    last_error: str | None = Field(
        default=None, description="status code or error type of the last attempt, never a body"
    )
    created_at: float = Field(default_factory=time.time)
    delivered_at: float | None = None

    @property
    def key(self) -> str:
        return record_key(self.destination, self.id)

    def due(self, now: float) -> bool:
        if self.status in {"pending", "failing"}:
            return self.next_at <= now
        return self.status == "delivering" and (self.lease_until or 0) <= now


def record_key(destination: str, message_id: str) -> str:
    return f"{PREFIX}{destination} {message_id}"


def message_id(*parts: str) -> str:
    """A stable id from what identifies the message (e.g. the request's idempotency key and the status)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"msg_{digest[:32]}"


class Outbox:
    """Delivery records over the store's versioned documents."""

    def __init__(self, backend: KeyValueBackend, *, lease_seconds: float = DEFAULT_DELIVERY_LEASE_SECONDS):
        self.backend = backend
        self.lease_seconds = lease_seconds  # Settings.delivery_lease_seconds

    def add(self, record: DeliveryRecord) -> bool:
        """Record a message to deliver; False if it is there already (a replay adds nothing)."""
        return self.backend.put_if_absent(record.key, record.model_dump(mode="json"))

    def get(self, destination: str, message: str) -> tuple[DeliveryRecord, int] | None:
        found = self.backend.get(record_key(destination, message))
        return None if found is None else (DeliveryRecord.model_validate(found.value), found.version)

    def find(self, message: str) -> list[tuple[DeliveryRecord, int]]:
        """Every destination's record of one message id."""
        return [(r, v) for r, v in self.all() if r.id == message]

    def all(self) -> list[tuple[DeliveryRecord, int]]:
        return [
            (DeliveryRecord.model_validate(doc.value), doc.version) for _, doc in self.backend.scan(PREFIX)
        ]

    def save(self, record: DeliveryRecord, version: int) -> int | None:
        """Write `record` over `version`; the new version, or None if someone else wrote first."""
        ttl = DELIVERED_TTL_SECONDS if record.status == "delivered" else None
        if not self.backend.put_if_version(record.key, record.model_dump(mode="json"), version, ttl):
            return None
        found = self.backend.get(record.key)
        return found.version if found is not None else None

    def claim(self, record: DeliveryRecord, version: int, now: float) -> tuple[DeliveryRecord, int] | None:
        """Take the record for one attempt (a lease); None if it is not due or another took it."""
        if not record.due(now):
            return None
        claimed = record.model_copy(update={"status": "delivering", "lease_until": now + self.lease_seconds})
        new_version = self.save(claimed, version)
        return None if new_version is None else (claimed, new_version)

    def replay(self, message: str, now: float | None = None) -> list[DeliveryRecord]:
        """Send a message again to every destination (a dead or delivered one too): same id, same
        stored event, attempts counted afresh."""
        replayed = []
        for record, version in self.find(message):
            if record.status == "delivering" and (record.lease_until or 0) > (now or time.time()):
                continue  # an attempt is under way right now
            again = record.model_copy(
                update={"status": "pending", "attempts": 0, "next_at": 0.0, "lease_until": None}
            )
            if self.save(again, version) is not None:
                replayed.append(again)
        return replayed
