"""RAM policies, versions and the attach/detach/list family through the official SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients
from tests.emulator.test_ram_support import ALLOW_ALL_KAFKA, ISO_DATE, TRUST_ACCOUNT, api_error, make_user

M = ram_models
REQUIRED_SYSTEM_POLICIES = {
    "AdministratorAccess",
    "AliyunRAMFullAccess",
    "AliyunRAMReadOnlyAccess",
    "ReadOnlyAccess",
    "AliyunKafkaFullAccess",
    "AliyunKafkaReadOnlyAccess",
    "AliyunSTSAssumeRoleAccess",
    "AliyunECSReadOnlyAccess",
    "AliyunOSSReadOnlyAccess",
    "AliyunLogReadOnlyAccess",
}


def _create_policy(clients: CloudClients, name: str, document: str = ALLOW_ALL_KAFKA, **extra: Any) -> Any:
    request = M.CreatePolicyRequest(policy_name=name, policy_document=document, **extra)
    return clients.ram.create_policy(request).body.policy


def _statements(document: str) -> list[dict[str, Any]]:
    return json.loads(document)["Statement"]


def test_system_policies_are_listed_with_real_documents(root_clients: CloudClients) -> None:
    listed = root_clients.ram.list_policies(M.ListPoliciesRequest(policy_type="System", max_items=1000)).body
    names = {p.policy_name for p in listed.policies.policy}
    assert names >= REQUIRED_SYSTEM_POLICIES
    assert all(p.policy_type == "System" and p.default_version == "v1" for p in listed.policies.policy)

    def document(name: str) -> list[dict[str, Any]]:
        body = root_clients.ram.get_policy(M.GetPolicyRequest(policy_name=name, policy_type="System")).body
        assert body.default_policy_version.is_default_version is True
        assert body.default_policy_version.policy_document == body.policy.policy_document
        return _statements(body.policy.policy_document)

    assert document("AdministratorAccess") == [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    assert document("AliyunRAMFullAccess")[0]["Action"] == "ram:*"
    assert document("AliyunSTSAssumeRoleAccess")[0]["Action"] == "sts:AssumeRole"
    assert document("AliyunKafkaFullAccess")[0]["Action"] == "alikafka:*"
    readonly = document("AliyunKafkaReadOnlyAccess")[0]["Action"]
    assert {"alikafka:List*", "alikafka:Get*", "alikafka:Describe*", "alikafka:Query*"} <= set(readonly)
    assert all(not a.endswith(":*") for a in readonly)


def test_create_and_get_custom_policy_keeps_document_exactly(root_clients: CloudClients) -> None:
    document = '{"Version": "1",\n "Statement": [{"Effect": "Allow", "Action": ["alikafka:List*"], "Resource": "*"}]}'
    created = _create_policy(root_clients, "kafka-reader", document, description="Käfka reader & co + 100%")
    assert (created.policy_name, created.policy_type, created.default_version) == (
        "kafka-reader",
        "Custom",
        "v1",
    )
    assert re.fullmatch(ISO_DATE, created.create_date)
    body = root_clients.ram.get_policy(
        M.GetPolicyRequest(policy_name="kafka-reader", policy_type="Custom")
    ).body
    assert body.policy.policy_document == document
    assert body.policy.description == "Käfka reader & co + 100%"
    assert body.policy.attachment_count == 0
    assert (body.default_policy_version.version_id, body.default_policy_version.policy_document) == (
        "v1",
        document,
    )


def _doc(*statements: dict[str, Any], version: str = "1") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


@pytest.mark.parametrize(
    ("name", "document", "code"),
    [
        ("has_underscore", ALLOW_ALL_KAFKA, "InvalidParameter.PolicyName.InvalidChars"),
        ("p" * 129, ALLOW_ALL_KAFKA, "InvalidParameter.PolicyName.Length"),
        ("ok", "{not json", "MalformedPolicyDocument"),
        ("ok", '{"Version": "1"}', "MalformedPolicyDocument"),
        ("ok", _doc(version="2012-10-17"), "MalformedPolicyDocument"),
        ("ok", _doc({"Effect": "Maybe", "Action": "*", "Resource": "*"}), "MalformedPolicyDocument"),
        ("ok", _doc({"Effect": "Allow", "Action": "*"}), "MalformedPolicyDocument"),
        ("ok", _doc({"Effect": "Allow", "Action": "list", "Resource": "*"}), "MalformedPolicyDocument"),
    ],
)
def test_create_policy_rejects_bad_input(
    root_clients: CloudClients, name: str, document: str, code: str
) -> None:
    with api_error(code, 400):
        _create_policy(root_clients, name, document)


def test_policy_document_length_limit(root_clients: CloudClients) -> None:
    base = json.loads(ALLOW_ALL_KAFKA)

    def sized(length: int) -> str:
        base["Statement"][0]["Sid"] = ""
        padding = length - len(json.dumps(base))
        base["Statement"][0]["Sid"] = "x" * padding
        text = json.dumps(base)
        assert len(text) == length
        return text

    _create_policy(root_clients, "at-limit", sized(6144))
    with api_error("InvalidParameter.PolicyDocument.Length", 400):
        _create_policy(root_clients, "over-limit", sized(6145))


def test_duplicate_and_system_names_already_exist(root_clients: CloudClients) -> None:
    _create_policy(root_clients, "mine")
    with api_error("EntityAlreadyExists.Policy", 409):
        _create_policy(root_clients, "mine")
    with api_error("EntityAlreadyExists.Policy", 409):
        _create_policy(root_clients, "AdministratorAccess")


def test_unknown_and_system_policies_cannot_be_deleted(root_clients: CloudClients) -> None:
    with api_error("EntityNotExist.Policy", 404):
        root_clients.ram.delete_policy(M.DeletePolicyRequest(policy_name="AdministratorAccess"))
    with api_error("EntityNotExist.Policy", 404):
        root_clients.ram.delete_policy(M.DeletePolicyRequest(policy_name="nope"))
    with api_error("EntityNotExist.Policy", 404):
        root_clients.ram.get_policy(M.GetPolicyRequest(policy_name="nope", policy_type="Custom"))
    with api_error("InvalidParameter.PolicyType", 400):
        root_clients.ram.get_policy(M.GetPolicyRequest(policy_name="nope", policy_type="Managed"))
    root_clients.ram.get_policy(M.GetPolicyRequest(policy_name="AdministratorAccess", policy_type="System"))


def test_list_policies_filters_and_pages(root_clients: CloudClients) -> None:
    for i in range(5):
        tags = [M.CreatePolicyRequestTag(key="team", value="payments")] if i % 2 == 0 else None
        _create_policy(root_clients, f"custom-{i}", tag=tags)
    seen, marker = [], None
    while True:
        body = root_clients.ram.list_policies(
            M.ListPoliciesRequest(policy_type="Custom", max_items=2, marker=marker)
        )
        seen += [p.policy_name for p in body.body.policies.policy]
        if not body.body.is_truncated:
            break
        marker = body.body.marker
    assert seen == [f"custom-{i}" for i in range(5)]
    tagged = root_clients.ram.list_policies(
        M.ListPoliciesRequest(tag=[M.ListPoliciesRequestTag(key="team", value="payments")])
    ).body.policies.policy
    assert [p.policy_name for p in tagged] == ["custom-0", "custom-2", "custom-4"]
    assert tagged[0].tags.tag[0].tag_key == "team" and tagged[0].tags.tag[0].tag_value == "payments"
    everything = root_clients.ram.list_policies(M.ListPoliciesRequest(max_items=1000)).body.policies.policy
    assert {p.policy_type for p in everything} == {"System", "Custom"}


def test_update_policy_description(root_clients: CloudClients) -> None:
    _create_policy(root_clients, "mine", description="old")
    policy = root_clients.ram.update_policy_description(
        M.UpdatePolicyDescriptionRequest(policy_name="mine", new_description="nëw + better")
    ).body.policy
    assert policy.description == "nëw + better"


def test_policy_versions(root_clients: CloudClients) -> None:
    ram = root_clients.ram
    _create_policy(root_clients, "versioned")
    v2_doc = ALLOW_ALL_KAFKA.replace("alikafka:*", "alikafka:List*")
    v2 = ram.create_policy_version(
        M.CreatePolicyVersionRequest(policy_name="versioned", policy_document=v2_doc, set_as_default=True)
    ).body.policy_version
    assert (v2.version_id, v2.is_default_version) == ("v2", True)
    got = ram.get_policy(M.GetPolicyRequest(policy_name="versioned", policy_type="Custom")).body
    assert (got.policy.default_version, got.policy.policy_document) == ("v2", v2_doc)
    v1 = ram.get_policy_version(
        M.GetPolicyVersionRequest(policy_name="versioned", policy_type="Custom", version_id="v1")
    ).body.policy_version
    assert (v1.is_default_version, v1.policy_document) == (False, ALLOW_ALL_KAFKA)
    with api_error("InvalidParameter.VersionId.Format", 400):
        ram.get_policy_version(
            M.GetPolicyVersionRequest(policy_name="versioned", policy_type="Custom", version_id="1")
        )
    with api_error("EntityNotExist.Policy.Version", 404):
        ram.get_policy_version(
            M.GetPolicyVersionRequest(policy_name="versioned", policy_type="Custom", version_id="v9")
        )
    with api_error("DeleteConflict.Policy.Version.Default", 409):
        ram.delete_policy_version(M.DeletePolicyVersionRequest(policy_name="versioned", version_id="v2"))
    with api_error("DeleteConflict.Policy.Version", 409):
        ram.delete_policy(M.DeletePolicyRequest(policy_name="versioned"))
    ram.set_default_policy_version(M.SetDefaultPolicyVersionRequest(policy_name="versioned", version_id="v1"))
    versions = ram.list_policy_versions(
        M.ListPolicyVersionsRequest(policy_name="versioned", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert [(v.version_id, v.is_default_version) for v in versions] == [("v1", True), ("v2", False)]
    for _ in range(3):
        ram.create_policy_version(
            M.CreatePolicyVersionRequest(policy_name="versioned", policy_document=v2_doc)
        )
    with api_error("LimitExceeded.Policy.Version", 409):
        ram.create_policy_version(
            M.CreatePolicyVersionRequest(policy_name="versioned", policy_document=v2_doc)
        )
    rotated = ram.create_policy_version(
        M.CreatePolicyVersionRequest(
            policy_name="versioned",
            policy_document=v2_doc,
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
        )
    ).body.policy_version
    assert rotated.version_id == "v6"
    ram.delete_policy(M.DeletePolicyRequest(policy_name="versioned", cascading_delete=True))
    with api_error("EntityNotExist.Policy", 404):
        ram.get_policy(M.GetPolicyRequest(policy_name="versioned", policy_type="Custom"))


# --- the attach / detach / list family, the same for users, groups and roles ---------------------
def _make_holder(clients: CloudClients, kind: str, name: str) -> None:
    if kind == "User":
        make_user(clients, name)
    elif kind == "Group":
        clients.ram.create_group(M.CreateGroupRequest(group_name=name))
    else:
        clients.ram.create_role(
            M.CreateRoleRequest(role_name=name, assume_role_policy_document=TRUST_ACCOUNT)
        )


def _family(
    clients: CloudClients, kind: str
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """(attach, detach, list) for one kind of holder, each taking the holder's name first."""
    ram, snake = clients.ram, kind.lower()
    field = f"{snake}_name"

    def attach(name: str, policy_type: str, policy_name: str, rg: str | None = None) -> None:
        request = getattr(M, f"AttachPolicyTo{kind}Request")(
            policy_type=policy_type, policy_name=policy_name, resource_group_id=rg, **{field: name}
        )
        getattr(ram, f"attach_policy_to_{snake}")(request)

    def detach(name: str, policy_type: str, policy_name: str, rg: str | None = None) -> None:
        request = getattr(M, f"DetachPolicyFrom{kind}Request")(
            policy_type=policy_type, policy_name=policy_name, resource_group_id=rg, **{field: name}
        )
        getattr(ram, f"detach_policy_from_{snake}")(request)

    def listed(name: str) -> list[Any]:
        request = getattr(M, f"ListPoliciesFor{kind}Request")(**{field: name})
        return getattr(ram, f"list_policies_for_{snake}")(request).body.policies.policy

    return attach, detach, listed


def _attachment_count(clients: CloudClients, policy_type: str, name: str) -> int:
    request = M.GetPolicyRequest(policy_type=policy_type, policy_name=name)
    return clients.ram.get_policy(request).body.policy.attachment_count


@pytest.mark.parametrize("kind", ["User", "Group", "Role"])
def test_attach_list_detach(root_clients: CloudClients, kind: str) -> None:
    attach, detach, listed = _family(root_clients, kind)
    _make_holder(root_clients, kind, "holder")
    _create_policy(root_clients, "kafka-all")
    attach("holder", "Custom", "kafka-all")
    attach("holder", "System", "AliyunKafkaReadOnlyAccess")
    policies = listed("holder")
    assert [(p.policy_name, p.policy_type) for p in policies] == [
        ("kafka-all", "Custom"),
        ("AliyunKafkaReadOnlyAccess", "System"),
    ]
    assert all(re.fullmatch(ISO_DATE, p.attach_date) and p.default_version == "v1" for p in policies)
    assert _attachment_count(root_clients, "Custom", "kafka-all") == 1
    with api_error(f"EntityAlreadyExists.{kind}.Policy", 409):
        attach("holder", "Custom", "kafka-all")
    conflict = "DeleteConflict.Role.Policy" if kind == "Role" else f"DeleteConflict.Policy.{kind}"
    with api_error(conflict, 409):  # the Role code: see local/emulator/ram/responses.py's sources
        root_clients.ram.delete_policy(M.DeletePolicyRequest(policy_name="kafka-all"))
    detach("holder", "Custom", "kafka-all")
    assert _attachment_count(root_clients, "Custom", "kafka-all") == 0
    with api_error(f"EntityNotExist.{kind}.Policy", 404):
        detach("holder", "Custom", "kafka-all")
    assert [p.policy_name for p in listed("holder")] == ["AliyunKafkaReadOnlyAccess"]
    root_clients.ram.delete_policy(M.DeletePolicyRequest(policy_name="kafka-all"))


@pytest.mark.parametrize("kind", ["User", "Group", "Role"])
def test_attach_errors(root_clients: CloudClients, kind: str) -> None:
    attach, _, listed = _family(root_clients, kind)
    with api_error(f"EntityNotExist.{kind}", 404):
        attach("ghost", "System", "ReadOnlyAccess")
    with api_error(f"EntityNotExist.{kind}", 404):
        listed("ghost")
    _make_holder(root_clients, kind, "holder")
    with api_error("EntityNotExist.Policy", 404):
        attach("holder", "Custom", "ReadOnlyAccess")  # a system policy's name, wrong type
    with api_error("InvalidParameter.PolicyType", 400):
        attach("holder", "Managed", "ReadOnlyAccess")
    with api_error("MissingParameter", 400):
        attach("holder", None, "ReadOnlyAccess")


@pytest.mark.parametrize("kind", ["User", "Group", "Role"])
def test_custom_policy_limit_per_holder(root_clients: CloudClients, kind: str) -> None:
    attach, _, _ = _family(root_clients, kind)
    _make_holder(root_clients, kind, "holder")
    for i in range(11):
        _create_policy(root_clients, f"p{i}")
    for i in range(10):
        attach("holder", "Custom", f"p{i}")
    with api_error(f"LimitExceeded.{kind}.Policy", 409):
        attach("holder", "Custom", "p10")
    attach("holder", "System", "ReadOnlyAccess")  # the system quota is separate


def test_system_policy_limit_per_user(emulator: Emulator, root_clients: CloudClients) -> None:
    assert emulator.account.ram.limits.system_policies_per_holder == 20
    emulator.account.ram.limits.system_policies_per_holder = 2
    attach, _, _ = _family(root_clients, "User")
    make_user(root_clients, "u")
    attach("u", "System", "ReadOnlyAccess")
    attach("u", "System", "AliyunOSSReadOnlyAccess")
    with api_error("LimitExceeded.User.Policy", 409):
        attach("u", "System", "AliyunLogReadOnlyAccess")


def test_resource_group_scope_is_separate_and_blocks_delete(root_clients: CloudClients) -> None:
    attach, detach, listed = _family(root_clients, "User")
    make_user(root_clients, "u")
    attach("u", "System", "AliyunKafkaReadOnlyAccess", "rg-aek2xl5qw")
    attach("u", "System", "AliyunKafkaReadOnlyAccess")  # account scope is another grant
    assert [p.policy_name for p in listed("u")] == ["AliyunKafkaReadOnlyAccess"]
    detach("u", "System", "AliyunKafkaReadOnlyAccess")
    assert listed("u") == []
    with api_error("DeleteConflict.User.Policy", 409):
        root_clients.ram.delete_user(M.DeleteUserRequest(user_name="u"))
    detach("u", "System", "AliyunKafkaReadOnlyAccess", "rg-aek2xl5qw")
    root_clients.ram.delete_user(M.DeleteUserRequest(user_name="u"))


def test_list_entities_for_policy(root_clients: CloudClients) -> None:
    for kind in ("User", "Group", "Role"):
        _make_holder(root_clients, kind, f"the-{kind.lower()}")
        _family(root_clients, kind)[0](f"the-{kind.lower()}", "System", "ReadOnlyAccess")
    body = root_clients.ram.list_entities_for_policy(
        M.ListEntitiesForPolicyRequest(policy_name="ReadOnlyAccess", policy_type="System")
    ).body
    assert [u.user_name for u in body.users.user] == ["the-user"]
    assert [g.group_name for g in body.groups.group] == ["the-group"]
    assert [r.role_name for r in body.roles.role] == ["the-role"]
    assert body.roles.role[0].arn.endswith(":role/the-role")
    assert _attachment_count(root_clients, "System", "ReadOnlyAccess") == 3


def test_policy_documents_for_enforcement(emulator: Emulator, root_clients: CloudClients) -> None:
    """policies_for_user includes grants through groups; policies_for_role the role's own."""
    user_attach, _, _ = _family(root_clients, "User")
    group_attach, _, _ = _family(root_clients, "Group")
    role_attach, _, _ = _family(root_clients, "Role")
    make_user(root_clients, "alice")
    _make_holder(root_clients, "Group", "readers")
    _make_holder(root_clients, "Role", "app-role")
    root_clients.ram.add_user_to_group(M.AddUserToGroupRequest(user_name="alice", group_name="readers"))
    _create_policy(root_clients, "kafka-all")
    user_attach("alice", "Custom", "kafka-all")
    user_attach("alice", "System", "AliyunOSSReadOnlyAccess", "rg-1")
    group_attach("readers", "System", "AliyunLogReadOnlyAccess")
    role_attach("app-role", "System", "AliyunSTSAssumeRoleAccess")
    ram = emulator.account.ram

    def actions(documents: list[dict[str, Any]]) -> list[Any]:
        return [s["Action"] for d in documents for s in d["Statement"]]

    assert actions(ram.policies_for_user("alice")) == ["alikafka:*", ["log:Get*", "log:List*"]]
    assert ["oss:Get*", "oss:List*"] in actions(ram.policies_for_user("alice", resource_group_id="rg-1"))
    assert actions(ram.policies_for_role("app-role")) == ["sts:AssumeRole"]
