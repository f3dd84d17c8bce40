"""Fixtures for the webhook tests: senders that sign with the `standardwebhooks` library itself."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.fcruntime.credentials import StaticCredentials
from local.fcruntime.runtime import FcRuntime
from local.fcruntime.signing import EmulatorKeys
from local.invoke import invoke
from shared.cloud.clients import CloudCredentials
from shared.fc import FcContext, FcFunction

EVENTS = Path(__file__).resolve().parents[2] / "events"

# Two secrets configured at once, as during a rotation; test-only values.
OLD_SECRET = "whsec_" + base64.b64encode(b"ramflow-test-old-webhook-secret!").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"ramflow-test-new-webhook-secret!").decode()
STRANGER_SECRET = "whsec_" + base64.b64encode(b"a-secret-ramflow-never-configured").decode()


def sign(secret: str, webhook_id: str, body: bytes, at: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers, computed by the library (not by ramflow's helper)."""
    stamp = int(time.time() if at is None else at)
    signature = Webhook(secret).sign(
        webhook_id, datetime.fromtimestamp(stamp, tz=timezone.utc), body.decode()
    )
    return {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def sample(name: str, **data: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def http_event(
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    content_type: str | None = "application/cloudevents+json",
) -> bytes:
    """The FC 3.0 HTTP-trigger event for one delivery (../shared/data/fc3/http-trigger-event.json)."""
    all_headers = {"User-Agent": "ticket-system/1.0", **headers}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    event = {
        "version": "v1",
        "rawPath": "/",
        "headers": all_headers,
        "queryParameters": {},
        "body": text,
        "isBase64Encoded": is_b64,
        "requestContext": {
            "accountId": "5123456789012345",
            "requestId": str(uuid.uuid4()),
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
        },
    }
    return json.dumps(event).encode()


Deliver = Callable[..., dict[str, Any]]


@pytest.fixture
def ingress_env(emulator_server, tmp_path, monkeypatch) -> Iterator[Path]:
    """What the deployed ingress sees, pointed at the emulator, a fresh store and two secrets; the
    functions it hands events to are served by a local FC runtime (its InvokeFunction endpoint)."""
    environment = {
        "RAMFLOW_CLOUD_ENDPOINT": emulator_server.endpoint,
        "RAMFLOW_STORE": f"sqlite:///{tmp_path}/state.db",
        "RAMFLOW_AUDIT_PATH": str(tmp_path / "audit.jsonl"),
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
        "RAMFLOW_WEBHOOK_SECRET": f"{NEW_SECRET},{OLD_SECRET}",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    root = CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)
    with FcRuntime(
        keys=EmulatorKeys(emulator_server.emulator),
        credentials=StaticCredentials(root),
        environment=environment,
        account_id=emulator_server.emulator.default_account_id,
    ) as functions:
        monkeypatch.setenv("RAMFLOW_FC_ENDPOINT", functions.endpoint)
        yield tmp_path


@pytest.fixture
def deliver(ingress_env: Path) -> Deliver:
    """POST one delivery to the ingress handler; returns the reply with `body` parsed."""

    def run(body: bytes, headers: dict[str, str], **options: Any) -> dict[str, Any]:
        context = FcContext(FcFunction("webhook-ingress", timeout=120))
        reply = invoke("webhook-ingress", http_event(body, headers, **options), context)
        return {**reply, "json": json.loads(reply["body"])}

    return run
