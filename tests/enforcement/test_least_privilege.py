"""Each function under its own role, with enforcement on: deploy/ramflow-fn-<function>-policy.json is
exactly enough.

This runs a representative lifecycle under enforcement, not the whole end-to-end suite. It goes
through the local FC runtime (`ramflow serve`'s stack), where every function runs with STS
credentials of its own role `ramflow-fn-<function>` — as in Function Compute — holding only the
repository's document for it, rendered with the managed-user prefix `rf-`. The webhook ingress holds
only fc:InvokeFunction and hands each verified event to its function. The lifecycle covers:

- a console user requested with a template grant and a resource-group grant, then approved; the
  approval crashes after CreateLoginProfile and its replay resets the password;
- a programmatic user requested and approved through signed webhooks; the approval crashes after
  CreateAccessKey and the sender's retry replaces the key whose secret was lost;
- a second ticket (an operator template) approved, then revoked;
- offboarding at once a user who also has a hand-made AccessKey, an MFA device and a group;
- a graced offboarding (of a user with a hand-attached policy) finished by a reconcile pass;
- the token vendor, for a role with a session policy and a role with an ExternalId;
- every final result delivered to an EventBridge bus (RAMFLOW_DESTINATIONS) by the function that
  answered it, once, also for the events that came through the webhook ingress.

The emulator's enforcement mode refuses anything a document does not allow, and its decisions name
the statements that allowed each call. Then: nothing the functions did was refused, each role did
only what its document grants, and every action granted to the lifecycle's roles was used by them.
tests/enforcement/test_escalations.py tries what a compromised function would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models

from local import roles
from local.dev import mint_dev_token
from local.emulator.enforcement import RAM_CODE, PolicyEnforcer, enforce
from local.emulator.server import EmulatorServer
from local.fcruntime.stack import LocalStack
from shared.cloud.clients import CloudClients
from shared.sealing import generate_keypair
from tests.webhooks.conftest import NEW_SECRET, sign

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
PREFIX = "rf-"
CONSOLE_USER, PROGRAMMATIC_USER = f"{PREFIX}alice.kafka", f"{PREFIX}orders-etl"
RESULT_BUS = roles.DEFAULT_RESULT_BUSES[0]  # the bus the repository's documents allow


def deployed(function: str) -> dict[str, Any]:
    return json.loads((REPO / "deploy" / f"{roles.ROLES[function].role}-policy.json").read_text())


def sample(name: str, user: str | None = None, **data: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    if user is not None:
        event["data"]["user"]["logon_name"] = user
    return event


class Lifecycle:
    """The stack with enforcement on and each function's role holding only its repository document."""

    def __init__(self, stack: LocalStack, enforcer: PolicyEnforcer, root: CloudClients):
        self.stack = stack
        self.enforcer = enforcer
        self.root = root
        assert stack.runtime is not None
        self.runtime = stack.runtime
        self.caller = f"acs:ram::{stack.config.account.id}:assumed-role/{roles.ROLE_PREFIX}"

    def invoke(self, function: str, event: dict[str, Any] | bytes) -> Any:
        result = self.runtime.invoke(function, event)
        assert not result.failed, f"{function}: {result.error_type}: {result.error_message}"
        value = result.value
        return json.loads(value) if isinstance(value, bytes | str) else value

    def webhook(self, event: dict[str, Any], webhook_id: str) -> requests.Response:
        body = json.dumps(event).encode()
        headers = {**sign(NEW_SECRET, webhook_id, body), "Content-Type": "application/cloudevents+json"}
        return requests.post(self.runtime.url("webhook-ingress"), data=body, headers=headers, timeout=60)

    def denied(self) -> list[Any]:
        return self.enforcer.denied(self.caller)

    def used_actions(self, function: str | None = None) -> set[str]:
        caller = self.caller if function is None else self.role_caller(function)
        return {d.action for d in self.enforcer.allowed(caller)}

    def role_caller(self, function: str) -> str:
        return f"acs:ram::{self.stack.config.account.id}:assumed-role/{roles.ROLES[function].role}/"


@pytest.fixture
def lifecycle(
    emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lifecycle]:
    enforcer = enforce(emulator_server.emulator)
    destinations = tmp_path / "destinations.yaml"  # every result also goes to an EventBridge bus
    destinations.write_text(f"routes:\n  - {{name: all, source: '*', eventbridge: {{bus: {RESULT_BUS}}}}}\n")
    environment = {
        "RAMFLOW_DESTINATIONS": str(destinations),
        "RAMFLOW_WEBHOOK_SECRET": NEW_SECRET,
        "RAMFLOW_ACCOUNT_ALIAS": "",  # as deployed without the setting: the functions ask RAM for it
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
        "RAMFLOW_MANAGED_USER_PREFIX": PREFIX,  # as deployed: scoped, never the unscoped mode
        "RAMFLOW_ALLOW_UNSCOPED_USERS": "false",
    }
    with LocalStack(emulator_server=emulator_server, workdir=tmp_path, environment=environment) as stack:
        # The local delivery loop (reconcile's role, every 0.25 s) would race each function for the
        # record it has just queued and, on a loaded machine, win some: which role sent a result would
        # then depend on timing. Every function here delivers its own results at once.
        assert stack.delivery is not None
        stack.delivery.stop()
        root = stack.root_clients()
        for function, entry in roles.ROLES.items():
            # The seed gave each role its own rendering; replace it by the repository's file itself.
            attached = root.ram.list_policies_for_role(
                ram_models.ListPoliciesForRoleRequest(role_name=entry.role)
            ).body.policies.policy
            for policy in attached:
                root.ram.detach_policy_from_role(
                    ram_models.DetachPolicyFromRoleRequest(
                        policy_type=policy.policy_type, policy_name=policy.policy_name, role_name=entry.role
                    )
                )
            document = json.dumps(deployed(function))
            root.ram.create_policy(
                ram_models.CreatePolicyRequest(policy_name=entry.role, policy_document=document)
            )
            root.ram.attach_policy_to_role(
                ram_models.AttachPolicyToRoleRequest(
                    policy_type="Custom", policy_name=entry.role, role_name=entry.role
                )
            )
        yield Lifecycle(stack, enforcer, root)


def run_the_lifecycle(life: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every function, with two crash-and-replay recoveries, as the functions' role."""
    emulator = life.stack.emulator
    assert emulator is not None
    users = emulator.account.ram.users
    _, public = generate_keypair()
    group = life.root.resource_manager.create_resource_group(
        rm_models.CreateResourceGroupRequest(name="payments", display_name="Payments")
    ).body.resource_group.id

    # Provisioning: a console user with a template grant and a resource-group grant, approved.
    console = sample("user-requested-console.json", CONSOLE_USER, delivery_public_key=public)
    console["data"]["grants"][0]["resource_group"] = group
    assert life.invoke("user-requested", console)["status"] == "pending_approval"
    # The first approval crashes right after CreateLoginProfile; the replay resets the password nobody
    # recorded (UpdateLoginProfile) instead of returning a second, different one.
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateLoginProfile"})
    approval = sample("access-approved.json", ticket_id="ITSM-1042")
    assert life.runtime.invoke("access-approved", approval).failed
    approved = life.invoke("access-approved", approval)
    assert approved["status"] == "completed", approved

    # Programmatic, through signed webhooks; the approval crashes right after CreateAccessKey and the
    # sender's retry (same webhook-id) cleans up the key whose secret was lost, then makes a new one.
    programmatic = sample(
        "user-requested-programmatic.json",
        PROGRAMMATIC_USER,
        ticket_id="ITSM-2001",
        delivery_public_key=public,
        duration="PT2S",
        grants=[{"policy": "AliyunKafkaFullAccess", "type": "System"}],
    )
    assert life.webhook(programmatic, "msg_2001").status_code == 202
    approval = sample("access-approved.json", ticket_id="ITSM-2001")
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})
    first = life.webhook(approval, "msg_2001_approved")
    assert first.status_code == 503, first.text
    replayed = life.webhook(approval, "msg_2001_approved")
    assert replayed.status_code == 200, replayed.text
    assert len(users[PROGRAMMATIC_USER].access_keys) == 1

    # Its key is rotated on request (a second key, sealed to the owner), and a reconcile pass evaluates
    # the AccessKey rules (GetAccessKeyLastUsed) while the overlap runs.
    rotation = sample("key-rotation-requested.json", user_name=PROGRAMMATIC_USER)
    assert life.webhook(rotation, "msg_2001_rotate").status_code == 200
    assert len(users[PROGRAMMATIC_USER].access_keys) == 2
    tick = {"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "every-15-minutes"}
    assert life.invoke("reconcile", tick)["errors"] == []

    # More access for the console user on a second ticket (an operator template), then revoked:
    # the ticket's grants go, the custom policy nobody else uses is deleted.
    more = sample(
        "user-requested-console.json",
        CONSOLE_USER,
        ticket_id="ITSM-1050",
        delivery_public_key=public,
        grants=[{"template": "kafka-instance-operator", "params": {"instance_id": "alikafka_post-cn-9zz9"}}],
    )
    life.invoke("user-requested", more)
    assert (
        life.invoke("access-approved", sample("access-approved.json", ticket_id="ITSM-1050"))["status"]
        == "completed"
    )
    revoked = life.invoke("access-revoked", sample("access-revoked.json", ticket_id="ITSM-1050"))
    assert revoked["status"] == "completed", revoked

    # Offboarding at once, of a user someone also gave a hand-made key, an MFA device and a group.
    life.root.ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name=CONSOLE_USER))
    device = life.root.ram.create_virtual_mfadevice(
        ram_models.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="alice-phone")
    ).body.virtual_mfadevice
    life.root.ram.bind_mfadevice(
        ram_models.BindMFADeviceRequest(
            user_name=CONSOLE_USER,
            serial_number=device.serial_number,
            authentication_code_1="123456",
            authentication_code_2="654321",
        )
    )
    life.root.ram.create_group(ram_models.CreateGroupRequest(group_name="kafka-readers"))
    life.root.ram.add_user_to_group(
        ram_models.AddUserToGroupRequest(user_name=CONSOLE_USER, group_name="kafka-readers")
    )
    gone = life.invoke("user-offboarded", sample("user-offboarded.json", owner="alice@example.com"))
    assert gone["status"] == "completed", gone
    assert CONSOLE_USER not in users

    # A graced offboarding of the programmatic user, who also holds a policy attached by hand: its key
    # goes Inactive and both policies are detached at once; a reconcile pass deletes the user once the
    # grace has passed. A `partial` offboarding is raised as FlowFailed (retried_until_complete), so a
    # reply here is `completed` or `invoke` has already failed.
    life.root.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="ReadOnlyAccess", user_name=PROGRAMMATIC_USER
        )
    )
    graced = life.invoke(
        "user-offboarded", sample("user-offboarded.json", owner="frank@example.com", grace="PT1S")
    )
    assert graced["status"] == "completed", graced
    assert graced["errors"] == [], graced
    time.sleep(2.1)
    monkeypatch.setenv("RAMFLOW_RECONCILE_REMEDIATE", "true")
    tick = {"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "every-15-minutes"}
    reconciled = life.invoke("reconcile", tick)
    assert reconciled["status"] == "completed", reconciled
    assert reconciled["errors"] == [], reconciled
    assert reconciled["plan"]["deletions"] == {PROGRAMMATIC_USER: "deleted"}, reconciled
    assert PROGRAMMATIC_USER not in users

    # The token vendor, for both vended roles (one with a session policy, one with an ExternalId).
    for app, role in (("demo-app", "kafka-reader"), ("ops-app", "kafka-operator")):
        reply = requests.get(
            life.runtime.url("token-vendor"), params={"role": role, "token": mint_dev_token(app)}, timeout=60
        )
        assert reply.status_code == 200, reply.text


def _allows(document: dict[str, Any]) -> list[tuple[int, list[str]]]:
    return [
        (index, [s["Action"]] if isinstance(s["Action"], str) else list(s["Action"]))
        for index, s in enumerate(document["Statement"])
        if s["Effect"] == "Allow"
    ]


def _granted(document: dict[str, Any]) -> set[str]:
    return {action for _, actions in _allows(document) for action in actions}


def test_each_function_does_the_lifecycle_under_its_own_role_and_nothing_more(
    lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_the_lifecycle(lifecycle, monkeypatch)

    denied = [(d.caller, d.action, d.resources) for d in lifecycle.denied()]
    assert denied == [], f"a role's document refused calls its function makes: {denied}"
    used_by_all: set[str] = set()
    for function in roles.ROLES:
        document = deployed(function)
        used = lifecycle.used_actions(function)
        assert used <= _granted(document), f"{function} did what its document does not grant"
        used_by_all |= used
    assert lifecycle.used_actions() == used_by_all, "every call came from a function's own role"
    # The webhook ingress made no RAM, IMS, STS or ResourceManager call: it only invoked functions.
    assert lifecycle.used_actions("webhook-ingress") <= {"fc:InvokeFunction"}
    assert "fc:InvokeFunction" in lifecycle.used_actions("webhook-ingress")
    assert lifecycle.used_actions("token-vendor") == {"sts:AssumeRole"}
    # Everything the lifecycle's roles are granted is used by one of them (no dead grant).
    granted = set().union(*(_granted(deployed(f)) for f in roles.ROLES))
    assert granted - used_by_all == set(), f"granted but never used: {sorted(granted - used_by_all)}"
    recorded = {
        f"{RAM_CODE[c.service]}:{c.action}"
        for c in lifecycle.stack.emulator.recorder.calls
        if c.caller.startswith(lifecycle.caller)
        and c.outcome != "NoPermission"
        and c.action != "GetCallerIdentity"
    }
    assert recorded == used_by_all - {"fc:InvokeFunction"}, "the recorder and the enforcer agree"


def test_results_are_put_on_the_bus_by_the_function_that_answered_once_each(
    lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_the_lifecycle(lifecycle, monkeypatch)
    assert lifecycle.denied() == []
    publishers = {
        function for function in roles.ROLES if "eventbridge:PutEvents" in lifecycle.used_actions(function)
    }
    assert {"access-approved", "access-revoked", "user-offboarded"} <= publishers
    assert publishers <= {
        "user-requested",
        "access-approved",
        "key-rotation",
        "access-revoked",
        "user-offboarded",
        "reconcile",
    }
    events = lifecycle.stack.emulator.account.eventbridge.events(RESULT_BUS)
    ids = [e["Id"] for e in events]
    assert len(ids) == len(set(ids)), "each result once, though webhooks went through the ingress"
    subjects = [e.get("Subject") for e in events if e["Type"] == "ramflow.result.completed"]
    assert subjects.count("ITSM-2001") == 1, "the webhook-delivered approval's result, once"
    assert all("AccessKeySecret" not in json.dumps(e) for e in events), "ciphertext only"
