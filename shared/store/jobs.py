"""Job records: a large offboarding split into per-user units that other invocations carry out.

Documents (versioned, changed only by compare-and-set):

- `job/<job_id>` — the job: owner, HR event, users, `total`, `closed`, `disabled`, `done`, `failed`,
  the current wave, `started`, `updated`, `finished`;
- `job-unit/<job_id>/<wave>/<user>` — one unit's state (`done` or `failed`, its outcome, attempts);
- `job-of/<owner>` — the owner's job while it runs: written before the job itself, under the owner's
  lock, so two jobs for one owner never exist at once (a second HR event joins the running job).

A unit records its own state first, then moves the job's counters. A unit killed between the two
leaves the counters one short; `recount` (run whenever a job is resumed) sets them from the units'
own records again, so the counters are a view and the unit records the truth.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from shared.errors import StoreError
from shared.store.base import JsonObject, KeyValueBackend
from shared.store.records import UtcDatetime, utc_now

JOBS, UNITS, JOB_OF = "job/", "job-unit/", "job-of/"
Wave = Literal["close", "disable", "delete"]
WAVES: tuple[Wave, ...] = ("close", "disable", "delete")
UnitState = Literal["done", "failed"]
_MAX_ATTEMPTS = 64


class JobRecord(BaseModel):
    """A bulk offboarding in waves, each started once every unit of the last one is done: `close`
    (every user's login profile and keys), `disable` (their policies and groups), then, when
    deleting now, `delete`."""

    job_id: str
    kind: Literal["offboard"] = "offboard"
    owner: str
    reference: str = Field(description="the HR event: the users' progress in the ledger belongs to it")
    grace_seconds: float = 0.0
    users: list[str]
    total: int
    closed: int = 0
    """Users with no login profile and no usable key any more."""
    disabled: int = 0
    """Users with nothing left: no way in, no policy, no group."""
    done: int = 0
    """Users the job has finished with: deleted (deleting now), or disabled (with a grace period)."""
    failed: int = 0
    """Units of the current wave whose last attempt failed (FC retries them; resuming sends them again)."""
    wave: Literal["close", "disable", "delete", "finished"] = "close"
    started: UtcDatetime = Field(default_factory=utc_now)
    updated: UtcDatetime = Field(default_factory=utc_now)
    finished: UtcDatetime | None = None
    resuming: bool = False
    """Reconcile stopped part-way through the job's outstanding units: the next tick goes on at once
    (the units it ran moved `updated`, so the job no longer looks stalled)."""

    @property
    def deleting(self) -> bool:
        return self.grace_seconds <= 0

    def summary(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "owner": self.owner,
            "reference": self.reference,
            "wave": self.wave,
            "total": self.total,
            "closed": self.closed,
            "disabled": self.disabled,
            "done": self.done,
            "failed": self.failed,
            "started": self.started.isoformat(),
            "updated": self.updated.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
        }


class UnitRecord(BaseModel):
    job_id: str
    wave: Wave
    user_name: str
    state: UnitState
    outcome: str = ""
    attempts: int = 0
    updated: UtcDatetime = Field(default_factory=utc_now)


class Jobs:
    def __init__(self, backend: KeyValueBackend, *, clock: Callable[[], datetime] = utc_now):
        self.backend = backend
        self._clock = clock

    # --- reading -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        doc = self.backend.get(JOBS + job_id)
        return None if doc is None else JobRecord.model_validate(doc.value)

    def all(self) -> list[JobRecord]:
        jobs = [JobRecord.model_validate(doc.value) for _, doc in self.backend.scan(JOBS)]
        return sorted(jobs, key=lambda j: j.started)

    def running_of(self, owner: str) -> str | None:
        """The id of the owner's job that has not finished, if any."""
        doc = self.backend.get(JOB_OF + _owner(owner))
        return None if doc is None else str(doc.value["job_id"])

    def running_users(self) -> set[str]:
        """Every user of a job that has not finished: its own waves (not reconcile) delete them."""
        names: set[str] = set()
        for _, doc in self.backend.scan(JOB_OF):
            job = self.get(str(doc.value["job_id"]))
            if job is not None and job.wave != "finished":
                names.update(job.users)
        return names

    def units(self, job_id: str, wave: Wave) -> dict[str, UnitRecord]:
        prefix = f"{UNITS}{job_id}/{wave}/"
        return {
            key[len(prefix) :]: UnitRecord.model_validate(doc.value) for key, doc in self.backend.scan(prefix)
        }

    # --- writing -----------------------------------------------------------------------------------
    def claim_owner(self, owner: str, job_id: str) -> str:
        """Name `job_id` as the owner's running job, unless one is named already: the job to use."""
        key = JOB_OF + _owner(owner)
        if self.backend.put_if_absent(key, {"owner": _owner(owner), "job_id": job_id}):
            return job_id
        doc = self.backend.get(key)
        return job_id if doc is None else str(doc.value["job_id"])

    def create(self, job: JobRecord) -> JobRecord:
        """The job, as stored: an existing record of the same id wins (a resumed start)."""
        if not self.backend.put_if_absent(JOBS + job.job_id, job.model_dump(mode="json")):
            found = self.get(job.job_id)
            if found is not None:
                return found
        return job

    def finish_unit(
        self, job_id: str, wave: Wave, user: str, *, ok: bool, outcome: str, now: datetime | None = None
    ) -> tuple[JobRecord, bool]:
        """Record how one unit ended and move the job's counters. Returns the job and whether this
        unit completed its wave (the caller then starts the next wave). `now`: the flow's clock."""
        before: UnitState | None = None
        now = now or self._clock()

        def unit(current: JsonObject | None) -> JsonObject:
            nonlocal before
            old = UnitRecord.model_validate(current) if current else None
            before = old.state if old else None
            state: UnitState = "done" if ok or (old is not None and old.state == "done") else "failed"
            return UnitRecord(
                job_id=job_id,
                wave=wave,
                user_name=user,
                state=state,
                outcome=outcome,
                attempts=(old.attempts if old else 0) + 1,
                updated=now,
            ).model_dump(mode="json")

        self._write(f"{UNITS}{job_id}/{wave}/{user}", unit)
        done, failed = _delta(before, ok)
        return self._move(job_id, wave, done=done, failed=failed, now=now)

    def recount(self, job_id: str, now: datetime | None = None) -> tuple[JobRecord, bool]:
        """Counters from the units' own records (after a unit died between its two writes)."""
        job = self.get(job_id)
        if job is None:
            raise StoreError(f"job {job_id!r} does not exist")
        units = {wave: self.units(job_id, wave) for wave in WAVES}
        done = {wave: sum(1 for u in units[wave].values() if u.state == "done") for wave in WAVES}
        current = units[job.wave] if job.wave != "finished" else {}
        failed = sum(1 for u in current.values() if u.state == "failed")

        def exact(record: JobRecord) -> None:
            record.closed, record.disabled, record.failed = done["close"], done["disable"], failed
            record.done = done["delete"] if record.deleting else done["disable"]

        return self._change(job_id, exact, now)

    def bring_forward(self, job_id: str, grace_seconds: float, due: datetime) -> tuple[JobRecord, bool]:
        """Compare-and-set: the job's grace becomes `grace_seconds` if the deletion it stands for
        (`due`) comes sooner than the job's own (`started` + its grace); never later. Returns the job
        and whether it changed (a job finished meanwhile is left as it is)."""
        changed = False

        def sooner(record: JobRecord) -> None:
            nonlocal changed
            own = record.started + timedelta(seconds=record.grace_seconds)
            if record.wave != "finished" and due < own:
                record.grace_seconds, changed = min(record.grace_seconds, max(0.0, grace_seconds)), True

        job, _ = self._change(job_id, sooner)
        return job, changed

    def mark_resuming(self, job_id: str, resuming: bool) -> None:
        """Set whether reconcile left the job's outstanding units part-way (`updated` is kept)."""

        def mark(current: JsonObject | None) -> JsonObject:
            if current is None:
                raise StoreError(f"job {job_id!r} does not exist")
            return {**current, "resuming": resuming}

        self._write(JOBS + job_id, mark)

    def close(self, job: JobRecord) -> None:
        """The job has finished: the owner has no running job any more."""
        key = JOB_OF + _owner(job.owner)
        doc = self.backend.get(key)
        if doc is not None and doc.value.get("job_id") == job.job_id:
            self.backend.delete_if_version(key, doc.version)

    # --- internals ---------------------------------------------------------------------------------
    def _move(
        self, job_id: str, wave: Wave, *, done: int, failed: int, now: datetime
    ) -> tuple[JobRecord, bool]:
        def count(record: JobRecord) -> None:
            if wave == "close":
                record.closed += done
            elif wave == "disable":
                record.disabled += done
                if not record.deleting:
                    record.done += done
            else:
                record.done += done
            if record.wave == wave:
                record.failed = max(0, record.failed + failed)

        return self._change(job_id, count, now)

    def _change(
        self, job_id: str, mutate: Callable[[JobRecord], None], now: datetime | None = None
    ) -> tuple[JobRecord, bool]:
        """Apply `mutate`, then advance the wave if its last unit is done: (job, advanced by us)."""
        advanced = False

        def change(current: JsonObject | None) -> JsonObject:
            nonlocal advanced
            if current is None:
                raise StoreError(f"job {job_id!r} does not exist")
            record = JobRecord.model_validate(current)
            was = record.wave
            mutate(record)
            stamp = now or self._clock()
            if record.wave == "close" and record.closed >= record.total:
                record.wave, record.failed = "disable", 0
            if record.wave == "disable" and record.disabled >= record.total:
                record.wave, record.failed = ("delete", 0) if record.deleting else ("finished", 0)
            if record.wave == "delete" and record.done >= record.total:
                record.wave, record.failed = "finished", 0
            if record.wave == "finished" and record.finished is None:
                record.finished = stamp
            record.updated = stamp
            advanced = record.wave != was
            return record.model_dump(mode="json")

        stored = self._write(JOBS + job_id, change)
        return JobRecord.model_validate(stored), advanced

    def _write(self, key: str, change: Callable[[JsonObject | None], JsonObject]) -> JsonObject:
        for attempt in range(_MAX_ATTEMPTS):
            doc = self.backend.get(key)
            after = change(None if doc is None else doc.value)
            if doc is None:
                if self.backend.put_if_absent(key, after):
                    return after
            elif after == doc.value or self.backend.put_if_version(key, after, doc.version):
                return after
            time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # let the winner's peers spread out
        raise StoreError(f"job record {key!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")


def _delta(before: UnitState | None, ok: bool) -> tuple[int, int]:
    """(done, failed) counter changes for a unit going from `before` to ok / failed."""
    if before == "done":
        return 0, 0
    if ok:
        return 1, -1 if before == "failed" else 0
    return 0, 0 if before == "failed" else 1


def _owner(owner: str) -> str:
    return owner.strip().casefold()
