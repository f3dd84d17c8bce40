"""Each seeded function role holds its deployed policy document, and the functions work under them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.dev import mint_dev_token
from local.emulator.enforcement import enforce
from local.emulator.server import EmulatorServer
from local.fcruntime.stack import LocalStack
from local.roles import ROLES, Scope, role_policy
from local.seed import DevConfig, seed, vendor_policy_document
from shared.entitlements import Entitlements

REPO = Path(__file__).resolve().parents[2]


def deployed(function: str) -> dict[str, Any]:
    path = REPO / "deploy" / f"{ROLES[function].role}-policy.json"
    return json.loads(path.read_text(encoding="utf-8"))


EVENTS = REPO / "events"


def sample(name: str, **data: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["id"] = str(uuid.uuid4())
    event["data"].update(data)
    return event


@pytest.fixture
def ramflow(emulator_server: EmulatorServer, tmp_path: Path) -> Iterator[LocalStack]:
    """The repository's functions, served as `ramflow serve` serves them on the seeded account."""
    environment = {"RAMFLOW_RATE_LIMIT_QPS": "1000", "RAMFLOW_MANAGED_USER_PREFIX": "rf-"}
    with LocalStack(emulator_server=emulator_server, workdir=tmp_path, environment=environment) as stack:
        yield stack


def role_documents(stack: LocalStack, role: str) -> list[dict[str, Any]]:
    root = stack.root_clients().ram
    attached = root.list_policies_for_role(ram_models.ListPoliciesForRoleRequest(role_name=role))
    documents = []
    for policy in attached.body.policies.policy:
        found = root.get_policy(
            ram_models.GetPolicyRequest(policy_name=policy.policy_name, policy_type=policy.policy_type)
        )
        documents.append(json.loads(found.body.default_policy_version.policy_document))
    return documents


def test_each_function_role_holds_exactly_its_deployed_policy(ramflow: LocalStack) -> None:
    for function, entry in ROLES.items():
        assert role_documents(ramflow, entry.role) == [deployed(function)], function


def test_seeding_again_keeps_the_deployed_policies(ramflow: LocalStack) -> None:
    seed(ramflow.root_clients(), ramflow.config, scope=Scope("rf-"))

    for function, entry in ROLES.items():
        assert role_documents(ramflow, entry.role) == [deployed(function)], function


def test_the_development_roles_need_nothing_beyond_the_deployed_policy() -> None:
    config = DevConfig.load()
    vended = sorted({g.role_arn for g in Entitlements.load(config.entitlements).roles.values()})

    assert vended and vendor_policy_document(vended) == deployed("token-vendor")


def test_a_vended_role_the_deployed_policy_does_not_cover_is_added_by_name_only() -> None:
    covered = "acs:ram::5123456789012345:role/ramflow-kafka-reader"
    other = "acs:ram::5123456789012345:role/legacy-reader"

    document = vendor_policy_document([covered, other])

    assert document["Statement"][:-1] == role_policy("token-vendor")["Statement"]
    assert document["Statement"][-1] == {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [other]}


def test_under_enforcement_the_functions_provision_revoke_and_vend_with_their_seeded_roles(
    ramflow: LocalStack,
) -> None:
    """The emulator authorises IMS tag calls as `ram:` actions: the seeded role must grant them so."""
    emulator = ramflow.emulator
    assert emulator is not None and ramflow.runtime is not None
    enforcer = enforce(emulator)
    caller = f"acs:ram::{ramflow.config.account.id}:assumed-role/ramflow-fn-"
    group = (
        ramflow.root_clients()
        .resource_manager.create_resource_group(
            rm_models.CreateResourceGroupRequest(name="payments", display_name="Payments")
        )
        .body.resource_group.id
    )

    def invoke(function: str, event: dict[str, Any]) -> Any:
        assert ramflow.runtime is not None
        result = ramflow.runtime.invoke(function, event)
        assert not result.failed, f"{function}: {result.error_type}: {result.error_message}"
        value = result.value
        return json.loads(value) if isinstance(value, bytes | str) else value

    requested = sample("user-requested-console.json")
    requested["data"]["user"]["logon_name"] = "rf-alice.kafka"
    requested["data"]["grants"][0]["resource_group"] = group
    assert invoke("user-requested", requested)["status"] == "pending_approval"
    approved = invoke("access-approved", sample("access-approved.json", ticket_id="ITSM-1042"))
    assert approved["status"] == "completed", approved
    assert emulator.account.ram.users["rf-alice.kafka"].tags["managed-by"] == "ramflow"
    revoked = invoke("access-revoked", sample("access-revoked.json", ticket_id="ITSM-1042"))
    assert revoked["status"] == "completed", revoked
    for app, role in (("demo-app", "kafka-reader"), ("ops-app", "kafka-operator")):
        reply = requests.get(
            ramflow.runtime.url("token-vendor"),
            params={"role": role, "token": mint_dev_token(app)},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text

    assert enforcer.denied(caller) == []
    assert {"ram:TagResources", "sts:AssumeRole"} <= {d.action for d in enforcer.allowed(caller)}
