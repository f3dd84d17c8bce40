"""Demo part: the requester's side — a key pair, the secret arriving by callback, opened and used.

The requester makes a key with `ramflow keygen`, the ticket system publishes the request (EventBridge
invokes `user-requested` asynchronously, so nobody waits for a reply), the result comes back as a
signed Standard Webhooks callback to the ticket system's receiver, and `ramflow unseal` writes the
key into a profile an unmodified `alibabacloud-credentials` client uses. The same sealed secret is
also waiting at `credential-pickup` for the requester alone.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import fc2
import requests

from local.demo import Demo
from local.dev import DEV_PICKUP_AUTH, mint_dev_token
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.fcruntime.stack import LocalStack
from local.receiver import WebhookReceiver
from local.seed import DEV_CONFIG
from local.shell import caller_identity_with_profile, ramflow
from shared.webhooks import new_secret

EVENTS = Path(__file__).resolve().parents[2] / "events"
REPO = Path(__file__).resolve().parents[2]
TICKET = "ITSM-1099"
REQUESTER = "henry@example.com"
SECRET_ENV = "RAMFLOW_DEMO_RESULT_SECRET"


def _request(public: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "user-requested-programmatic.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(
        ticket_id=TICKET,
        requester=REQUESTER,
        user={"logon_name": "fraud-scorer", "owner": REQUESTER, "email": REQUESTER, "tags": {"team": "risk"}},
        grants=event["data"]["grants"][:1],  # the auto-approved read-only template: no human needed
        duration="P7D",
        justification="fraud model reads the orders topics",
        delivery_public_key=public,
    )
    return event


def run(demo: Demo) -> None:
    audit_log = logging.getLogger("ramflow.audit")
    propagate, audit_log.propagate = audit_log.propagate, False
    try:
        _run(demo)
    finally:
        audit_log.propagate = propagate


def _run(demo: Demo) -> None:
    demo.section("The requester: the sealed secret arrives by callback, ramflow unseal opens it")
    workdir = demo.workdir / "requester"
    workdir.mkdir(exist_ok=True)
    key = workdir / "henry.key"
    made = ramflow("keygen", "--out", str(key))
    public = made.stdout.strip()
    demo.show("$ ramflow keygen --out henry.key", f"{made.stderr.strip()}\n{public}")

    secret = new_secret()
    os.environ[SECRET_ENV] = secret
    with WebhookReceiver(secret) as receiver:
        destinations = workdir / "destinations.yaml"
        destinations.write_text(
            f"routes:\n  - name: itsm\n    source: itsm.example.com\n    webhook:\n"
            f"      url: {receiver.url}\n      secret_env: {SECRET_ENV}\n"
        )
        demo.show(
            "RAMFLOW_DESTINATIONS (results go back to the ticket system)", destinations.read_text().strip()
        )
        environment = {
            "RAMFLOW_STORE": demo.settings.store,
            "RAMFLOW_AUDIT_PATH": str(demo.settings.audit_path or workdir / "audit.jsonl"),
            "RAMFLOW_DESTINATIONS": str(destinations),
        }
        with LocalStack(
            DEV_CONFIG, emulator_server=demo.server, workdir=workdir, environment=environment
        ) as stack:
            assert stack.runtime is not None
            client = fc2.Client(
                endpoint=stack.runtime.endpoint,
                accessKeyID=DEFAULT_ROOT_KEY_ID,
                accessKeySecret=DEFAULT_ROOT_KEY_SECRET,
            )
            request = _request(public)
            accepted = client.invoke_function(
                "ramflow",
                "user-requested",
                payload=json.dumps(request).encode(),
                headers={"x-fc-invocation-type": "Async"},
            )
            demo.say(
                f"EventBridge-style async InvokeFunction user-requested {TICKET} → accepted "
                f"(request {accepted.headers['X-Fc-Request-Id']}); the reply goes nowhere, the result comes back:"
            )
            (arrival,) = receiver.wait_for(1, timeout=60)
            data = arrival.event["data"]
            demo.show(
                f"callback verified with standardwebhooks (webhook-id {arrival.webhook_id})",
                json.dumps(
                    {
                        "type": arrival.event["type"],
                        "subject": arrival.event["subject"],
                        "status": data["status"],
                        "user_name": data["user_name"],
                        "credential": {
                            **data["credential"],
                            "sealed_secret": data["credential"]["sealed_secret"][:24] + "…",
                        },
                    },
                    indent=2,
                    ensure_ascii=False,
                ),
            )
            home = workdir / "home"
            home.mkdir(exist_ok=True)
            opened = ramflow(
                "unseal",
                "--key",
                str(key),
                "--profile",
                "fraud-scorer",
                stdin=arrival.body.decode(),
                env={"HOME": str(home)},
            )
            demo.show(
                "$ ramflow unseal --key henry.key --profile fraud-scorer < callback.json",
                opened.stderr.strip(),
            )
            identity = caller_identity_with_profile(home, "fraud-scorer", demo.server.endpoint)
            demo.show(
                "an unmodified alibabacloud-credentials client (ALIBABA_CLOUD_PROFILE=fraud-scorer)",
                f"GetCallerIdentity → {identity.stdout.strip() or identity.stderr.strip()[-300:]}",
            )

            url = stack.runtime.url("credential-pickup")
            mine = requests.get(
                url,
                params={"ticket": TICKET},
                timeout=30,
                headers={
                    "Authorization": f"Bearer {mint_dev_token(REQUESTER, entitlements=DEV_PICKUP_AUTH)}"
                },
            )
            other = requests.get(
                url,
                params={"ticket": TICKET},
                timeout=30,
                headers={
                    "Authorization": f"Bearer {mint_dev_token('mallory@example.com', entitlements=DEV_PICKUP_AUTH)}"
                },
            )
            anonymous = requests.get(url, params={"ticket": TICKET}, timeout=30)
            demo.say(
                f"credential-pickup {TICKET}: the requester → {mine.status_code} (the same ciphertext: "
                f"{mine.json().get('credential') == data['credential']}); mallory → {other.status_code}; "
                f"no token → {anonymous.status_code}. Only ciphertext ever leaves ramflow."
            )
