"""`webhook-ingress`: Standard Webhooks in, the owning lifecycle function behind (HTTP trigger).

Order matters: size, then signature, then content — an unauthenticated caller learns nothing about
what would be accepted, and nothing is stored or called before the signature verifies. The
`webhook-id` is the idempotency key, so a sender's retry gets the first reply and has no second
effect. Replies: 200 completed, 202 pending approval / request, 400 rejected, 401 bad signature,
405 not POST, 409 in progress (Retry-After), 413 too large, 415 not JSON, 422 a permanent failure,
503 a cloud failure the sender should retry (Retry-After).

A verified event is handed to the function that owns its type by a synchronous InvokeFunction
(`shared.handoff`): the ingress's role holds only `fc:InvokeFunction`, never RAM powers, and the
result goes back to the sender's destinations from that function, not a second time from here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from shared.audit import audit, configure_audit
from shared.cloud.clients import CloudCredentials
from shared.cloud.cloud import account_runner
from shared.cloud.fc import FcGateway
from shared.config import Settings
from shared.errors import BadRequest, ConfigError, FlowFailed, ValidationFailed
from shared.fc import HttpEvent, deadline_of, http_reply, request_id_of
from shared.handler import process_event
from shared.handoff import OWNER, handoff_flows
from shared.models.events import CloudEvent, parse_events
from shared.models.results import Result
from shared.runtime import runtime_for
from shared.webhooks import MAX_BODY_BYTES, WEBHOOK_ID, Delivery, WebhookVerifier

log = logging.getLogger("ramflow.webhook_ingress")

# Structured-mode CloudEvents (one JSON object per delivery), UTF-8.
_CONTENT_TYPE = re.compile(r"application/(cloudevents\+)?json\s*(;\s*charset=\"?utf-8\"?\s*)?", re.IGNORECASE)
STATUS_OF = {
    "completed": 200,
    "partial": 200,
    "pending_approval": 202,
    "pending_request": 202,  # an approval or a revocation kept until its request arrives
    "in_progress": 409,  # another attempt holds the lease: not delivered yet, so the sender must retry
    "rejected": 400,
    "failed": 422,  # a permanent failure, answered as final (a retryable one is raised: 503)
}
RETRY_AFTER_SECONDS = "30"
IDEMPOTENCY_PREFIX = "webhook:"


def _reply(status: int, result: Result, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return http_reply(status, result.to_json(), headers)


def _refuse(status: int, field: str, reason: str, **headers: str) -> dict[str, Any]:
    return _reply(status, Result.rejected([{"field": field, "reason": reason}]), headers or None)


def _loggable_id(value: str | None) -> str:
    """An unauthenticated caller's webhook-id goes to the audit trail only if it is well-formed."""
    return value if value and WEBHOOK_ID.fullmatch(value) else "(missing or malformed)"


def _event_of(delivery: Delivery, request: HttpEvent) -> CloudEvent | dict[str, Any]:
    """The delivered CloudEvent, or the reply refusing it."""
    content_type = (request.header("content-type") or "").strip()
    if not _CONTENT_TYPE.fullmatch(content_type):
        return _refuse(
            415,
            "content-type",
            "send one structured CloudEvent as application/cloudevents+json or application/json",
        )
    if not delivery.body.lstrip().startswith(b"{"):
        return _refuse(400, "body", "the body must be one CloudEvent (a JSON object), not a batch")
    try:
        (event,) = parse_events(delivery.body)
    except ValidationFailed as exc:
        return _reply(400, Result.rejected(exc))
    if event.type not in OWNER:
        return _reply(
            400,
            Result.rejected(
                [{"field": "type", "reason": f"unknown event type {event.type!r}"}], event_id=event.id
            ),
        )
    return event


def handle(request: HttpEvent, context: Any) -> dict[str, Any]:
    """One delivery → one reply (see the module docstring for the statuses)."""
    source_ip = str(request.request_context.http.get("sourceIp") or "")
    if request.method != "POST":
        return _refuse(405, "method", "deliveries are POSTed", Allow="POST")
    if len(request.body) > 2 * MAX_BODY_BYTES:  # cheap bound before decoding (base64 grows by 4/3)
        return _refuse(413, "body", f"at most {MAX_BODY_BYTES} bytes")
    try:
        body = request.body_bytes()
    except ValueError:
        return _refuse(400, "body", "the body is not valid base64")
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, "body", f"at most {MAX_BODY_BYTES} bytes")

    settings = Settings.from_env()
    if settings.audit_path:
        configure_audit(settings.audit_path)  # refusals are audited before any runtime exists
    verdict = WebhookVerifier(settings.webhook_secrets).verify(body, request.headers)
    if not isinstance(verdict, Delivery):
        audit(
            "webhook.refused",
            actor=source_ip or "unknown",
            ticket_id=None,
            outcome="rejected",
            code=verdict.code,
            webhook_id=_loggable_id(request.header("webhook-id")),
        )
        return _refuse(401, verdict.header, verdict.reason)

    parsed = _event_of(verdict, request)
    if not isinstance(parsed, CloudEvent):
        audit(
            "webhook.rejected",
            actor=source_ip or "unknown",
            ticket_id=None,
            outcome="rejected",
            webhook_id=verdict.webhook_id,
            status=parsed["statusCode"],
        )
        return parsed

    credentials = CloudCredentials.resolve(context)
    runtime = runtime_for(settings, credentials)
    functions = FcGateway(settings, credentials, account_runner(settings, credentials))
    try:
        result = process_event(
            parsed,
            handoff_flows(functions.invoke, verdict.body),
            runtime,
            owner=request_id_of(context),
            lease_until=deadline_of(context, settings.idempotency_lease_seconds),
            idempotency_key=f"{IDEMPOTENCY_PREFIX}{parsed.source} {verdict.webhook_id}",  # ids are per sender
            outcomes=False,  # the invoked function delivers the result and notices, once
        )
    except FlowFailed as failed:
        # Not done: the sender's retry (any non-2xx) finishes the job. 409 while another attempt
        # holds the event or the user, 503 after a retryable failure.
        status = 409 if failed.result.status == "in_progress" else 503
        return _reply(status, failed.result, {"Retry-After": RETRY_AFTER_SECONDS})
    status = STATUS_OF.get(result.status, 200)
    return _reply(status, result, {"Retry-After": RETRY_AFTER_SECONDS} if status == 409 else None)


def handle_event(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = HttpEvent.parse(event)
    except BadRequest as exc:
        return _refuse(400, "event", str(exc))
    try:
        return handle(request, context)
    except ConfigError as exc:
        log.error("request %s: configuration error: %s", request_id_of(context), exc)
        return _refuse(500, "config", "the webhook ingress is misconfigured")
    except Exception as exc:  # a reply, never a stack trace or a message that might echo input
        log.error("request %s: unexpected %s", request_id_of(context), type(exc).__name__)
        return _refuse(500, "internal", "the webhook ingress failed", **{"Retry-After": RETRY_AFTER_SECONDS})
