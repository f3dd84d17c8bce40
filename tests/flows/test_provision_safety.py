"""Provisioning under crashes, bad input and secret-hunting."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.errors import FlowFailed
from shared.sealing import open_sealed
from tests.flows.conftest import sample
from tests.flows.test_provision import approval, keys_of, policies_of, programmatic_request, rg_attachments


def final_state(clients: CloudClients, emulator: Emulator, user: str) -> dict:
    ram_user = emulator.account.ram.users[user]
    return {
        "policies": policies_of(clients, user),
        "rg": {(n, t) for n, t, _ in rg_attachments(clients, f"{user}@ramflow-demo.onaliyun.com")},
        "tags": dict(ram_user.tags),
        "keys": len(keys_of(clients, user)),
        "login_profile": ram_user.login_profile is not None,
    }


@dataclass(frozen=True)
class Mode:
    """One access mode's ticket: how to request and approve it, and how its delivered secret is proved."""

    name: str
    user: str
    ticket: str
    request: Callable[[str, str], dict]
    approval: Callable[[], dict]
    stopping_calls: int  # calls never retried after an ambiguous failure

    def prove_secret(self, private: str, reply: dict, clients: CloudClients, emulator: Emulator) -> None:
        credential = reply["credential"]
        if self.name == "programmatic":
            key_id = credential["access_key_id"]
            assert keys_of(clients, self.user) == [key_id], "an orphan AccessKey was left behind"
            secret = open_sealed(private, credential["sealed_secret"])
            own = CloudClients(clients.settings, CloudCredentials(key_id, secret))
            assert own.sts.get_caller_identity().body.arn.endswith(f":user/{self.user}")
        else:
            assert keys_of(clients, self.user) == []
            password = open_sealed(private, credential["sealed_password"])
            assert emulator.account.ram.users[self.user].login_profile.password == password


def console_request(public: str, rg: str) -> dict:
    event = sample("user-requested-console.json", delivery_public_key=public)
    event["data"]["grants"][0]["resource_group"] = rg
    return event


MODES = [
    Mode("programmatic", "orders-etl", "ITSM-1043", programmatic_request, lambda: approval("ITSM-1043"), 1),
    Mode(
        "console",
        "alice.kafka",
        "ITSM-1042",
        console_request,
        lambda: sample("access-approved.json", approvers=["dave@example.com"]),
        1,
    ),
]


def approve_with_crash(call, emulator: Emulator, nth: int, mode: Mode) -> tuple[bool, bool]:
    """Approve with the nth cloud call failing after it took effect: (the fault fired, the flow stopped).

    Reads and other idempotent calls are retried by the runner, so the flow may still complete."""
    emulator.faults.fail_nth_call(nth, when="after")
    try:
        reply = call("access-approved", mode.approval())
        assert reply["status"] == "completed"
        stopped = False
    except FlowFailed as exc:
        assert exc.result.status == "failed"
        stopped = True
    emulator.faults.clear()  # disarm a plan that outlived the flow: the replay and checks run clean
    return any(c.outcome == "InternalError" for c in emulator.recorder.calls), stopped


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
@pytest.mark.parametrize("attempts", [1, 6], ids=["no-retries", "with-retries"])
@pytest.mark.slow
def test_a_failure_after_each_cloud_call_then_a_replay_converges(
    tmp_path, monkeypatch, call, delivery_keys, attempts, mode
) -> None:
    """With retries off every fault stops the saga; with them on, only the calls that mint secrets do."""
    private, public = delivery_keys
    monkeypatch.setenv("RAMFLOW_MAX_ATTEMPTS", str(attempts))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ROOT_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ROOT_KEY_SECRET)
    monkeypatch.setenv("RAMFLOW_RATE_LIMIT_QPS", "1000")
    baseline, nth, stops = None, 0, 0
    while True:
        nth += 1
        with EmulatorServer(Emulator(resource_group_ready_seconds=0)) as server:
            emulator = server.emulator
            monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", server.endpoint)
            monkeypatch.setenv("RAMFLOW_STORE", f"sqlite:///{tmp_path}/state-{nth}.db")
            clients = CloudClients(Settings(cloud_endpoint=server.endpoint), ROOT_CREDENTIALS)
            rg = clients.resource_manager.create_resource_group(
                rm_models.CreateResourceGroupRequest(name="orders", display_name="Orders")
            ).body.resource_group.id
            assert call("user-requested", mode.request(public, rg))["status"] == "pending_approval"
            fired, stopped = approve_with_crash(call, emulator, nth, mode)
            stops += stopped
            reply = call("access-approved", mode.approval())  # the replay: a new delivery
            assert reply["status"] == "completed", (nth, reply)
            state = final_state(clients, emulator, mode.user)
            baseline = baseline or state
            assert state == baseline, f"after a failure at call {nth}"
            mode.prove_secret(private, reply, clients, emulator)
            if not fired:
                break
    assert nth > 8  # every call of approve failed once; the last round ran clean
    if attempts == 1:
        assert stops == nth - 1  # every injected failure stopped the flow before the replay
    else:
        assert stops >= mode.stopping_calls  # CreateAccessKey / CreateLoginProfile are never retried


BAD_REQUESTS = [
    (
        "bad logon name",
        {"user": {"logon_name": "alice kafka!", "owner": "alice@example.com"}},
        "data.user.logon_name",
    ),
    ("both access modes", {"access_mode": ["console", "programmatic"]}, "data.access_mode"),
    ("unknown policy", {"grants": [{"policy": "AliyunECSFullAccess", "type": "System"}]}, "data.grants[0]"),
    (
        "high risk without a duration",
        {"grants": [{"policy": "AdministratorAccess", "type": "System"}], "duration": None},
        "data.duration",
    ),
    (
        "scope the catalog refuses",
        {"grants": [{"policy": "AliyunRAMFullAccess", "type": "System", "resource_group": "rg-aek2xl5qw"}]},
        "data.grants[0]",
    ),
    (
        "oversize template parameter",
        {
            "grants": [
                {
                    "template": "kafka-instance-readonly",
                    "params": {"instance_id": "alikafka_post-" + "a" * 7000},
                }
            ]
        },
        "data.grants[0]",
    ),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_invalid_requests_are_rejected_with_zero_cloud_calls(
    function_env, call, emulator, delivery_keys, case, change, field
) -> None:
    _, public = delivery_keys
    event = sample("user-requested-console.json", delivery_public_key=public)
    event["data"].update(change)
    before = emulator.recorder.last_seq
    reply = call("user-requested", event)
    assert reply["status"] == "rejected", reply
    assert any(e["field"].startswith(field) for e in reply["errors"]), reply["errors"]
    assert emulator.recorder.since(before) == []


def test_high_risk_grant_needs_break_glass_and_two_other_approvers(
    function_env, call, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    event = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        duration="PT4H",
        grants=[{"policy": "AdministratorAccess", "type": "System"}],
    )
    assert call("user-requested", event)["status"] == "pending_approval"
    ticket = event["data"]["ticket_id"]
    requester = event["data"]["requester"]
    before = emulator.recorder.last_seq
    self_approved = call(
        "access-approved",
        sample(
            "access-approved.json", ticket_id=ticket, approvers=[requester, "x@example.com"], break_glass=True
        ),
    )
    assert self_approved["status"] == "rejected"
    one = call(
        "access-approved",
        sample("access-approved.json", ticket_id=ticket, approvers=["x@example.com"], break_glass=True),
    )
    assert one["status"] == "rejected"
    no_glass = call(
        "access-approved",
        sample("access-approved.json", ticket_id=ticket, approvers=["x@example.com", "y@example.com"]),
    )
    assert {e["field"] for e in no_glass["errors"]} >= {"data.break_glass"}
    assert emulator.recorder.since(before) == []
    ok = call(
        "access-approved",
        sample(
            "access-approved.json",
            ticket_id=ticket,
            approvers=["x@example.com", "y@example.com"],
            break_glass=True,
        ),
    )
    assert ok["status"] == "completed"


def test_existing_unmanaged_user_is_left_alone(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    event = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        grants=[{"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-1"}}],
    )
    name = event["data"]["user"]["logon_name"]
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name=name))
    reply = call("user-requested", event)
    assert reply["status"] == "rejected" and reply["needs_human"] == [name]
    assert emulator.account.ram.users[name].tags == {}
    assert policies_of(root_clients, name) == set()


def test_no_secret_in_logs_audit_store_or_replies(
    function_env, call, root_clients, emulator, delivery_keys, caplog, capfd, resource_group
) -> None:
    caplog.set_level(logging.DEBUG)
    private, public = delivery_keys
    call("user-requested", programmatic_request(public, resource_group))
    reply = call("access-approved", approval("ITSM-1043"))
    console = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        grants=[{"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-1"}}],
    )
    console_reply = call("user-requested", console)
    secret = open_sealed(private, reply["credential"]["sealed_secret"])
    password = open_sealed(private, console_reply["credential"]["sealed_password"])
    out, err = capfd.readouterr()
    db = sqlite3.connect(function_env / "state.db")
    stored = "\n".join(str(row) for row in db.execute("select * from documents"))
    places = {
        "logs": caplog.text,
        "stdout/stderr": out + err,
        "audit": (function_env / "audit.jsonl").read_text(),
        "store": stored,
        "replies": json.dumps([reply, console_reply]),
        "recorder": repr(emulator.recorder.calls),
    }
    assert stored and places["audit"]
    for place, text in places.items():
        assert secret not in text, f"AccessKey secret in {place}"
        assert password not in text, f"password in {place}"


def test_a_rendered_policy_over_6144_characters_is_rejected_before_any_call(
    function_env, call, emulator, delivery_keys, monkeypatch
) -> None:
    """A reviewed template can still render too large for RAM with a long (valid) parameter."""
    import yaml

    from shared.config import DEFAULT_CATALOG

    catalog = yaml.safe_load(DEFAULT_CATALOG.read_text())
    catalog["templates"]["kafka-topics"] = {
        "description": "Many topics of one instance.",
        "approvers": 1,
        "auto_approve": False,
        "max_duration": "P30D",
        "scopes": ["account"],
        "params_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["instance_id"],
            "properties": {
                "instance_id": {"type": "string", "pattern": "^alikafka_[a-z0-9-]+$", "maxLength": 128}
            },
        },
        "example": {"instance_id": "alikafka_post-cn-7mz2"},
        "document": {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["alikafka:ListTopic"],
                    "Resource": [f"acs:alikafka:*:*:${{instance_id}}/topic-{n:03d}" for n in range(45)],
                }
            ],
        },
    }
    path = function_env / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    monkeypatch.setenv("RAMFLOW_CATALOG", str(path))
    _, public = delivery_keys
    long_id = "alikafka_post-" + "a" * 110
    event = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        grants=[{"template": "kafka-topics", "params": {"instance_id": long_id}}],
    )
    before = emulator.recorder.last_seq
    reply = call("user-requested", event)
    assert reply["status"] == "rejected", reply
    assert any("6144" in e["reason"] or "6,144" in e["reason"] for e in reply["errors"]), reply["errors"]
    assert emulator.recorder.since(before) == []
    short = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        ticket_id="ITSM-5000",
        grants=[{"template": "kafka-topics", "params": {"instance_id": "alikafka_post-cn-1"}}],
    )
    assert call("user-requested", short)["status"] == "pending_approval"  # the same template fits when short
