"""Demo part: a ticket system drives provisioning through signed webhooks to `ramflow serve`.

The deliveries are signed as any Standard Webhooks sender signs them (the `standardwebhooks`
library), POSTed to the webhook-ingress HTTP trigger of the local FC runtime, and then replayed and
forged to show what the ingress refuses and what it never does twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from rich.table import Table

from local.demo import Demo
from local.fcruntime.stack import LocalStack
from local.seed import DEV_CONFIG
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.sealing import generate_keypair, open_sealed
from shared.webhooks import DEV_SECRET, new_secret, signed_headers

EVENTS = Path(__file__).resolve().parents[2] / "events"
TICKET = "ITSM-1077"
USER = "payments-reporter"


def _event(name: str, **data: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return event


def _post(
    url: str, event: dict[str, Any], webhook_id: str, *, secret: str = DEV_SECRET, at: float | None = None
) -> requests.Response:
    body = json.dumps(event).encode()
    headers = {**signed_headers(secret, webhook_id, body, at), "Content-Type": "application/cloudevents+json"}
    return requests.post(url, data=body, headers=headers, timeout=60)


def run(demo: Demo) -> None:
    audit_log = logging.getLogger("ramflow.audit")
    propagate, audit_log.propagate = audit_log.propagate, False  # the audit file holds them, not the screen
    try:
        _run(demo)
    finally:
        audit_log.propagate = propagate


def _run(demo: Demo) -> None:
    demo.section("Webhooks: the ticket system signs, ramflow verifies, a retry never acts twice")
    private, public = demo.facts.get("delivery_keys") or generate_keypair()
    workdir = demo.workdir / "webhooks"
    workdir.mkdir(exist_ok=True)
    # The demo's one state store and audit trail, so the later parts (offboarding, reconcile) see this ticket.
    environment = {
        "RAMFLOW_WEBHOOK_SECRET": DEV_SECRET,
        "RAMFLOW_STORE": demo.settings.store,
        "RAMFLOW_AUDIT_PATH": str(demo.settings.audit_path or workdir / "audit.jsonl"),
    }
    with LocalStack(
        DEV_CONFIG, emulator_server=demo.server, workdir=workdir, environment=environment
    ) as stack:
        assert stack.runtime is not None
        url = stack.runtime.url("webhook-ingress")
        demo.say(
            f"`ramflow serve` hosts webhook-ingress at {url}; its secret is the documented development "
            "secret (`--webhook-secret` or RAMFLOW_WEBHOOK_SECRET set another). Every delivery carries "
            "webhook-id, webhook-timestamp and webhook-signature (HMAC-SHA256 over id.timestamp.body)."
        )

        request = _event(
            "user-requested-programmatic.json",
            ticket_id=TICKET,
            requester="carol@example.com",
            user={
                "logon_name": USER,
                "owner": "grace@example.com",
                "email": "grace@example.com",
                "tags": {"team": "payments"},
            },
            grants=[{"policy": "AliyunKafkaFullAccess", "type": "System"}],
            duration="P14D",
            justification="monthly payments reports",
            delivery_public_key=public,
        )
        reply = _post(url, request, "msg_itsm_1077_requested")
        demo.show(
            f"POST user.requested {TICKET} → HTTP {reply.status_code}",
            json.dumps({k: reply.json().get(k) for k in ("status", "ticket_id", "user_name")}, indent=2),
        )

        approval = _event("access-approved.json", ticket_id=TICKET, approvers=["dave@example.com"])
        reply = _post(url, approval, "msg_itsm_1077_approved")
        body = reply.json()
        key_id = body["credential"]["access_key_id"]
        secret = open_sealed(private, body["credential"]["sealed_secret"])
        identity = (
            CloudClients(demo.settings, CloudCredentials(key_id, secret)).sts.get_caller_identity().body
        )
        demo.show(
            f"POST access.approved {TICKET} → HTTP {reply.status_code}",
            f"status {body['status']}, AccessKey {key_id}, secret sealed to the requester "
            f"({body['credential']['sealed_secret'][:20]}…)\nopened and used: GetCallerIdentity → {identity.arn}",
        )

        table = Table("delivery", "HTTP", "reply", "cloud calls", title="What the ingress does with the rest")
        cases: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
            ("the sender retries the approval (same webhook-id)", approval, "msg_itsm_1077_approved", {}),
            ("signed with a secret ramflow does not hold", approval, "msg_forged", {"secret": new_secret()}),
            (
                "a recorded delivery replayed 10 minutes later",
                approval,
                "msg_stale",
                {"at": time.time() - 600},
            ),
            (
                "a valid signature on an unknown event type",
                {**approval, "type": "com.example.ping"},
                "msg_ping",
                {},
            ),
        ]
        for label, event, webhook_id, options in cases:
            mark = demo.emulator.recorder.last_seq
            reply = _post(url, event, webhook_id, **options)
            answer = reply.json()
            shown = answer["status"] if reply.ok else f"{answer['status']}: {answer['errors'][0]['reason']}"
            if reply.ok and answer.get("credential", {}).get("access_key_id") == key_id:
                shown += " (the first reply, same key)"
            table.add_row(label, str(reply.status_code), shown, str(len(demo.emulator.recorder.since(mark))))
        demo.console.print(table)
        keys = demo.emulator.account.ram.users[USER].access_keys
        demo.say(
            f"{USER} still has exactly {len(keys)} AccessKey: a retried delivery returns the first reply; "
            "a bad signature is refused before anything is read or stored."
        )
        refused = [
            json.loads(line)["details"]
            for line in Path(environment["RAMFLOW_AUDIT_PATH"]).read_text().splitlines()
            if '"webhook.refused"' in line
        ]
        demo.say(f"Audit trail: {len(refused)} refused deliveries, e.g. {json.dumps(refused[-1])}")
