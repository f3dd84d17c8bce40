"""Reconcile's sweep record: where the drift sweep has got to, and who is sweeping right now.

One document holds both the cursor and the lease, so a tick that lost its lease can never move
the cursor (every save names the version it read). A sweep of 5,000 users takes longer than one
timer tick; each tick takes the lease, goes on from the cursor, saves it after every slice (renewing
the lease) and lets go. A tick that finds the lease held by a live sweep does nothing: two sweeps
never overlap. A sweep that crashed loses its lease `Settings.sweep_lease_seconds` after its last
save (a slice takes seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from shared.config import DEFAULT_SWEEP_LEASE_SECONDS
from shared.store.base import KeyValueBackend

KEY = "reconcile:sweep"


class SweepRecord(BaseModel):
    sweep_id: str
    started_at: float
    cursor: str = ""
    """The last user examined: the sweep goes on with the next name in sorted order."""
    checked: int = 0
    total: int = 0
    drift: int = 0
    ticks: int = 0
    finished_at: float | None = None
    owner: str | None = None
    lease_until: float = 0.0

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def progress(self, now: float) -> dict[str, object]:
        """How far the sweep has got and, at the pace so far, when it will be done."""
        remaining = max(0, self.total - self.checked)
        elapsed = (self.finished_at or now) - self.started_at
        eta = None if self.finished or not self.checked else round(elapsed / self.checked * remaining, 1)
        return {
            "sweep_id": self.sweep_id,
            "checked": self.checked,
            "total": self.total,
            "finished": self.finished,
            "ticks": self.ticks,
            "elapsed_seconds": round(elapsed, 1),
            "eta_seconds": eta,
        }


class SweepLog:
    """The sweep record on the store's versioned documents."""

    def __init__(self, backend: KeyValueBackend, *, clock: Callable[[], float] = time.time):
        self._backend = backend
        self._clock = clock
        self._version: int | None = None

    def claim(self, owner: str, lease_seconds: float = DEFAULT_SWEEP_LEASE_SECONDS) -> SweepRecord | None:
        """The record, now leased to `owner` (a new sweep if the last one finished or none began);
        None while another owner's lease is live."""
        now = self._clock()
        doc = self._backend.get(KEY)
        record = SweepRecord.model_validate(doc.value) if doc else None
        if record is not None and record.owner not in (None, owner) and record.lease_until > now:
            return None
        if record is None or record.finished:
            record = SweepRecord(sweep_id=f"{int(now)}-{owner[:8]}", started_at=now)
        record.owner, record.lease_until = owner, now + lease_seconds
        record.ticks += 1
        return record if self._write(record, doc.version if doc else None) else None

    def save(self, record: SweepRecord, lease_seconds: float = DEFAULT_SWEEP_LEASE_SECONDS) -> bool:
        """Store the progress and renew the lease; False if the lease was lost (stop sweeping)."""
        record.lease_until = self._clock() + lease_seconds
        return self._write(record, self._version)

    def release(self, record: SweepRecord) -> None:
        record.owner, record.lease_until = None, 0.0
        self._write(record, self._version)

    def _write(self, record: SweepRecord, version: int | None) -> bool:
        value = record.model_dump()
        ok = (
            self._backend.put_if_absent(KEY, value)
            if version is None
            else self._backend.put_if_version(KEY, value, version)
        )
        if ok:
            doc = self._backend.get(KEY)
            self._version = doc.version if doc else None
        return ok
