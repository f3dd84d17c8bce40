"""FC handler `reconcile` (timer trigger): expire grants, finish graced deletions, report drift.

A timer trigger sends `{"triggerTime", "triggerName", "payload"}`, not a CloudEvent; `payload` is
the free text configured on the trigger and may be JSON such as `{"dry_run": true}`. A manual
invoke may send nothing at all. Each pass re-reads the world, so there is no reply to replay: the
idempotency store only serves as a lease, so that overlapping ticks never work side by side.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.fc import deadline_of, request_id_of
from shared.flows.reconcile import reconcile
from shared.models.results import Result
from shared.runtime import invocation_deadline, runtime_for

log = logging.getLogger("ramflow.reconcile")

LEASE_KEY = "reconcile/pass"


class TimerTick(BaseModel):
    """FC's timer-trigger event."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    trigger_time: str | None = Field(None, alias="triggerTime")
    trigger_name: str = Field("manual", alias="triggerName")
    payload: str | None = None

    @property
    def dry_run(self) -> bool:
        try:
            options = json.loads(self.payload) if self.payload else {}
        except ValueError:
            return False
        return isinstance(options, dict) and options.get("dry_run") is True


def parse_tick(event: Any) -> TimerTick:
    if isinstance(event, bytes | bytearray):
        event = event.decode("utf-8", errors="replace")
    if isinstance(event, str):
        try:
            event = json.loads(event) if event.strip() else {}
        except ValueError:
            event = {}
    try:
        return TimerTick.model_validate(event if isinstance(event, dict) else {})
    except ValidationError:
        return TimerTick()


def handler(event: Any, context: Any) -> dict[str, Any]:
    tick = parse_tick(event)
    settings = Settings.from_env()
    rt = runtime_for(settings, CloudCredentials.resolve(context))
    owner = request_id_of(context)
    until = deadline_of(context, settings.idempotency_lease_seconds)
    claim = rt.store.idempotency.begin(LEASE_KEY, "reconcile", owner, until)
    if not claim.acquired:
        return Result(status="in_progress").to_json()
    deadline = invocation_deadline.set(until)  # the users' locks last as long as the pass
    try:
        report = reconcile(rt, dry_run=tick.dry_run, actor=f"timer:{tick.trigger_name}")
    finally:
        invocation_deadline.reset(deadline)
        rt.store.idempotency.release(LEASE_KEY, owner)
    result = report.result()
    if result.status != "completed":
        log.warning(
            "reconcile pass %s: %d errors; the next pass retries", tick.trigger_time, len(result.errors)
        )
    return result.to_json()
