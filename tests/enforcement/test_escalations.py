"""What a compromised function could do with its role's session, tried against the emulator's
enforcement: every escalation is refused with NoPermission, or, where RAM's policy language cannot
refuse it (README "Security model"), by ramflow's code before any cloud call.

The sessions are the functions' own (`ramflow-fn-<function>`, the repository's documents rendered
with the prefix `rf-`), taken from the local FC runtime exactly as a function gets them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_eventbridge20200401 import models as eb_models
from alibabacloud_fc20230330 import models as fc_models
from alibabacloud_fc20230330.client import Client as FcClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.utils_models import Config
from Tea.exceptions import TeaException

from local import roles
from shared.cloud import Cloud
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.errors import OutOfScope
from tests.enforcement.test_least_privilege import (  # noqa: F401
    PREFIX,
    RESULT_BUS,
    Lifecycle,
    lifecycle,
    sample,
)

EVERYTHING = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
ADMIN = "ops-admin"  # an administrator ramflow does not manage
BYSTANDER = "bob"  # an unmanaged user with nothing
MANAGED = f"{PREFIX}victim"  # a user inside the prefix
PROVISIONING = {"user-requested", "access-approved"}
DELIVERING = {
    "user-requested",
    "access-approved",
    "key-rotation",
    "access-revoked",
    "user-offboarded",
    "reconcile",
}


def session_of(life: Lifecycle, function: str) -> CloudClients:
    creds = life.runtime.credentials.for_role(roles.ROLES[function].role)  # type: ignore[attr-defined]
    assert creds is not None, function
    return CloudClients(
        Settings(cloud_endpoint=life.stack.cloud_endpoint),
        CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token),
    )


@pytest.fixture
def world(lifecycle: Lifecycle) -> Lifecycle:  # noqa: F811 - the fixture, imported above
    """An unmanaged administrator (with a console password), a bystander, a managed user, and a
    custom policy `ramflow-evil` allowing everything — all made by the root account."""
    ram = lifecycle.root.ram
    for user in (ADMIN, BYSTANDER, MANAGED):
        ram.create_user(ram_models.CreateUserRequest(user_name=user))
    ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AdministratorAccess", user_name=ADMIN
        )
    )
    ram.create_login_profile(
        ram_models.CreateLoginProfileRequest(user_name=ADMIN, password="Adm1n-Passw0rd!x")
    )
    ram.create_policy(ram_models.CreatePolicyRequest(policy_name="ramflow-evil", policy_document=EVERYTHING))
    return lifecycle


def escalations(s: CloudClients, account: str) -> dict[str, Callable[[], Any]]:
    ram = s.ram

    def attach(user: str, policy: str, kind: str = "System") -> Callable[[], Any]:
        return lambda: ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(policy_type=kind, policy_name=policy, user_name=user)
        )

    return {
        "CreateAccessKey for an unmanaged administrator": lambda: ram.create_access_key(
            ram_models.CreateAccessKeyRequest(user_name=ADMIN)
        ),
        "CreateLoginProfile for an unmanaged administrator": lambda: ram.create_login_profile(
            ram_models.CreateLoginProfileRequest(user_name=BYSTANDER, password="Xx-123456789-yY")
        ),
        "UpdateLoginProfile of an unmanaged administrator": lambda: ram.update_login_profile(
            ram_models.UpdateLoginProfileRequest(user_name=ADMIN, password="Xx-123456789-yY")
        ),
        "attach AdministratorAccess to an unmanaged user": attach(BYSTANDER, "AdministratorAccess"),
        "create ramflow-evil2 allowing everything": lambda: ram.create_policy(
            ram_models.CreatePolicyRequest(policy_name="ramflow-evil2", policy_document=EVERYTHING)
        ),
        "attach ramflow-evil to an unmanaged user": attach(BYSTANDER, "ramflow-evil", "Custom"),
        "attach ramflow-evil to a managed user": attach(MANAGED, "ramflow-evil", "Custom"),
        "detach a policy from an unmanaged user": lambda: ram.detach_policy_from_user(
            ram_models.DetachPolicyFromUserRequest(
                policy_type="System", policy_name="AdministratorAccess", user_name=ADMIN
            )
        ),
        "delete an unmanaged user": lambda: ram.delete_user(
            ram_models.DeleteUserRequest(user_name=BYSTANDER)
        ),
        "create a role": lambda: ram.create_role(
            ram_models.CreateRoleRequest(role_name="escalate", assume_role_policy_document="{}")
        ),
        "change the password policy": lambda: ram.set_password_policy(
            ram_models.SetPasswordPolicyRequest(minimum_password_length=8)
        ),
        # A request on the bus whose rules trigger the lifecycle functions: posing as the ticket system.
        "publish an approval on the lifecycle bus": lambda: s.eventbridge.put_events(
            eb_models.PutEventsRequest(
                event_bus_name="default",
                event_list=[
                    eb_models.PutEventsRequestEventList(
                        id="forged-1", source="itsm.example.com", type="ramflow.access.approved", data="{}"
                    )
                ],
            )
        ),
        "assume the provisioning role": lambda: s.sts.assume_role(
            sts_models.AssumeRoleRequest(
                role_arn=f"acs:ram::{account}:role/{roles.ROLES['access-approved'].role}",
                role_session_name="x",
            )
        ),
    }


@pytest.mark.parametrize("function", sorted(roles.ROLES))
def test_every_escalation_is_refused_for_every_role(world: Lifecycle, function: str) -> None:
    session = session_of(world, function)
    account = world.stack.config.account.id
    allowed = []
    for what, call in escalations(session, account).items():
        try:
            call()
        except TeaException as refused:
            assert refused.code == "NoPermission", (function, what, refused.code)
            continue
        allowed.append(what)
    assert allowed == [], f"{function} could: {allowed}"

    # Create a user and make it an administrator: only provisioning may create users (RAM authorizes
    # CreateUser on user/* whatever the name), and nobody may grant outside the prefix.
    try:
        session.ram.create_user(ram_models.CreateUserRequest(user_name="evil-admin"))
    except TeaException as refused:
        assert refused.code == "NoPermission" and function not in PROVISIONING, function
    else:
        assert function in PROVISIONING, f"{function} created a user"
        with pytest.raises(TeaException) as denied:
            session.ram.attach_policy_to_user(
                ram_models.AttachPolicyToUserRequest(
                    policy_type="System", policy_name="AdministratorAccess", user_name="evil-admin"
                )
            )
        assert denied.value.code == "NoPermission"
    users = world.stack.emulator.account.ram.users
    assert not users[ADMIN].access_keys and not users[BYSTANDER].login_profile
    assert "ramflow-evil2" not in world.stack.emulator.account.ram.policies["Custom"]


@pytest.mark.parametrize("function", sorted(roles.ROLES))
def test_only_a_function_that_delivers_results_may_put_events_on_the_result_bus(
    world: Lifecycle, function: str
) -> None:
    session = session_of(world, function)
    result = eb_models.PutEventsRequest(
        event_bus_name=RESULT_BUS,
        event_list=[
            eb_models.PutEventsRequestEventList(
                id=f"msg-{function}", source="ramflow", type="ramflow.result.completed", data="{}"
            )
        ],
    )
    bus = world.stack.emulator.account.eventbridge
    if function in DELIVERING:
        reply = session.eventbridge.put_events(result)
        assert reply.body.data.failed_entry_count == 0
        assert [e["Id"] for e in bus.events(RESULT_BUS)][-1] == f"msg-{function}"
    else:
        with pytest.raises(TeaException) as refused:
            session.eventbridge.put_events(result)
        assert refused.value.code == "NoPermission", function
        assert f"msg-{function}" not in [e["Id"] for e in bus.events(RESULT_BUS)]


def fc_client_of(world: Lifecycle, function: str) -> FcClient:
    """The FC client a function's own session builds (InvokeFunction against the local FC runtime)."""
    creds = world.runtime.credentials.for_role(roles.ROLES[function].role)  # type: ignore[attr-defined]
    endpoint = world.runtime.endpoint.split("://", 1)[1]
    return FcClient(
        Config(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
            endpoint=endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
    )


def test_the_webhook_ingress_may_invoke_only_the_functions_that_own_events(world: Lifecycle) -> None:
    client = fc_client_of(world, "webhook-ingress")

    def invoke(function: str, payload: bytes) -> Any:
        return client.invoke_function(function, fc_models.InvokeFunctionRequest(body=io.BytesIO(payload)))

    for function in ("reconcile", "token-vendor"):
        with pytest.raises(TeaException) as refused:
            invoke(function, b"{}")
        assert refused.value.code == "NoPermission", function
    reply = invoke("user-requested", json.dumps(sample("user-requested-console.json", f"{PREFIX}z")).encode())
    assert reply.status_code == 200


def test_what_policy_cannot_refuse_the_code_does(world: Lifecycle) -> None:
    """RAM cannot refuse CreateUser by name, nor a ResourceManager grant by principal, nor a
    catalog high-risk policy on a managed user: ramflow's code refuses each before any call."""
    emulator = world.stack.emulator
    assert emulator is not None
    session = session_of(world, "access-approved")
    creds = session.credentials
    cloud = Cloud.from_settings(
        Settings(cloud_endpoint=world.stack.cloud_endpoint, managed_user_prefix=PREFIX), creds
    )
    before = len(emulator.recorder.calls)
    refusals: dict[str, Callable[[], Any]] = {
        "CreateUser outside the prefix": lambda: cloud.ram.create_user("evil-admin"),
        "CreateAccessKey outside the prefix": lambda: cloud.ram.create_access_key(ADMIN),
        "UpdateLoginProfile outside the prefix": lambda: cloud.ram.update_login_profile(
            ADMIN, password="Xx-1234567-yY"
        ),
        "a resource-group grant to a user outside the prefix": lambda: cloud.rm.attach_policy(
            "rg-any", "AdministratorAccess", "System", f"{ADMIN}@ramflow-demo.onaliyun.com"
        ),
        "tagging a user outside the prefix": lambda: cloud.ims.tag_user(ADMIN, {"managed-by": "ramflow"}),
    }
    for what, call in refusals.items():
        with pytest.raises(OutOfScope):
            call()
            pytest.fail(what)
    assert len(emulator.recorder.calls) == before, "refused before any cloud call"

    # A ticket for a name outside the prefix is rejected, naming the field.
    outside = world.invoke("user-requested", sample("user-requested-console.json", "alice.kafka"))
    assert outside["status"] == "rejected"
    assert {
        "field": "data.user.logon_name",
        "reason": f"must start with the managed-user prefix {PREFIX!r}",
    } in (outside["errors"])
    # AdministratorAccess for a managed user: the approval without break-glass is refused.
    admin = sample(
        "user-requested-console.json",
        f"{PREFIX}would-be-admin",
        ticket_id="ITSM-9001",
        grants=[{"policy": "AdministratorAccess", "type": "System"}],
        duration="PT1H",
    )
    assert world.invoke("user-requested", admin)["status"] == "pending_approval"
    approval = sample(
        "access-approved.json", ticket_id="ITSM-9001", approvers=["dave@example.com", "erin@example.com"]
    )
    refused = world.invoke("access-approved", approval)
    assert refused["status"] == "rejected"
    assert any(e["field"] == "data.break_glass" for e in refused["errors"]), refused
    assert f"{PREFIX}would-be-admin" not in emulator.account.ram.users


def test_reconcile_may_invoke_key_rotation_and_never_access_approved(world: Lifecycle) -> None:
    """A stolen reconcile session cannot send access-approved anything (a forged approval); what it
    can send key-rotation names a user and a key, and is acted on only from the ledger."""
    client = fc_client_of(world, "reconcile")

    def invoke(function: str, payload: bytes) -> Any:
        return client.invoke_function(function, fc_models.InvokeFunctionRequest(body=io.BytesIO(payload)))

    forged = sample("access-approved.json", ticket_id="ITSM-1042", approvers=["mallory@example.com"])
    for function in ("access-approved", "user-requested", "user-offboarded", "access-revoked"):
        with pytest.raises(TeaException) as refused:
            invoke(function, json.dumps(forged).encode())
        assert refused.value.code == "NoPermission", function
    due = {
        "specversion": "1.0",
        "id": "age-rotation:rf-nobody:LTAI0000",
        "source": "ramflow.reconcile",
        "type": "ramflow.key.rotation_due",
        "data": {"user_name": f"{PREFIX}nobody", "old_key_id": "LTAI0000"},
    }
    reply = invoke("key-rotation", json.dumps(due).encode())
    assert reply.status_code == 200
    assert json.loads(reply.body.read())["status"] == "rejected"  # no such recorded key: nothing done
