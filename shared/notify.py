"""Notifications: who should know what happened, through one interface and pluggable sinks.

Kinds: `approval_needed` (the catalog's approvers, through the ticket system that sent the request),
`access_granted` (requester and owner), `expiring_7d` / `expiring_1d` (requester and owner; the
reconcile pass sends them), `revoked`, `disabled`, `deleted`; for AccessKeys (shared/flows/keys.py,
owner): `key_rotated`, `rotation_held`, `unused_key_deactivated`. Each is sent at most once per
(ticket, kind): `notice:<ticket> <kind>` is recorded in the store after the sinks took it, and a sink
gets a stable message id, so a crash in between repeats the same message, never a new one.

Sinks: the outbound webhook (`notifications.webhook` of RAMFLOW_DESTINATIONS) queues each notice in
the delivery outbox (signed, retried, replayable like results). A chat app is another `NoticeSink`.
Notices name people and tickets, never a secret: a credential is never part of one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.audit import audit
from shared.delivery.outbox import DeliveryRecord, Outbox, message_id
from shared.models.events import ACCESS_APPROVED, ACCESS_REVOKED, USER_OFFBOARDED, USER_REQUESTED

if TYPE_CHECKING:
    from shared.models.events import CloudEvent
    from shared.models.results import Result
    from shared.runtime import Runtime
    from shared.store.base import KeyValueBackend
    from shared.store.records import TicketRecord

log = logging.getLogger("ramflow.notify")

Kind = Literal[
    "approval_needed",
    "access_granted",
    "expiring_7d",
    "expiring_1d",
    "revoked",
    "disabled",
    "deleted",
    "key_rotated",
    "rotation_held",
    "unused_key_deactivated",
]
PREFIX = "notice:"
NOTICE_TYPE_PREFIX = "ramflow.notice."
EXPIRY_WINDOWS: tuple[tuple[Kind, timedelta], ...] = (
    ("expiring_1d", timedelta(days=1)),
    ("expiring_7d", timedelta(days=7)),
)


class Notice(BaseModel):
    """One thing someone should hear about; `ticket_id` with `kind` makes it unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    ticket_id: str
    recipients: list[str] = Field(
        default_factory=list, description="people (emails) or roles such as 'approvers'"
    )
    user_name: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return message_id("notice", self.ticket_id, self.kind)

    def event(self) -> dict[str, Any]:
        """The CloudEvent a sink sends."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": "ramflow",
            "type": f"{NOTICE_TYPE_PREFIX}{self.kind}",
            "subject": self.ticket_id,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "datacontenttype": "application/json",
            "data": self.model_dump(mode="json"),
        }


class NoticeSink(Protocol):
    name: str

    def send(self, notice: Notice) -> None:
        """Hand the notice on; must be idempotent by `notice.id` (it may be called again after a crash)."""


class WebhookSink:
    """Queues the notice for the outbound webhook (delivered and retried by the outbox)."""

    name = "notifications/webhook"

    def __init__(self, backend: KeyValueBackend):
        self.outbox = Outbox(backend)

    def send(self, notice: Notice) -> None:
        self.outbox.add(
            DeliveryRecord(
                id=notice.id,
                destination=self.name,
                kind="notice",
                ticket_id=notice.ticket_id,
                event=notice.event(),
            )
        )


class Notifier:
    def __init__(self, backend: KeyValueBackend, sinks: Sequence[NoticeSink]):
        self.backend = backend
        self.sinks = list(sinks)

    def notify(self, notice: Notice) -> bool:
        """Send once per (ticket, kind); False when it was sent before (or there is no sink)."""
        key = f"{PREFIX}{notice.ticket_id} {notice.kind}"
        if not self.sinks or self.backend.get(key) is not None:
            return False
        for sink in self.sinks:
            sink.send(notice)
        if not self.backend.put_if_absent(
            key, {"id": notice.id, "kind": notice.kind, "ticket_id": notice.ticket_id}
        ):
            return False
        audit(
            "notice.sent",
            actor="ramflow",
            ticket_id=notice.ticket_id,
            outcome="queued",
            kind=notice.kind,
            recipients=notice.recipients,
            sinks=[s.name for s in self.sinks],
        )
        return True


def notifier_for(runtime: Runtime) -> Notifier:
    sinks: list[NoticeSink] = []
    if runtime.destinations.notifications.webhook is not None:
        sinks.append(WebhookSink(runtime.store.backend))
    return Notifier(runtime.store.backend, sinks)


def _people(ticket: TicketRecord | None, *extra: str) -> list[str]:
    found = [ticket.requester, ticket.owner] if ticket is not None else []
    return sorted({p for p in [*found, *extra] if p})


def notices_for(runtime: Runtime, event: CloudEvent, result: Result) -> list[Notice]:
    """What a lifecycle event's outcome tells people."""
    ledger = runtime.store.ledger
    ticket = ledger.get_ticket(result.ticket_id) if result.ticket_id else None
    if event.type == USER_REQUESTED and result.status == "pending_approval" and ticket is not None:
        return [
            Notice(
                kind="approval_needed",
                ticket_id=ticket.ticket_id,
                recipients=["approvers"],
                user_name=ticket.user_name,
                details={
                    "requester": ticket.requester,
                    "ticket_system": event.source,
                    "grants": [g.policy_name for g in ticket.grants],
                    "break_glass": ticket.break_glass,
                },
            )
        ]
    if result.status not in {"completed", "partial"}:
        return []
    if event.type in {USER_REQUESTED, ACCESS_APPROVED} and ticket is not None:
        return [
            Notice(
                kind="access_granted",
                ticket_id=ticket.ticket_id,
                recipients=_people(ticket),
                user_name=ticket.user_name,
                details={
                    "grants": [g.policy_name for g in ticket.grants if g.status == "active"],
                    "expires_at": ticket.expires_at.isoformat() if ticket.expires_at else None,
                },
            )
        ]
    if event.type == ACCESS_REVOKED and ticket is not None:
        return [revoked_notice(runtime, ticket.ticket_id, "revoked")]
    if event.type == USER_OFFBOARDED:
        data = event.data if isinstance(event.data, dict) else {}
        reference = str(data.get("hr_event_id") or event.id)
        whom = str(data.get("owner") or data.get("user_name") or "")
        details = {"owner": data.get("owner"), "user_name": data.get("user_name")}
        told = [Notice(kind="disabled", ticket_id=reference, recipients=_people(None, whom), details=details)]
        if str(data.get("grace") or "P0D") in {"P0D", "PT0S", "P0DT0S"}:  # deleted at once, too
            told.append(
                Notice(kind="deleted", ticket_id=reference, recipients=_people(None, whom), details=details)
            )
        return told
    return []


def revoked_notice(runtime: Runtime, ticket_id: str, reason: str) -> Notice:
    ticket = runtime.store.ledger.get_ticket(ticket_id)
    return Notice(
        kind="revoked",
        ticket_id=ticket_id,
        recipients=_people(ticket),
        user_name=ticket.user_name if ticket else None,
        details={"reason": reason},
    )


def expiry_notices(runtime: Runtime, now: datetime) -> list[Notice]:
    """Tickets whose active grants end within 7 days, and within 1 day (reconcile sends these)."""
    soonest: dict[str, datetime] = {}
    for grant in runtime.store.ledger.expired_grants(now + EXPIRY_WINDOWS[-1][1]):
        if grant.expires_at is not None and grant.expires_at > now:
            soonest[grant.ticket_id] = min(grant.expires_at, soonest.get(grant.ticket_id, grant.expires_at))
    notices = []
    for ticket_id, ends in sorted(soonest.items()):
        ticket = runtime.store.ledger.get_ticket(ticket_id)
        for kind, window in EXPIRY_WINDOWS:
            if ends - now <= window:
                notices.append(
                    Notice(
                        kind=kind,
                        ticket_id=ticket_id,
                        recipients=_people(ticket),
                        user_name=ticket.user_name if ticket else None,
                        details={"expires_at": ends.isoformat()},
                    )
                )
    return notices


def deleted_notices(runtime: Runtime, user_names: Iterable[str]) -> list[Notice]:
    """Users reconcile finished deleting (graced offboarding)."""
    notices = []
    for name in user_names:
        record = runtime.store.ledger.get_user(name)
        notices.append(
            Notice(
                kind="deleted",
                ticket_id=f"user/{name}",
                user_name=name,
                recipients=_people(None, record.owner if record else ""),
            )
        )
    return notices


def send_all(runtime: Runtime, notices: Iterable[Notice]) -> int:
    """Send each notice once; the number sent now. Never raises into the flow that asked."""
    notifier = notifier_for(runtime)
    sent = 0
    for notice in notices:
        try:
            sent += notifier.notify(notice)
        except Exception as exc:  # a notice is never worth failing the change it reports
            log.warning("notice %s/%s not sent: %s", notice.ticket_id, notice.kind, type(exc).__name__)
    return sent
