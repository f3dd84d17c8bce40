"""The webhook ingress's flows: hand the verified event to the function that owns it.

The ingress holds no RAM power (its role allows only `fc:InvokeFunction` on the functions
that own events, local/roles.py): each event type's flow is a synchronous InvokeFunction of the function
EventBridge would have triggered, with the delivered CloudEvent unchanged. That function applies
its own idempotency (`source` + `id`) under its own role; the ingress keeps the webhook-id record,
so a sender's retry still gets the first reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from shared.cloud.fc import Invocation
from shared.handler import Flow, FlowFailed
from shared.models.events import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    KEY_ROTATION_REQUESTED,
    USER_OFFBOARDED,
    USER_REHIRED,
    USER_REQUESTED,
    CloudEvent,
)
from shared.models.results import FieldError, Result

OWNER: dict[str, str] = {
    USER_REQUESTED: "user-requested",
    ACCESS_APPROVED: "access-approved",
    ACCESS_REVOKED: "access-revoked",
    USER_OFFBOARDED: "user-offboarded",
    USER_REHIRED: "user-offboarded",
    KEY_ROTATION_REQUESTED: "key-rotation",  # a new key: only the rotation role creates it outside provisioning
}
"""CloudEvent type → the function that owns it (s.yaml's EventBridge filters say the same)."""

Invoke = Callable[[str, bytes], Invocation]


def _failed(event: CloudEvent, data: Any, function: str, reason: str) -> FlowFailed:
    """A failure the sender should retry; the function's own error text is never echoed."""
    result = Result(
        status="failed",
        event_id=event.id,
        ticket_id=getattr(data, "ticket_id", None),
        errors=[FieldError(field=function, reason=reason)],
    )
    return FlowFailed(result)


def handoff_flows(invoke: Invoke, body: bytes) -> Mapping[str, Flow]:
    """`type → flow` for `process_event`: each flow invokes the owning function with `body`."""

    def owned_by(function: str) -> Flow:
        def flow(data: Any, event: CloudEvent, rt: Any) -> Result:
            outcome = invoke(function, body)
            if outcome.error_type is not None:
                raise _failed(event, data, function, f"{function} failed ({outcome.error_type}); retry later")
            try:
                return Result.model_validate(json.loads(outcome.payload))
            except (ValueError, ValidationError):
                raise _failed(event, data, function, f"{function} answered an unreadable reply") from None

        return flow

    return {event_type: owned_by(function) for event_type, function in OWNER.items()}
