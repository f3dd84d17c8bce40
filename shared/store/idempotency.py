"""Exactly-once handling of events, in the manner of AWS Lambda Powertools' idempotency layer.

One record per idempotency key (the event's `source` + `id`, or a `webhook-id`):

- INPROGRESS, with the `owner` (one invocation) holding a lease until `lease_until` — the function's
  deadline. A crashed invocation leaves its record behind; once the lease has ended, a new
  invocation takes it over with a compare-and-set and replays the event.
- COMPLETED, with the reply, which every duplicate gets back. Kept for `record_ttl_seconds`.

The payload hash travels with the record: the same key with a different payload is a mismatch,
never a replay. Only the lease holder completes or releases; the holder may still complete after
its lease has ended, as long as nobody took it over.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.config import DEFAULT_IDEMPOTENCY_TTL_SECONDS
from shared.errors import LeaseLost, StoreError
from shared.store.base import JsonObject, KeyValueBackend

KEY_PREFIX = "idem/"
_MAX_ATTEMPTS = 32


def payload_hash(payload: Any) -> str:
    """sha256 of the canonical JSON of `payload` (a JSON value or a pydantic model)."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["INPROGRESS", "COMPLETED"]
    payload_hash: str
    owner: str
    lease_until: float
    reply: JsonObject | None = None


class BeginStatus(str, Enum):
    ACQUIRED = "acquired"
    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class BeginResult:
    """What `begin` found. `takeover`: the lease was taken from an owner whose lease had ended.
    `reply`: the stored reply (COMPLETED). `lease_until`: the lease now held, by us or by another."""

    status: BeginStatus
    takeover: bool = False
    reply: JsonObject | None = None
    lease_until: float | None = None

    @property
    def acquired(self) -> bool:
        return self.status is BeginStatus.ACQUIRED


class IdempotencyStore:
    def __init__(
        self,
        backend: KeyValueBackend,
        *,
        record_ttl_seconds: float | None = DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.record_ttl_seconds = record_ttl_seconds
        self._clock = clock

    def begin(self, key: str, payload_hash: str, owner: str, lease_until: float) -> BeginResult:
        """Claim `key` for `owner` until `lease_until` (epoch seconds), or say why not.

        Calling it again as the same owner renews the lease.
        """
        claim = IdempotencyRecord(
            status="INPROGRESS", payload_hash=payload_hash, owner=owner, lease_until=lease_until
        )
        record_key = KEY_PREFIX + key
        for _ in range(_MAX_ATTEMPTS):
            doc = self.backend.get(record_key)
            if doc is None:
                if self.backend.put_if_absent(record_key, _dump(claim), self.record_ttl_seconds):
                    return BeginResult(BeginStatus.ACQUIRED, lease_until=lease_until)
                continue
            held = IdempotencyRecord.model_validate(doc.value)
            if held.payload_hash != payload_hash:
                return BeginResult(BeginStatus.MISMATCH)
            if held.status == "COMPLETED":
                return BeginResult(BeginStatus.COMPLETED, reply=held.reply)
            takeover = held.owner != owner
            if takeover and held.lease_until > self._clock():
                return BeginResult(BeginStatus.IN_PROGRESS, lease_until=held.lease_until)
            if self.backend.put_if_version(record_key, _dump(claim), doc.version, self.record_ttl_seconds):
                return BeginResult(BeginStatus.ACQUIRED, takeover=takeover, lease_until=lease_until)
        raise StoreError(f"idempotency key {key!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")

    def complete(self, key: str, owner: str, reply: JsonObject) -> None:
        """Store the reply for every later duplicate; only the lease holder may."""
        self._finish(key, owner, reply)

    def release(self, key: str, owner: str) -> None:
        """Drop the holder's INPROGRESS record, so that a retry starts afresh."""
        self._finish(key, owner, None)

    def get(self, key: str) -> IdempotencyRecord | None:
        doc = self.backend.get(KEY_PREFIX + key)
        return None if doc is None else IdempotencyRecord.model_validate(doc.value)

    def _finish(self, key: str, owner: str, reply: JsonObject | None) -> None:
        # A failed write means the lease moved to another owner; reading again proves it.
        record_key = KEY_PREFIX + key
        for _ in range(_MAX_ATTEMPTS):
            doc = self.backend.get(record_key)
            if doc is None:
                raise _lease_lost(key, owner)
            held = IdempotencyRecord.model_validate(doc.value)
            if held.status != "INPROGRESS" or held.owner != owner:
                raise _lease_lost(key, owner)
            if reply is None:
                done = self.backend.delete_if_version(record_key, doc.version)
            else:
                record = held.model_copy(update={"status": "COMPLETED", "reply": reply})
                done = self.backend.put_if_version(
                    record_key, _dump(record), doc.version, self.record_ttl_seconds
                )
            if done:
                return
        raise StoreError(f"idempotency key {key!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")


def _lease_lost(key: str, owner: str) -> LeaseLost:
    return LeaseLost(f"idempotency key {key!r} is not leased to {owner!r}")


def _dump(record: IdempotencyRecord) -> JsonObject:
    return record.model_dump(mode="json")
