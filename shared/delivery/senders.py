"""How a message leaves: outbound Standard Webhooks, or EventBridge PutEvents.

A sender returns normally on success and raises `DeliveryFailed` with a short reason (an HTTP status
or an error type, never a response body or a secret) otherwise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

import requests

from shared.delivery.config import EventBridgeTarget, WebhookTarget
from shared.errors import CloudError, ConfigError, DeliveryFailed
from shared.webhooks import signed_headers

if TYPE_CHECKING:
    from shared.runtime import Runtime

CONTENT_TYPE = "application/cloudevents+json"


class Sender(Protocol):
    def send(self, message_id: str, event: dict[str, Any]) -> None: ...


def body_of(event: dict[str, Any]) -> bytes:
    """The exact bytes signed and sent (compact JSON, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebhookSender:
    """POST the CloudEvent (structured mode), signed with the `standardwebhooks` library.

    `webhook-id` is the message id, the same on every retry, so the receiver can deduplicate; a fresh
    timestamp and signature are made for each attempt, as the specification asks."""

    def __init__(self, target: WebhookTarget, session: requests.Session | None = None):
        self.target = target
        self.session = session or requests.Session()

    def send(self, message_id: str, event: dict[str, Any]) -> None:
        body = body_of(event)
        headers = {**signed_headers(self.target.secret(), message_id, body), "Content-Type": CONTENT_TYPE}
        try:
            reply = self.session.post(
                str(self.target.url),
                data=body,
                headers=headers,
                timeout=self.target.timeout_seconds,
                allow_redirects=False,  # a redirect is a failure: the signature is for this URL's owner
            )
        except requests.RequestException as exc:
            raise DeliveryFailed(type(exc).__name__) from None
        if not 200 <= reply.status_code < 300:
            raise DeliveryFailed(f"HTTP {reply.status_code}")


class EventBridgeSender:
    """PutEvents of the CloudEvent to a bus of this account, with the function's own credentials."""

    def __init__(self, target: EventBridgeTarget, runtime: Runtime):
        self.target = target
        self.runtime = runtime

    def send(self, message_id: str, event: dict[str, Any]) -> None:
        try:
            self.runtime.cloud.eventbridge.put_event(self.target.bus, {**event, "id": message_id})
        except CloudError as exc:
            raise DeliveryFailed(exc.code) from None


def sender_for(destination: str, runtime: Runtime) -> Sender:
    """The sender of `<route>/webhook`, `<route>/eventbridge` or `notifications/webhook`."""
    destinations = runtime.destinations
    route_name, _, channel = destination.rpartition("/")
    if route_name == "notifications" and channel == "webhook" and destinations.notifications.webhook:
        return WebhookSender(destinations.notifications.webhook)
    route = destinations.route(route_name)
    if route is not None and channel == "webhook" and route.webhook is not None:
        return WebhookSender(route.webhook)
    if route is not None and channel == "eventbridge" and route.eventbridge is not None:
        return EventBridgeSender(route.eventbridge, runtime)
    raise ConfigError(f"destination {destination!r} is no longer configured in RAMFLOW_DESTINATIONS")
