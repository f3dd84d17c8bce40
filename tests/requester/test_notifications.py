"""Notifications: approval needed, granted, expiring in 7 days and 1 day, revoked, disabled — once each."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

from alibabacloud_resourcemanager20200331 import models as rm_models

from local.fcruntime.stack import LocalStack
from local.receiver import WebhookReceiver
from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.flows.reconcile import reconcile
from shared.notify import Notice, Notifier
from shared.runtime import runtime_for
from shared.sealing import generate_keypair
from shared.store import MemoryBackend
from shared.webhooks import new_secret
from tests.flows.conftest import sample

SECRET_ENV = "RAMFLOW_NOTIFY_TEST_SECRET"


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.sent.append(notice)


def test_a_notice_is_sent_once_per_ticket_and_kind() -> None:
    sink = ListSink()
    notifier = Notifier(MemoryBackend(), [sink])
    granted = Notice(kind="access_granted", ticket_id="T-1", recipients=["a@example.com"])
    assert notifier.notify(granted) is True
    assert notifier.notify(granted.model_copy(update={"recipients": ["b@example.com"]})) is False
    assert notifier.notify(Notice(kind="revoked", ticket_id="T-1")) is True
    assert [(n.ticket_id, n.kind) for n in sink.sent] == [("T-1", "access_granted"), ("T-1", "revoked")]


def test_the_lifecycle_tells_each_thing_once_including_expiry_from_reconcile(tmp_path, monkeypatch) -> None:
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    with WebhookReceiver(secret) as receiver:
        destinations = tmp_path / "destinations.yaml"
        destinations.write_text(
            json.dumps(
                {
                    "notifications": {"webhook": {"url": receiver.url, "secret_env": SECRET_ENV}},
                    "retry_schedule": [0.1, 0.2],
                }
            )
        )
        with LocalStack(environment={"RAMFLOW_DESTINATIONS": str(destinations)}) as stack:
            clients = stack.root_clients()
            rg = clients.resource_manager.create_resource_group(
                rm_models.CreateResourceGroupRequest(name="notify-orders", display_name="Orders")
            ).body.resource_group.id
            _, public = generate_keypair()
            requested = sample("user-requested-programmatic.json", delivery_public_key=public)
            requested["data"]["grants"][1]["resource_group"] = rg
            approved = sample(
                "access-approved-programmatic.json", ticket_id="ITSM-1043", approvers=["dave@example.com"]
            )

            def invoke(function: str, event: dict) -> dict:
                value = stack.runtime.invoke(function, event).value
                return value if isinstance(value, dict) else json.loads(value)

            assert invoke("user-requested", requested)["status"] == "pending_approval"
            assert (
                invoke("user-requested", {**requested, "id": requested["id"]})["status"] == "pending_approval"
            )
            assert invoke("access-approved", approved)["status"] == "completed"

            assert stack.runtime is not None and stack.runtime.functions is not None
            # reconcile runs here as its FC function would: with its own role's session
            reconcile_session = stack.runtime.credentials_for(stack.runtime.functions["reconcile"])
            rt = runtime_for(
                Settings.from_env(), CloudCredentials.resolve(SimpleNamespace(credentials=reconcile_session))
            )
            now = rt.clock()
            for days in (6.5, 6.6, 13.5, 13.6):  # P14D: 7-day notice, then 1-day notice, each once
                reconcile(dataclasses.replace(rt, clock=lambda d=days: now + timedelta(days=d)))
            reconcile(dataclasses.replace(rt, clock=lambda: now + timedelta(days=15)))  # expired: revoked
            offboarded = sample("user-offboarded.json", owner="frank@example.com", hr_event_id="WD-9")
            assert invoke("user-offboarded", offboarded)["status"] == "completed"

            expected = {
                ("ITSM-1043", k)
                for k in ("approval_needed", "access_granted", "expiring_7d", "expiring_1d", "revoked")
            } | {("WD-9", "disabled"), ("WD-9", "deleted")}
            deadline = time.time() + 30
            while time.time() < deadline and len(receiver.arrivals) < len(expected):
                time.sleep(0.1)
            time.sleep(0.6)  # a duplicate would arrive within the dispatcher's next passes
    seen = Counter((a.event["subject"], a.event["data"]["kind"]) for a in receiver.arrivals)
    assert set(seen) == expected, seen
    assert all(count == 1 for count in seen.values()), seen
    assert receiver.refused == 0
    granted = next(a.event for a in receiver.arrivals if a.event["data"]["kind"] == "access_granted")
    assert granted["data"]["recipients"] == ["frank@example.com"]
    assert "credential" not in json.dumps(granted), "a notice never carries the secret"
    needed = next(a.event for a in receiver.arrivals if a.event["data"]["kind"] == "approval_needed")
    assert (
        needed["data"]["recipients"] == ["approvers"]
        and needed["data"]["details"]["ticket_system"] == "itsm.example.com"
    )
