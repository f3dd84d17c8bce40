"""The emulator's enforcement mode: RAM users, roles and sessions get exactly what their policies allow."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from Tea.exceptions import TeaException

from local.emulator.core import Emulator
from local.emulator.enforcement import NamedPolicy, RequestContext, enforce, evaluate, matches
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings

ACCOUNT = "5123456789012345"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# --- the evaluator alone ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("ram:*", "ram:CreateUser", True),
        ("ram:Get*", "ram:GetUser", True),
        ("ram:get*", "ram:GetUser", True),
        ("ram:Get*", "ram:ListUsers", False),
        ("ram:?etUser", "ram:GetUser", True),
        ("acs:ram:*:*:user/*", "acs:ram:*:5123:user/alice", True),
        ("acs:ram:*:*:user/ramflow-*", "acs:ram:*:5123:user/alice", False),
        ("acs:ram::5123:role/reader", "acs:ram::5123:role/reader-2", False),
        ("*", "anything:at/all", True),
        ("acs:ram:*:*:policy/a.b", "acs:ram:*:*:policy/aXb", False),
    ],
)
def test_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def request(action: str = "ram:GetUser", **params: str) -> RequestContext:
    return RequestContext(action, params, now=1_700_000_000.0)


def decide(statements: list[dict[str, Any]], action: str, resource: str, **params: str) -> str | None:
    effect, _ = evaluate(
        [NamedPolicy("p", document(*statements))], action, resource, request(action, **params)
    )
    return effect


def test_an_explicit_deny_beats_any_allow() -> None:
    statements = [allow("ram:*"), deny("ram:DeleteUser", "acs:ram:*:*:user/admin")]

    assert decide(statements, "ram:DeleteUser", "acs:ram:*:1:user/bob") == "Allow"
    assert decide(statements, "ram:DeleteUser", "acs:ram:*:1:user/admin") == "Deny"
    assert decide([allow("ram:GetUser")], "ram:DeleteUser", "*") is None, "no allow is an implicit deny"


def test_not_action_and_not_resource() -> None:
    statements = [{"Effect": "Allow", "NotAction": "ram:Delete*", "NotResource": "acs:ram:*:*:user/root-*"}]

    assert decide(statements, "ram:GetUser", "acs:ram:*:1:user/bob") == "Allow"
    assert decide(statements, "ram:DeleteUser", "acs:ram:*:1:user/bob") is None
    assert decide(statements, "ram:GetUser", "acs:ram:*:1:user/root-x") is None


def test_conditions_on_request_parameters_and_standard_keys() -> None:
    only_kafka = allow(
        "ram:CreateServiceLinkedRole", Condition={"StringEquals": {"ram:ServiceName": "kafka.example"}}
    )
    not_before = allow(
        "ram:GetUser", Condition={"DateGreaterThan": {"acs:CurrentTime": "2030-01-01T00:00:00Z"}}
    )
    from_vpc = allow("ram:GetUser", Condition={"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}})
    not_secure = deny("ram:*", Condition={"Bool": {"acs:SecureTransport": False}})

    assert decide([only_kafka], "ram:CreateServiceLinkedRole", "*", ServiceName="kafka.example") == "Allow"
    assert decide([only_kafka], "ram:CreateServiceLinkedRole", "*", ServiceName="ecs.example") is None
    assert decide([only_kafka], "ram:CreateServiceLinkedRole", "*") is None, (
        "a missing key fails StringEquals"
    )
    assert decide([not_before], "ram:GetUser", "*") is None
    assert decide([from_vpc], "ram:GetUser", "*") is None, "the emulator's callers are 127.0.0.1"
    assert decide([allow("*"), not_secure], "ram:GetUser", "*") == "Deny"


def test_an_unknown_condition_operator_never_grants_and_always_denies() -> None:
    odd = {"ForAnyValue:StringEquals": {"ram:ServiceName": "x"}}

    assert decide([allow("ram:GetUser", Condition=odd)], "ram:GetUser", "*") is None
    assert decide([allow("*"), deny("ram:GetUser", Condition=odd)], "ram:GetUser", "*") == "Deny"


# --- through the official SDK -------------------------------------------------------------------------
class World:
    """An emulator with enforcement on, and helpers that create principals with the root key."""

    def __init__(self, server: EmulatorServer, root: CloudClients):
        self.server = server
        self.root = root
        self.enforcer = enforce(server.emulator)

    def clients(self, credentials: CloudCredentials) -> CloudClients:
        return CloudClients(Settings(cloud_endpoint=self.server.endpoint), credentials)

    def policy(self, name: str, *statements: dict[str, Any]) -> str:
        self.root.ram.create_policy(
            ram_models.CreatePolicyRequest(
                policy_name=name, policy_document=json.dumps(document(*statements))
            )
        )
        return name

    def user(self, name: str, *policies: str) -> CloudClients:
        self.root.ram.create_user(ram_models.CreateUserRequest(user_name=name))
        for policy in policies:
            self.root.ram.attach_policy_to_user(
                ram_models.AttachPolicyToUserRequest(policy_type="Custom", policy_name=policy, user_name=name)
            )
        key = self.root.ram.create_access_key(
            ram_models.CreateAccessKeyRequest(user_name=name)
        ).body.access_key
        return self.clients(CloudCredentials(key.access_key_id, key.access_key_secret))

    def role(self, name: str, *policies: str) -> str:
        trust = document(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:root"]},
            }
        )
        self.root.ram.create_role(
            ram_models.CreateRoleRequest(role_name=name, assume_role_policy_document=json.dumps(trust))
        )
        for policy in policies:
            self.root.ram.attach_policy_to_role(
                ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=policy, role_name=name)
            )
        return f"acs:ram::{ACCOUNT}:role/{name}"


@pytest.fixture
def world(emulator_server: EmulatorServer, root_clients: CloudClients) -> World:
    return World(emulator_server, root_clients)


def refused(call: Any) -> TeaException:
    with pytest.raises(TeaException) as raised:
        call()
    assert raised.value.code == "NoPermission"
    assert raised.value.data["statusCode"] == 403
    return raised.value


def get_user(clients: CloudClients, name: str) -> Any:
    return clients.ram.get_user(ram_models.GetUserRequest(user_name=name))


def test_a_ram_user_gets_what_its_policies_allow_on_the_resources_named(world: World) -> None:
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="team-a-svc"))
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="other"))
    reader = world.policy("read-team-a", allow("ram:GetUser", f"acs:ram:*:{ACCOUNT}:user/team-a-*"))
    bob = world.user("bob", reader)

    assert get_user(bob, "team-a-svc").body.user.user_name == "team-a-svc"
    error = refused(lambda: get_user(bob, "other"))
    assert f"acs:ram:*:{ACCOUNT}:user/other" in error.message
    refused(lambda: bob.ram.list_users(ram_models.ListUsersRequest()))
    assert world.enforcer.denied("acs:ram::5123456789012345:user/bob")[-1].action == "ram:ListUsers"


def test_enforcement_is_off_until_switched_on(
    emulator_server: EmulatorServer, root_clients: CloudClients
) -> None:
    world = World.__new__(World)
    world.server, world.root = emulator_server, root_clients
    nobody = world.user("nobody")

    assert nobody.ram.list_users(ram_models.ListUsersRequest()).body.users is not None
    enforce(emulator_server.emulator)
    refused(lambda: nobody.ram.list_users(ram_models.ListUsersRequest()))


def test_group_policies_count_and_deny_wins(world: World) -> None:
    everything = world.policy("ram-all", allow("ram:*"))
    keep_admin = world.policy("keep-admin", deny("ram:DeleteUser", f"acs:ram:*:{ACCOUNT}:user/admin"))
    world.root.ram.create_group(ram_models.CreateGroupRequest(group_name="operators"))
    world.root.ram.attach_policy_to_group(
        ram_models.AttachPolicyToGroupRequest(
            policy_type="Custom", policy_name=everything, group_name="operators"
        )
    )
    carol = world.user("carol", keep_admin)
    world.root.ram.add_user_to_group(
        ram_models.AddUserToGroupRequest(user_name="carol", group_name="operators")
    )
    for name in ("admin", "temp"):
        world.root.ram.create_user(ram_models.CreateUserRequest(user_name=name))

    carol.ram.delete_user(ram_models.DeleteUserRequest(user_name="temp"))
    refused(lambda: carol.ram.delete_user(ram_models.DeleteUserRequest(user_name="admin")))
    assert "admin" in world.server.emulator.account.ram.users


def test_attaching_a_policy_needs_both_the_user_and_the_policy(world: World) -> None:
    attacher = world.policy(
        "attach-kafka-read",
        allow(
            ["ram:AttachPolicyToUser"],
            [f"acs:ram:*:{ACCOUNT}:user/*", "acs:ram:*:system:policy/AliyunKafkaReadOnlyAccess"],
        ),
    )
    dave = world.user("dave", attacher)
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="erin"))

    def attach(policy: str) -> Any:
        return dave.ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(policy_type="System", policy_name=policy, user_name="erin")
        )

    attach("AliyunKafkaReadOnlyAccess")
    error = refused(lambda: attach("AdministratorAccess"))
    assert "acs:ram:*:system:policy/AdministratorAccess" in error.message


def test_creating_a_policy_is_checked_against_the_new_policy_s_name(world: World) -> None:
    creator = world.user(
        "lee", world.policy("create-team-a", allow("ram:CreatePolicy", "acs:ram:*:*:policy/team-a-*"))
    )
    readonly = json.dumps(document(allow("ram:GetUser")))

    def create(name: str) -> Any:
        return creator.ram.create_policy(
            ram_models.CreatePolicyRequest(policy_name=name, policy_document=readonly)
        )

    create("team-a-reader")
    error = refused(lambda: create("escalate"))
    assert f"acs:ram:*:{ACCOUNT}:policy/escalate" in error.message
    assert "escalate" not in world.server.emulator.account.ram.policies["Custom"]


def test_account_wide_actions_need_resource_star(world: World) -> None:
    narrow = world.user(
        "fay", world.policy("alias-narrow", allow("ram:GetAccountAlias", f"acs:ram:*:{ACCOUNT}:user/*"))
    )
    broad = world.user("gus", world.policy("alias-any", allow("ram:GetAccountAlias", "*")))

    refused(lambda: narrow.ram.get_account_alias())
    assert broad.ram.get_account_alias().body.account_alias == "ramflow-demo"


def test_an_assumed_role_session_gets_the_intersection_with_its_session_policy(world: World) -> None:
    role_arn = world.role("reader", world.policy("reader-policy", allow(["ram:GetUser", "ram:ListUsers"])))
    caller = world.user("henry", world.policy("assume-reader", allow("sts:AssumeRole", role_arn)))
    session_policy = document(allow(["ram:GetUser", "ram:CreateUser"]))
    creds = caller.sts.assume_role(
        sts_models.AssumeRoleRequest(
            role_arn=role_arn, role_session_name="s1", policy=json.dumps(session_policy)
        )
    ).body.credentials
    session = world.clients(
        CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)
    )

    assert get_user(session, "henry").body.user.user_name == "henry"
    refused(lambda: session.ram.list_users(ram_models.ListUsersRequest()))  # the session policy leaves it out
    refused(
        lambda: session.ram.create_user(ram_models.CreateUserRequest(user_name="x"))
    )  # the role never had it
    assert "x" not in world.server.emulator.account.ram.users


def test_assume_role_is_checked_against_the_role_arn(world: World) -> None:
    world.role("a-role")
    other = world.role("b-role")
    caller = world.user(
        "ivan", world.policy("assume-a", allow("sts:AssumeRole", f"acs:ram::{ACCOUNT}:role/a-role"))
    )

    caller.sts.assume_role(
        sts_models.AssumeRoleRequest(role_arn=f"acs:ram::{ACCOUNT}:role/a-role", role_session_name="s2")
    )
    refused(
        lambda: caller.sts.assume_role(sts_models.AssumeRoleRequest(role_arn=other, role_session_name="s2"))
    )
    assert caller.sts.get_caller_identity().body.arn.endswith("user/ivan"), (
        "GetCallerIdentity needs no permission"
    )


def test_the_root_key_is_never_refused(world: World) -> None:
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="by-root"))

    assert world.root.ram.list_users(ram_models.ListUsersRequest()).body.users.user
    assert all(d.caller != f"acs:ram::{ACCOUNT}:root" for d in world.enforcer.decisions)


def test_decisions_name_the_statements_that_allowed(world: World) -> None:
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="target"))
    jack = world.user(
        "jack",
        world.policy("two-statements", allow("ram:ListUsers"), allow("ram:GetUser", "acs:ram:*:*:user/t*")),
    )

    get_user(jack, "target")

    assert world.enforcer.grants_used("Custom:two-statements") == {(1, "ram:GetUser", "acs:ram:*:*:user/t*")}


def test_user_tags_are_authorized_as_ram_actions_on_the_user(world: World) -> None:
    from alibabacloud_ims20190815 import models as ims_models

    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="tagged"))
    tagger = world.user(
        "kim", world.policy("tag-tagged", allow("ram:TagResources", f"acs:ram:*:{ACCOUNT}:user/tagged"))
    )
    world.root.ram.create_user(ram_models.CreateUserRequest(user_name="untagged"))

    def tag(user: str) -> Any:
        return tagger.ims.tag_resources(
            ims_models.TagResourcesRequest(
                resource_type="user",
                resource_principal_name=[f"{user}@ramflow-demo.onaliyun.com"],
                tag=[ims_models.TagResourcesRequestTag(key="team", value="a")],
            )
        )

    tag("tagged")
    refused(lambda: tag("untagged"))


def test_emulator_default_is_no_authorizer() -> None:
    assert Emulator().authorizer is None
