"""The functions' own role, under enforcement: deploy/ramflow-functions-policy.json is exactly enough.

This runs a representative lifecycle as the functions' role under enforcement, not the whole
end-to-end suite. It goes through the local FC runtime (`ramflow serve`'s stack), where every function
runs with STS credentials of the role `ramflow-functions` — as in Function Compute — and the role's
only policy is the repository's document. The lifecycle covers:

- a console user requested with a template grant and a resource-group grant, then approved; the
  approval crashes after CreateLoginProfile and its replay resets the password;
- a programmatic user requested and approved through signed webhooks; the approval crashes after
  CreateAccessKey and the sender's retry replaces the key whose secret was lost;
- a second ticket (an operator template) approved, then revoked;
- offboarding at once a user who also has a hand-made AccessKey, an MFA device and a group;
- a graced offboarding (of a user with a hand-attached policy) finished by a reconcile pass;
- the token vendor, for a role with a session policy and a role with an ExternalId.

The emulator's enforcement mode refuses anything the document does not allow, and its decisions name
the statements that allowed each call. Then: nothing the functions did was refused, and every action
and every Allow statement the document grants was used. Two more tests call the role's session
directly (it cannot step outside the catalog) and check the document is rendered from the catalog.
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
from alibabacloud_sts20150401 import models as sts_models
from Tea.exceptions import TeaException

from local import build as builder
from local.dev import mint_dev_token
from local.emulator.enforcement import RAM_CODE, PolicyEnforcer, enforce
from local.emulator.server import EmulatorServer
from local.fcruntime.stack import LocalStack
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import DEFAULT_CATALOG, Settings
from shared.sealing import generate_keypair
from tests.webhooks.conftest import NEW_SECRET, sign

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
POLICY = REPO / "deploy" / "ramflow-functions-policy.json"
ROLE = "ramflow-functions"


def sample(name: str, **data: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return event


class Lifecycle:
    """The stack with enforcement on and the role holding only the repository's policy document."""

    def __init__(self, stack: LocalStack, enforcer: PolicyEnforcer, root: CloudClients):
        self.stack = stack
        self.enforcer = enforcer
        self.root = root
        assert stack.runtime is not None
        self.runtime = stack.runtime
        self.caller = f"acs:ram::{stack.config.account.id}:assumed-role/{ROLE}/"

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

    def used_actions(self) -> set[str]:
        return {d.action for d in self.enforcer.allowed(self.caller)}


@pytest.fixture
def lifecycle(
    emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lifecycle]:
    enforcer = enforce(emulator_server.emulator)
    environment = {
        "RAMFLOW_WEBHOOK_SECRET": NEW_SECRET,
        "RAMFLOW_ACCOUNT_ALIAS": "",  # as deployed without the setting: the functions ask RAM for it
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
    }
    with LocalStack(emulator_server=emulator_server, workdir=tmp_path, environment=environment) as stack:
        root = stack.root_clients()
        attached = root.ram.list_policies_for_role(ram_models.ListPoliciesForRoleRequest(role_name=ROLE))
        # The seed attaches its own copy of the deployed document; it goes, so that the role's only
        # policy is the repository's file under the deployed name.
        for policy in attached.body.policies.policy:
            root.ram.detach_policy_from_role(
                ram_models.DetachPolicyFromRoleRequest(
                    policy_type=policy.policy_type, policy_name=policy.policy_name, role_name=ROLE
                )
            )
        document = POLICY.read_text(encoding="utf-8")
        root.ram.create_policy(ram_models.CreatePolicyRequest(policy_name=ROLE, policy_document=document))
        root.ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=ROLE, role_name=ROLE)
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
    console = sample("user-requested-console.json", delivery_public_key=public)
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
    assert len(users["orders-etl"].access_keys) == 1

    # Its key is rotated on request (a second key, sealed to the owner), and a reconcile pass evaluates
    # the AccessKey rules (GetAccessKeyLastUsed) while the overlap runs.
    rotation = sample("key-rotation-requested.json", user_name="orders-etl")
    assert life.webhook(rotation, "msg_2001_rotate").status_code == 200
    assert len(users["orders-etl"].access_keys) == 2
    tick = {"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "triggerName": "every-15-minutes"}
    assert life.invoke("reconcile", tick)["errors"] == []

    # More access for the console user on a second ticket (an operator template), then revoked:
    # the ticket's grants go, the custom policy nobody else uses is deleted.
    more = sample(
        "user-requested-console.json",
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
    life.root.ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name="alice.kafka"))
    device = life.root.ram.create_virtual_mfadevice(
        ram_models.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="alice-phone")
    ).body.virtual_mfadevice
    life.root.ram.bind_mfadevice(
        ram_models.BindMFADeviceRequest(
            user_name="alice.kafka",
            serial_number=device.serial_number,
            authentication_code_1="123456",
            authentication_code_2="654321",
        )
    )
    life.root.ram.create_group(ram_models.CreateGroupRequest(group_name="kafka-readers"))
    life.root.ram.add_user_to_group(
        ram_models.AddUserToGroupRequest(user_name="alice.kafka", group_name="kafka-readers")
    )
    gone = life.invoke("user-offboarded", sample("user-offboarded.json", owner="alice@example.com"))
    assert gone["status"] == "completed", gone
    assert "alice.kafka" not in users

    # A graced offboarding of the programmatic user, who also holds a policy attached by hand: its key
    # goes Inactive and both policies are detached at once; a reconcile pass deletes the user once the
    # grace has passed. A `partial` offboarding is raised as FlowFailed (retried_until_complete), so a
    # reply here is `completed` or `invoke` has already failed.
    life.root.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="ReadOnlyAccess", user_name="orders-etl"
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
    assert reconciled["plan"]["deletions"] == {"orders-etl": "deleted"}, reconciled
    assert "orders-etl" not in users

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


def test_the_functions_role_is_allowed_everything_the_lifecycle_does_and_nothing_more(
    lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_the_lifecycle(lifecycle, monkeypatch)

    denied = [(d.action, d.resources) for d in lifecycle.denied()]
    assert denied == [], f"the policy document refused calls the functions make: {denied}"
    document = json.loads(POLICY.read_text())
    granted = {action for _, actions in _allows(document) for action in actions}
    used = lifecycle.used_actions()
    assert granted - used == set(), f"granted but never used by the lifecycle: {sorted(granted - used)}"
    assert used <= granted
    recorded = {
        f"{RAM_CODE[c.service]}:{c.action}"
        for c in lifecycle.stack.emulator.recorder.calls  # type: ignore[union-attr]
        if c.caller.startswith(lifecycle.caller)
        and c.outcome != "NoPermission"
        and c.action != "GetCallerIdentity"
    }
    assert recorded == used, "the call recorder and the enforcer agree on what the role did"
    statements_used = {
        index for index, _, _ in lifecycle.enforcer.grants_used(f"Custom:{ROLE}", lifecycle.caller)
    }
    assert statements_used == {index for index, _ in _allows(document)}, "every Allow statement is needed"


def test_the_role_cannot_step_outside_the_catalog(lifecycle: Lifecycle) -> None:
    """The role's own session, used directly: what a compromised function could not do."""
    creds = lifecycle.runtime.credentials.get()
    assert creds is not None
    session = CloudClients(
        Settings(cloud_endpoint=lifecycle.stack.cloud_endpoint),
        CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token),
    )
    session.ram.create_user(ram_models.CreateUserRequest(user_name="probe"))
    everything = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    lifecycle.root.ram.create_policy(
        ram_models.CreatePolicyRequest(policy_name="team-admin", policy_document=everything)
    )
    account = lifecycle.stack.config.account.id

    refusals = {
        "create a policy outside ramflow's names": lambda: session.ram.create_policy(
            ram_models.CreatePolicyRequest(policy_name="escalate", policy_document=everything)
        ),
        "attach a system policy the catalog lacks": lambda: session.ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type="System", policy_name="AliyunECSFullAccess", user_name="probe"
            )
        ),
        "attach a custom policy ramflow did not render": lambda: session.ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type="Custom", policy_name="team-admin", user_name="probe"
            )
        ),
        "delete a policy ramflow did not render": lambda: session.ram.delete_policy(
            ram_models.DeletePolicyRequest(policy_name="team-admin")
        ),
        "create a role": lambda: session.ram.create_role(
            ram_models.CreateRoleRequest(role_name="escalate", assume_role_policy_document="{}")
        ),
        "assume its own role": lambda: session.sts.assume_role(
            sts_models.AssumeRoleRequest(role_arn=f"acs:ram::{account}:role/{ROLE}", role_session_name="loop")
        ),
        "change the password policy": lambda: session.ram.set_password_policy(
            ram_models.SetPasswordPolicyRequest(minimum_password_length=8)
        ),
    }
    for what, call in refusals.items():
        with pytest.raises(TeaException) as raised:
            call()
        assert raised.value.code == "NoPermission", what
    assert "escalate" not in lifecycle.stack.emulator.account.ram.policies["Custom"]  # type: ignore[union-attr]


def test_the_committed_document_is_rendered_from_the_catalog() -> None:
    """A catalog change that adds a grantable policy must show in this document's diff, for review."""
    from local.emulator.ram.models import parse_policy_document
    from shared.policy.catalog import Catalog

    assert POLICY.read_text(encoding="utf-8") == builder.policy_text(), (
        "deploy/ramflow-functions-policy.json is stale: run `.venv/bin/python -m local.build --write-policy`"
    )
    parse_policy_document(POLICY.read_text(), param="PolicyDocument", max_chars=6144)
    catalog = Catalog.load(DEFAULT_CATALOG)
    attach = json.loads(POLICY.read_text())["Statement"][3]["Resource"]
    for name in catalog.policies:
        assert any(name in resource for resource in attach), f"{name} cannot be granted"
    for name, template in catalog.templates.items():
        rendered = template_name_of(name, template)
        assert rendered.startswith(builder.CUSTOM_POLICY_PREFIX), rendered


def template_name_of(name: str, template: Any) -> str:
    from shared.policy.templates import render

    example = getattr(template, "example", None) or {}
    return render(name, template, example).name
