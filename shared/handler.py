"""The one path every event-driven function takes: parse → idempotency → flow → reply.

Function handlers are a line each (`handler = event_function({TYPE: flow})`); the webhook
ingress calls `process_event` with the `webhook-id` as its idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared.audit import audit, audit_scope
from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.errors import (
    BudgetExhausted,
    CloudError,
    FlowFailed,
    LeaseLost,
    StoreError,
    UserBusy,
    ValidationFailed,
)
from shared.fc import deadline_of, request_id_of
from shared.logs import audited
from shared.models.events import CloudEvent, parse_data, parse_events
from shared.models.results import FieldError, Result
from shared.outcomes import deliver_outcome, record_outcome
from shared.runtime import Runtime, invocation_deadline, runtime_for
from shared.store import BeginStatus
from shared.store.idempotency import IdempotencyStore

log = logging.getLogger("ramflow")

Flow = Callable[[Any, CloudEvent, Runtime], Result]


def process_event(
    event: CloudEvent,
    flows: Mapping[str, Flow],
    runtime: Runtime,
    *,
    owner: str,
    lease_until: float,
    idempotency_key: str | None = None,
    outcomes: bool = True,
) -> Result:
    """Run one event exactly once. Duplicates get the stored reply, or `in_progress`. Every audit
    line of the run names the event; a run that fails writes a `flow.failed` line before raising.
    `outcomes=False` when the flows hand the event to a function that delivers its own result (the
    webhook ingress): the result then goes out once, under that function's key, not twice."""
    with audit_scope(event_id=event.id):
        try:
            result = _process_event(
                event,
                flows,
                runtime,
                owner=owner,
                lease_until=lease_until,
                idempotency_key=idempotency_key,
                outcomes=outcomes,
            )
        except FlowFailed as exc:
            _audit_failure(event, exc.result.status, [e.model_dump() for e in exc.result.errors])
            raise
        except Exception as exc:
            _audit_failure(event, "failed", [{"field": "flow", "reason": type(exc).__name__}])
            raise
        if result.status == "failed":
            _audit_failure(event, "failed", [e.model_dump() for e in result.errors])
        return result


def _audit_failure(event: CloudEvent, outcome: str, errors: list[dict[str, str]]) -> None:
    ticket = event.data.get("ticket_id") if isinstance(event.data, dict) else None
    audit(
        "flow.failed",
        actor=event.source,
        ticket_id=ticket if isinstance(ticket, str) else None,
        outcome=outcome,
        type=event.type,
        errors=errors,
    )


def _process_event(
    event: CloudEvent,
    flows: Mapping[str, Flow],
    runtime: Runtime,
    *,
    owner: str,
    lease_until: float,
    idempotency_key: str | None = None,
    outcomes: bool = True,
) -> Result:
    flow = flows.get(event.type)
    if flow is None:
        return Result.rejected(
            [{"field": "type", "reason": f"this function does not handle {event.type!r}"}], event_id=event.id
        )
    try:
        data = parse_data(event)
    except ValidationFailed as exc:
        audit(
            "event.rejected",
            actor=event.source,
            ticket_id=None,
            outcome="rejected",
            event_id=event.id,
            type=event.type,
            errors=exc.errors,
        )
        return Result.rejected(exc, event_id=event.id)

    key = idempotency_key or event.idempotency_key
    idempotency = runtime.store.idempotency
    ticket_id = getattr(data, "ticket_id", None)
    claim = idempotency.begin(key, event.fingerprint, owner, lease_until)
    if claim.status is BeginStatus.COMPLETED:
        return Result.model_validate(claim.reply)
    if claim.status is BeginStatus.IN_PROGRESS:
        # Another attempt holds the lease (or died holding it; it is taken over once its deadline
        # has passed). Not done yet, so never answered as a success: the sender delivers it again.
        raise FlowFailed(
            Result(
                status="in_progress",
                event_id=event.id,
                ticket_id=ticket_id,
                errors=[
                    FieldError(field="id", reason="another attempt is handling this event; deliver it again")
                ],
            )
        )
    if claim.status is BeginStatus.MISMATCH:
        return Result.rejected(
            [{"field": "id", "reason": "this event id was already used with a different payload"}],
            event_id=event.id,
        )
    deadline = invocation_deadline.set(lease_until)
    try:
        result = flow(data, event, runtime)
    except FlowFailed as exc:
        _release(idempotency, key, owner)
        exc.result.event_id = event.id
        if not exc.retryable:
            return exc.result  # permanent: a redelivery would fail the same way
        raise
    except UserBusy as exc:
        _release(idempotency, key, owner)
        busy = Result(
            status="in_progress",
            event_id=event.id,
            ticket_id=ticket_id,
            errors=[FieldError(field="data", reason="another change to this user is under way; retry later")],
        )
        raise FlowFailed(busy) from exc
    except BudgetExhausted as exc:  # nothing failed: the account's API budget is spent for now
        _release(idempotency, key, owner)
        waiting = Result(
            status="in_progress",
            event_id=event.id,
            ticket_id=ticket_id,
            errors=[
                FieldError(
                    field=exc.action or "cloud", reason="the account's API budget is spent; retry later"
                )
            ],
        )
        raise FlowFailed(waiting) from exc
    except CloudError as exc:
        _release(idempotency, key, owner)
        failed = Result(
            status="failed",
            event_id=event.id,
            ticket_id=ticket_id,
            errors=[FieldError(field=exc.action or "cloud", reason=exc.code)],
        )
        if outcomes:
            _tell_failure(runtime, event, key, failed)
        if not exc.retryable:
            return failed  # permanent: answered as final (and audited as flow.failed)
        raise FlowFailed(failed) from exc
    except BaseException:
        _release(idempotency, key, owner)
        raise
    finally:
        invocation_deadline.reset(deadline)
    result.event_id = event.id
    if result.status == "in_progress":
        _release(idempotency, key, owner)
        raise FlowFailed(result)  # not done: the sender must deliver it again
    # before complete: a crash re-queues the same
    queued = record_outcome(runtime, event, key, result) if outcomes else []
    if result.status == "rejected":
        _release(idempotency, key, owner)  # nothing was done: a corrected or later delivery may run
    else:
        idempotency.complete(key, owner, result.to_json())
    deliver_outcome(runtime, queued)
    return result


def _release(idempotency: IdempotencyStore, key: str, owner: str) -> None:
    """Give the lease back so a redelivery starts at once; if the store cannot be reached, the
    lease ends at this invocation's deadline and the redelivery takes it over then."""
    try:
        idempotency.release(key, owner)
    except (StoreError, LeaseLost) as exc:
        log.warning("could not release the lease of an event: %s", type(exc).__name__)


def _tell_failure(runtime: Runtime, event: CloudEvent, key: str, failed: Result) -> None:
    """A failed attempt is reported too (a later retry may still complete it); never masks the failure."""
    try:
        deliver_outcome(runtime, record_outcome(runtime, event, key, failed))
    except Exception as exc:
        log.warning("could not queue the failure result of %s: %s", event.id, type(exc).__name__)


def event_function(flows: Mapping[str, Flow]) -> Callable[[Any, Any], dict[str, Any] | list[dict[str, Any]]]:
    """An FC handler for events of the given types (one event or an EventBridge list)."""

    @audited
    def handler(event: Any, context: Any) -> dict[str, Any] | list[dict[str, Any]]:
        try:
            events = parse_events(event)
        except ValidationFailed as exc:
            audit("event.rejected", actor="unknown", ticket_id=None, outcome="rejected", errors=exc.errors)
            return Result.rejected(exc).to_json()
        settings = Settings.from_env()
        runtime = runtime_for(settings, CloudCredentials.resolve(context, required=False))
        owner, lease_until = request_id_of(context), deadline_of(context, settings.idempotency_lease_seconds)
        replies = [
            process_event(e, flows, runtime, owner=f"{owner}/{i}", lease_until=lease_until).to_json()
            for i, e in enumerate(events)
        ]
        return replies[0] if len(replies) == 1 else replies

    return handler
