"""Demo part: the three Cloud Config AccessKey rules as reconcile findings, and a rotation with an
overlap — time moved on through the emulator's control surface, so key ages, last use and ramflow's
own clock advance together. The rotated key's secret reaches the owner as a provisioned one does:
through the result delivery, to a webhook receiver standing for the owners' ticket system."""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from alibabacloud_ram20150501 import models as ram_models
from rich.table import Table

from local.demo import Demo
from local.invoke import invoke
from local.receiver import WebhookReceiver
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.flows.reconcile import ReconcileReport, reconcile
from shared.runtime import Runtime
from shared.sealing import generate_keypair, open_sealed
from shared.store import StateStore
from shared.webhooks import new_secret

EVENTS = Path(__file__).resolve().parents[2] / "events"
APP, LEGACY = "billing-etl", "legacy-batch"
SECRET_ENV = "RAMFLOW_DEMO_OWNERS_SECRET"


def _request(name: str, public: str) -> bytes:
    event = json.loads((EVENTS / "user-requested-programmatic.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(
        ticket_id=f"ITSM-{name}",
        user={"logon_name": name, "owner": "billing@example.com", "email": "billing@example.com"},
        grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
        delivery_public_key=public,
    )
    event["data"].pop("duration", None)
    return json.dumps(event).encode()


def run(demo: Demo) -> None:
    audit_log = logging.getLogger("ramflow.audit")  # the audit trail goes to its file, not the screen
    propagate, audit_log.propagate = audit_log.propagate, False
    secret = new_secret()
    os.environ[SECRET_ENV] = secret
    try:
        with WebhookReceiver(secret) as receiver:
            _run(demo, receiver)
    finally:
        audit_log.propagate = propagate
        os.environ.pop(SECRET_ENV, None)


def _run(demo: Demo, receiver: WebhookReceiver) -> None:
    demo.section("AccessKey hygiene: Cloud Config's three rules, and a rotation with an overlap")
    private, public = generate_keypair()
    reply = invoke("user-requested", _request(APP, public))
    app_key = reply["credential"]["access_key_id"]
    app = CloudClients(
        demo.settings, CloudCredentials(app_key, open_sealed(private, reply["credential"]["sealed_secret"]))
    )
    invoke("user-requested", _request(LEGACY, public))
    demo.root_clients.ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name=LEGACY))
    demo.say(
        f"{APP} got AccessKey {app_key} (its application signs calls with it); {LEGACY} got one that is "
        "never used, and someone added a second key to it by hand."
    )
    settings: dict[str, Any] = {
        "key_max_age_days": 60,  # shorter than the default 90 so that the catalog's 90-day grants last
        "key_unused_days": 60,
        "key_rotation": True,
        "key_rotation_overlap": "P7D",
        "key_rotation_delete_after": "P7D",
    }
    demo.say(f"Settings for this part: {json.dumps(settings)} (RAMFLOW_KEY_* in the README).")
    destinations = demo.workdir / "owners-destinations.yaml"
    destinations.write_text(
        f"routes:\n  - name: owners\n    source: ramflow.reconcile\n    webhook:\n"
        f"      url: {receiver.url}\n      secret_env: {SECRET_ENV}\n"
    )
    demo.show(
        "RAMFLOW_DESTINATIONS (age rotations are requested by ramflow.reconcile)",
        destinations.read_text().strip(),
    )
    settings["destinations_path"] = destinations

    _advance(demo, "P55D")
    app.sts.get_caller_identity()  # the application keeps working with its key
    _advance(demo, "P6D")
    report = _reconcile(demo, settings)
    table = Table(title="Findings (reconcile, day 61)")
    table.add_column("Cloud Config rule", no_wrap=True)
    for column in ("user", "AccessKey", "finding"):
        table.add_column(column)
    for finding in report.findings:
        table.add_row(finding.rule, finding.user_name, finding.access_key_id, finding.detail)
    demo.console.print(table)
    rotation = report.keys[APP].rotation
    assert rotation is not None and rotation.sealed_secret and rotation.new_key_id
    held = report.keys[LEGACY].rotation
    demo.say(
        f"{APP}: a second key {rotation.new_key_id} was created (intent recorded first), its secret sealed "
        f"to the owner; both keys work until {rotation.deactivate_after:%Y-%m-%d}. "
        f"{LEGACY}: rotation {held.state if held else 'not started'}"
        + (f" — {held.hold_reason}" if held and held.hold_reason else "")
    )
    _keys(demo, "during the overlap")

    # one result per rotation request: billing-etl's carries its new key, legacy-batch's says it is held
    (arrival,) = [a for a in receiver.wait_for(2, timeout=30) if _credential_of(a)]
    credential = _credential_of(arrival)
    assert credential is not None
    demo.show(
        f"the new secret arrives by callback, verified with standardwebhooks (webhook-id {arrival.webhook_id})",
        json.dumps(
            {
                "type": arrival.event["type"],
                "requestsource": arrival.event["requestsource"],
                "credential": {
                    "access_key_id": credential["access_key_id"],
                    "sealed_secret": credential["sealed_secret"][:24] + "…",
                },
            },
            indent=2,
            ensure_ascii=False,
        ),
    )
    new = CloudClients(
        demo.settings,
        CloudCredentials(credential["access_key_id"], open_sealed(private, credential["sealed_secret"])),
    )
    new.sts.get_caller_identity()
    demo.say(
        "The owner opens it with the private key of the ticket's delivery key pair and switches the "
        "application to the new key. reconcile's role cannot create keys: it handed the rotation to "
        "key-rotation (in FC an async InvokeFunction; here in-process), whose result went out once."
    )
    _advance(demo, "P7DT1H")
    _reconcile(demo, settings)
    _keys(demo, "after the overlap: the old key is Inactive")
    _advance(demo, "P7DT1H")
    report = _reconcile(demo, settings)
    _keys(demo, "a week later: the old key is deleted, one Active key remains")
    done = report.keys[APP].rotation
    demo.say(
        f"Rotation of {APP}: {done.state if done else '?'}; its AccessKey findings now: "
        f"{[f.rule for f in report.keys[APP].findings] or 'none'}. Callbacks carrying a secret: "
        f"{sum(1 for a in receiver.arrivals if _credential_of(a))}."
    )


def _credential_of(arrival: Any) -> dict[str, Any] | None:
    credential = (arrival.event.get("data") or {}).get("credential")
    return credential if isinstance(credential, dict) else None


def _advance(demo: Demo, duration: str) -> None:
    """Through the control surface, as any client could (`curl -XPOST …/emulator-api/clock/advance`)."""
    url = f"{demo.server.endpoint}/emulator-api/clock/advance"
    now = requests.post(url, json={"duration": duration}, timeout=10).json()["now"]
    demo.say(f'POST /emulator-api/clock/advance {{"duration": "{duration}"}} → emulator time {now}')


def _reconcile(demo: Demo, settings: dict[str, Any]) -> ReconcileReport:
    emulator = demo.emulator
    rt = Runtime(
        demo.settings.model_validate({**demo.settings.model_dump(), **settings}),
        demo.root_credentials,
        StateStore.from_url(demo.settings.store),
    )
    rt = replace(rt, clock=lambda: datetime.fromtimestamp(emulator.clock(), timezone.utc))
    return reconcile(rt, actor="demo")


def _keys(demo: Demo, when: str) -> None:
    ram = demo.emulator.account.ram
    table = Table("user", "AccessKey", "status", "created", "last used", title=f"AccessKeys {when}")
    for name in (APP, LEGACY):
        for key in ram.users[name].access_keys.values():
            table.add_row(name, key.access_key_id, key.status, key.create_date, key.last_used_date or "never")
    demo.console.print(table)
