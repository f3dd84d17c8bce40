"""Result delivery: every finished request's reply goes back to where the request came from.

The API other flows use (e.g. key rotation, to hand over a rotated key):

    from shared.delivery import publish_result, deliver_due

    publish_result(runtime, source=event.source, request_key=event.idempotency_key, result=result)
        # → the DeliveryRecords written, one per destination of the route matching `source`
        #   (RAMFLOW_DESTINATIONS); [] when no route matches. Idempotent: the same request_key and
        #   status always make the same message id, so a replayed event sends nothing twice.
        #   `result` is a Result or its JSON (ciphertext only: the store refuses anything else).
        #   With deliver_now (default) one attempt is made at once; failures are retried later.

    deliver_due(runtime)   # one pass over due records (`ramflow serve` runs it in a loop; the
                           # reconcile timer runs it in FC). Returns a DispatchReport.

    Outbox(runtime.store.backend).replay(message_id)   # send a dead or delivered message again

The message is a CloudEvent: `type` `ramflow.result.<status>`, `subject` the ticket, `data` the reply
JSON, `requestsource` / `requestid` naming the request it answers. The same `id` is the webhook-id
and the EventBridge event id on every attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared.audit import audit
from shared.delivery.config import Destinations
from shared.delivery.outbox import DeliveryRecord, Outbox, message_id
from shared.delivery.senders import sender_for
from shared.errors import ConfigError, DeliveryFailed, StoreError

if TYPE_CHECKING:
    from shared.models.results import Result
    from shared.runtime import Runtime

log = logging.getLogger("ramflow.delivery")

RESULT_SOURCE = "ramflow"
RESULT_TYPE_PREFIX = "ramflow.result."
FINAL_STATUSES = frozenset({"completed", "partial", "rejected", "failed"})


def result_event(
    result: dict[str, Any], *, message: str, request_source: str | None, request_id: str | None
) -> dict[str, Any]:
    """The CloudEvent carrying a reply (structured mode)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": message,
        "source": RESULT_SOURCE,
        "type": f"{RESULT_TYPE_PREFIX}{result.get('status', 'unknown')}",
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datacontenttype": "application/json",
        "data": result,
    }
    if result.get("ticket_id"):
        event["subject"] = result["ticket_id"]
    if request_source:
        event["requestsource"] = request_source
    if request_id:
        event["requestid"] = request_id
    return event


def publish_result(
    runtime: Runtime,
    *,
    source: str,
    request_key: str,
    result: Result | dict[str, Any],
    request_id: str | None = None,
    deliver_now: bool = True,
) -> list[DeliveryRecord]:
    """Queue the reply for every destination of `source`'s route (see the module docstring)."""
    reply = result if isinstance(result, dict) else result.to_json()
    status = str(reply.get("status"))
    route = runtime.destinations.route_for(source)
    if route is None or status not in FINAL_STATUSES:
        return []
    message = message_id("result", request_key, status)
    event = result_event(reply, message=message, request_source=source, request_id=request_id)
    channels = [c for c, target in (("webhook", route.webhook), ("eventbridge", route.eventbridge)) if target]
    outbox = Outbox(runtime.store.backend)
    records = []
    for channel in channels:
        record = DeliveryRecord(
            id=message,
            destination=f"{route.name}/{channel}",
            kind="result",
            ticket_id=reply.get("ticket_id"),
            source=source,
            event=event,
        )
        if outbox.add(record):
            audit(
                "delivery.queued",
                actor="ramflow",
                ticket_id=record.ticket_id,
                outcome="queued",
                message=message,
                destination=record.destination,
                type=event["type"],
            )
        records.append(record)
    if deliver_now and records:
        deliver_due(runtime, only={r.key for r in records})
    return records


@dataclass
class DispatchReport:
    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


def deliver_due(
    runtime: Runtime, *, now: float | None = None, only: Iterable[str] | None = None, limit: int = 100
) -> DispatchReport:
    """One attempt for each due record (all of them, or only those keys); see the module docstring."""
    report = DispatchReport()
    outbox = Outbox(runtime.store.backend, lease_seconds=runtime.settings.delivery_lease_seconds)
    wanted = set(only) if only is not None else None
    if wanted is not None:
        found = []
        for key in wanted:
            destination, _, message = key.removeprefix("delivery:").partition(" ")
            entry = outbox.get(destination, message)
            if entry is not None:
                found.append(entry)
    else:
        found = outbox.all()
    schedule = runtime.destinations.retry_schedule
    for record, version in found[:limit] if wanted is None else found:
        moment = time.time() if now is None else now
        claimed = outbox.claim(record, version, moment)
        if claimed is None:
            continue
        record, version = claimed
        _attempt(runtime, outbox, record, version, schedule, report)
    return report


def _attempt(
    runtime: Runtime,
    outbox: Outbox,
    record: DeliveryRecord,
    version: int,
    schedule: list[float],
    report: DispatchReport,
) -> None:
    attempts = record.attempts + 1
    try:
        sender_for(record.destination, runtime).send(record.id, record.event)
    except (DeliveryFailed, ConfigError) as exc:
        reason = str(exc) if isinstance(exc, DeliveryFailed) else "destination not configured"
        done = time.time()
        dead = attempts > len(schedule)
        failed = record.model_copy(
            update={
                "status": "dead" if dead else "failing",
                "attempts": attempts,
                "lease_until": None,
                "last_error": reason,
                "next_at": done if dead else done + schedule[attempts - 1],
            }
        )
        _save(outbox, failed, version)
        (report.dead if dead else report.retrying).append(record.id)
        audit(
            "delivery.failed" if dead else "delivery.retrying",
            actor="ramflow",
            ticket_id=record.ticket_id,
            outcome="dead" if dead else "failed",
            message=record.id,
            destination=record.destination,
            attempt=attempts,
            reason=reason,
            **({} if dead else {"next_in_seconds": schedule[attempts - 1]}),
        )
        if dead:
            log.error(
                "delivery %s to %s gave up after %d attempts: %s",
                record.id,
                record.destination,
                attempts,
                reason,
            )
        return
    delivered = record.model_copy(
        update={
            "status": "delivered",
            "attempts": attempts,
            "lease_until": None,
            "last_error": None,
            "delivered_at": time.time(),
        }
    )
    _save(outbox, delivered, version)
    report.delivered.append(record.id)
    audit(
        "delivery.delivered",
        actor="ramflow",
        ticket_id=record.ticket_id,
        outcome="ok",
        message=record.id,
        destination=record.destination,
        attempt=attempts,
    )


def _save(outbox: Outbox, record: DeliveryRecord, version: int) -> None:
    try:
        if outbox.save(record, version) is None:
            log.warning("delivery %s: the record changed during the attempt", record.id)
    except StoreError as exc:  # the lease expires and the message is sent again (same id)
        log.warning("delivery %s: could not record the attempt: %s", record.id, type(exc).__name__)


__all__ = [
    "DeliveryRecord",
    "Destinations",
    "DispatchReport",
    "Outbox",
    "deliver_due",
    "message_id",
    "publish_result",
    "result_event",
]
