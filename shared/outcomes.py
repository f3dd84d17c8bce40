"""What happens after a request is answered: its result goes back to where it came from, its
sealed credential waits at credential-pickup, and the people concerned are told.

`process_event` calls `record_outcome` BEFORE it marks the request completed (so a crash in between
replays the event and queues the same messages again, which adds nothing), and `deliver_outcome`
after, so the first attempt does not hold the request's lease.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.delivery import deliver_due, publish_result
from shared.delivery.outbox import DeliveryRecord, Outbox, record_key
from shared.notify import WebhookSink, notices_for, send_all
from shared.pickup import offer

if TYPE_CHECKING:
    from shared.models.events import CloudEvent
    from shared.models.results import Result
    from shared.runtime import Runtime

log = logging.getLogger("ramflow.outcomes")


def record_outcome(runtime: Runtime, event: CloudEvent, key: str, result: Result) -> list[str]:
    """Offer a new credential for pickup and queue the result for the request's destinations; the
    keys of the delivery records."""
    offer_pickup(runtime, result)
    records = publish_result(
        runtime,
        source=event.source,
        request_key=_message_key(key, result),
        result=result,
        request_id=event.id,
        deliver_now=False,
    )
    records += _answer_without_the_secret(runtime, event, key, result, records)
    notices = notices_for(runtime, event, result)
    send_all(runtime, notices)
    return [r.key for r in records] + [record_key(WebhookSink.name, n.id) for n in notices]


def _message_key(key: str, result: Result) -> str:
    """A rotated key's secret is one message per new key, however many requests ask about the rotation
    (a second `ramflow rotate` while it runs answers with the same key): it arrives once per route."""
    rotation = (result.plan or {}).get("rotation")
    if result.credential is not None and isinstance(rotation, dict) and rotation.get("new_key_id"):
        return f"rotation:{rotation['user_name']}:{rotation['new_key_id']}"
    return key


def _answer_without_the_secret(
    runtime: Runtime, event: CloudEvent, key: str, result: Result, sent: list[DeliveryRecord]
) -> list[DeliveryRecord]:
    """A later request about a rotation already under way (a second `ramflow rotate`, a ticket that
    asks again) is answered too, under its own key: the same states and ids, without the sealed
    secret, which went once with the first request's result on this route."""
    if not sent or _message_key(key, result) == key or result.plan is None:
        return []
    stored = Outbox(runtime.store.backend).get(sent[0].destination, sent[0].id)
    if stored is None or stored[0].event.get("requestid") == event.id:
        return []  # the message is this request's own (a replay adds nothing)
    rotation = {k: v for k, v in result.plan["rotation"].items() if k != "sealed_secret"}
    answer = result.model_copy(
        update={
            "credential": None,
            "plan": {**result.plan, "rotation": rotation},
            "actions": [*result.actions, f"the new key's secret went once, in message {sent[0].id}"],
        }
    )
    return publish_result(
        runtime, source=event.source, request_key=key, result=answer, request_id=event.id, deliver_now=False
    )


def offer_pickup(runtime: Runtime, result: Result) -> bool:
    """A completed ticket's sealed credential waits for its requester at credential-pickup; a rotated
    key's, under the rotation's reference (`rotation:<user>:<old key>`), for the private key's holder."""
    if result.credential is None or result.status not in {"completed", "partial"}:
        return False
    rotation = (result.plan or {}).get("rotation") if not result.ticket_id else None
    if isinstance(rotation, dict) and rotation.get("recipient"):
        return offer(
            runtime.store.backend,
            ticket_id=f"rotation:{rotation['user_name']}:{rotation['old_key_id']}",
            requester=str(rotation["recipient"]),
            user_name=result.user_name,
            credential=result.credential.model_dump(mode="json"),
            ttl_seconds=runtime.settings.pickup_ttl_seconds,
        )
    if not result.ticket_id:
        return False
    ticket = runtime.store.ledger.get_ticket(result.ticket_id)
    if ticket is None:
        return False
    return offer(
        runtime.store.backend,
        ticket_id=result.ticket_id,
        requester=ticket.requester,
        user_name=result.user_name,
        credential=result.credential.model_dump(mode="json"),
        ttl_seconds=runtime.settings.pickup_ttl_seconds,
    )


def deliver_outcome(runtime: Runtime, keys: list[str]) -> None:
    """One attempt at once; a failure is retried by the dispatcher (never raised into the flow)."""
    if not keys:
        return
    try:
        deliver_due(runtime, only=keys)
    except Exception as exc:  # the records are stored: the dispatcher finishes the job
        log.warning("first delivery attempt failed: %s", type(exc).__name__)
