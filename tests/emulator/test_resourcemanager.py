"""ResourceManager 2020-03-31 through the official SDK over loopback: resource groups and the policy
grants scoped to them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.emulator.core import Emulator
from local.emulator.resourcemanager.models import DELETE_CHECK_SECONDS, for_account
from shared.cloud.clients import CloudClients

KAFKA_POLICY = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "alikafka:List*", "Resource": "*"}]}
)


def error_of(call) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    return info.value


def create_group(
    clients: CloudClients, name: str, display_name: str | None = None, tags: dict[str, str] | None = None
) -> rm_models.CreateResourceGroupResponseBodyResourceGroup:
    request = rm_models.CreateResourceGroupRequest(
        name=name,
        display_name=display_name if display_name is not None else name,
        tag=[rm_models.CreateResourceGroupRequestTag(key=k, value=v) for k, v in (tags or {}).items()],
    )
    return clients.resource_manager.create_resource_group(request).body.resource_group


def list_groups(clients: CloudClients, **kwargs: object) -> rm_models.ListResourceGroupsResponseBody:
    return clients.resource_manager.list_resource_groups(rm_models.ListResourceGroupsRequest(**kwargs)).body


def get_group(
    clients: CloudClients, group_id: str, **kwargs: object
) -> rm_models.GetResourceGroupResponseBodyResourceGroup:
    request = rm_models.GetResourceGroupRequest(resource_group_id=group_id, **kwargs)
    return clients.resource_manager.get_resource_group(request).body.resource_group


def delete_group(
    clients: CloudClients, group_id: str
) -> rm_models.DeleteResourceGroupResponseBodyResourceGroup:
    request = rm_models.DeleteResourceGroupRequest(resource_group_id=group_id)
    return clients.resource_manager.delete_resource_group(request).body.resource_group


def grant(
    clients: CloudClients,
    scope: str,
    principal: str,
    policy: str = "AliyunKafkaReadOnlyAccess",
    policy_type: str = "System",
    principal_type: str = "IMSUser",
    *,
    detach: bool = False,
):
    fields = {
        "policy_name": policy,
        "policy_type": policy_type,
        "principal_name": principal,
        "principal_type": principal_type,
        "resource_group_id": scope,
    }
    if detach:
        return clients.resource_manager.detach_policy(rm_models.DetachPolicyRequest(**fields)).body
    return clients.resource_manager.attach_policy(rm_models.AttachPolicyRequest(**fields)).body


def attachments(clients: CloudClients, **kwargs: object) -> rm_models.ListPolicyAttachmentsResponseBody:
    request = rm_models.ListPolicyAttachmentsRequest(**kwargs)
    return clients.resource_manager.list_policy_attachments(request).body


def rows(body: rm_models.ListPolicyAttachmentsResponseBody) -> list[tuple[str, str, str, str]]:
    return [
        (a.policy_name, a.principal_type, a.principal_name, a.resource_group_id)
        for a in body.policy_attachments.policy_attachment
    ]


@pytest.fixture
def domain(emulator: Emulator) -> str:
    return f"{emulator.account.ram.alias}.onaliyun.com"


@pytest.fixture
def rg(root_clients: CloudClients) -> str:
    return create_group(root_clients, "kafka-prod", "Kafka production").id


@pytest.fixture
def alice(root_clients: CloudClients, domain: str) -> str:
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="alice"))
    return f"alice@{domain}"


# --- resource groups -----------------------------------------------------------------------------
def test_every_account_starts_with_a_default_group(emulator: Emulator, root_clients: CloudClients) -> None:
    body = list_groups(root_clients)
    assert body.total_count == 1
    (default,) = body.resource_groups.resource_group
    assert default.name == "default"
    assert default.id == emulator.account.resource_manager.default_resource_group.id
    assert re.fullmatch(r"rg-[a-z0-9]{15}", default.id)
    assert default.account_id == emulator.account.account_id


def test_create_and_get_a_group(emulator: Emulator, root_clients: CloudClients) -> None:
    created = create_group(root_clients, "kafka-prod", "Kafka 生产", tags={"team": "payments"})
    assert re.fullmatch(r"rg-[a-z0-9]{15}", created.id)
    assert (created.name, created.display_name, created.status) == ("kafka-prod", "Kafka 生产", "OK")
    assert created.account_id == emulator.account.account_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", created.create_date)
    assert created.region_statuses.region_status[0].status == "OK"

    fetched = get_group(root_clients, created.id, include_tags=True)
    assert (fetched.id, fetched.name, fetched.create_date) == (created.id, created.name, created.create_date)
    assert [(t.tag_key, t.tag_value) for t in fetched.tags.tag] == [("team", "payments")]
    assert get_group(root_clients, created.id).tags is None


@pytest.mark.parametrize(
    ("name", "display_name", "code"),
    [
        (None, "x", "MissingParameter.Name"),
        ("k", "x", "InvalidParameter.Name.Length"),
        ("k" * 51, "x", "InvalidParameter.Name.Length"),
        ("1kafka", "x", "InvalidParameter.Name.InvalidChars"),
        ("kafka_prod", "x", "InvalidParameter.Name.InvalidChars"),
        ("kafka prod", "x", "InvalidParameter.Name.InvalidChars"),
        ("kafka", "", "MissingParameter.DisplayName"),
        ("kafka", "d" * 51, "InvalidParameter.DisplayName.Length"),
    ],
)
def test_create_group_validation(
    root_clients: CloudClients, name: str | None, display_name: str, code: str
) -> None:
    request = rm_models.CreateResourceGroupRequest(name=name, display_name=display_name)
    err = error_of(lambda: root_clients.resource_manager.create_resource_group(request))
    assert (err.code, err.status_code) == (code, 400)


def test_group_names_are_unique(root_clients: CloudClients, rg: str) -> None:
    err = error_of(lambda: create_group(root_clients, "kafka-prod"))
    assert (err.code, err.status_code) == ("EntityAlreadyExists.ResourceGroup", 409)


def test_thirty_groups_per_account(root_clients: CloudClients) -> None:
    for i in range(29):
        create_group(root_clients, f"g{i:02d}")
    assert error_of(lambda: create_group(root_clients, "one-more")).code == "LimitExceeded.ResourceGroup"


@pytest.mark.parametrize(
    ("key", "value"), [("acs:x", "v"), ("aliyun", "v"), ("k", "aliyun-v"), ("k", "v" * 129)]
)
def test_group_tag_rules(root_clients: CloudClients, key: str, value: str) -> None:
    err = error_of(lambda: create_group(root_clients, "tagged", tags={key: value}))
    assert err.code in {"InvalidParameter.TagKey", "InvalidParameter.TagValue"}
    assert err.code.endswith("Key" if key != "k" else "Value")


def test_get_unknown_or_malformed_group(root_clients: CloudClients) -> None:
    err = error_of(lambda: get_group(root_clients, "rg-aaaaaaaaaaaaaaa"))
    assert (err.code, err.status_code) == ("EntityNotExists.ResourceGroup", 404)
    assert error_of(lambda: get_group(root_clients, "kafka-prod")).code == "InvalidParameter.ResourceGroupId"


def test_list_filters_and_pages(root_clients: CloudClients) -> None:
    ids = [
        create_group(root_clients, f"kafka-{i}", f"Kafka {i}", tags={"n": str(i % 2)}).id for i in range(4)
    ]
    create_group(root_clients, "billing", "Billing")

    assert list_groups(root_clients).total_count == 6
    named = list_groups(root_clients, name="KAFKA")
    assert [g.id for g in named.resource_groups.resource_group] == ids
    assert named.resource_groups.resource_group[0].tags is None
    assert list_groups(root_clients, display_name="bill").resource_groups.resource_group[0].name == "billing"
    assert [
        g.id for g in list_groups(root_clients, resource_group_ids=ids[1:3]).resource_groups.resource_group
    ] == (ids[1:3])
    assert [
        g.id for g in list_groups(root_clients, resource_group_id=ids[0]).resource_groups.resource_group
    ] == [ids[0]]
    tagged = list_groups(root_clients, tag=[rm_models.ListResourceGroupsRequestTag(key="n", value="1")])
    assert [g.id for g in tagged.resource_groups.resource_group] == [ids[1], ids[3]]
    assert tagged.resource_groups.resource_group[0].tags.tag[0].tag_value == "1"

    first = list_groups(root_clients, page_size=4)
    second = list_groups(root_clients, page_size=4, page_number=2)
    assert (first.page_number, first.page_size, first.total_count) == (1, 4, 6)
    assert len(first.resource_groups.resource_group) == 4
    assert second.page_number == 2 and len(second.resource_groups.resource_group) == 2
    every = [g.id for g in first.resource_groups.resource_group + second.resource_groups.resource_group]
    assert len(set(every)) == 6
    assert list_groups(root_clients, page_number=3, page_size=4).resource_groups.resource_group == []
    assert error_of(lambda: list_groups(root_clients, page_size=101)).code == "InvalidParameter.PageSize"


def test_delete_is_pending_then_gone(emulator: Emulator, root_clients: CloudClients, rg: str) -> None:
    deleted = delete_group(root_clients, rg)
    assert deleted.status == "PendingDelete"
    assert deleted.name.startswith(f"kafka-prod-{rg}-")
    assert get_group(root_clients, rg).status == "PendingDelete"
    assert list_groups(root_clients, status="PendingDelete").total_count == 1
    assert error_of(lambda: delete_group(root_clients, rg)).code == "Invalid.ResourceGroup.Status"
    create_group(root_clients, "kafka-prod")  # the name is free again at once

    emulator.advance(DELETE_CHECK_SECONDS)
    assert error_of(lambda: get_group(root_clients, rg)).code == "EntityNotExists.ResourceGroup"
    assert list_groups(root_clients, status="PendingDelete").total_count == 0


def test_delete_refusals(emulator: Emulator, root_clients: CloudClients, rg: str) -> None:
    default_id = emulator.account.resource_manager.default_resource_group.id
    err = error_of(lambda: delete_group(root_clients, default_id))
    assert (err.code, err.status_code) == ("DeleteConflict.ResourceGroup.Default", 409)

    emulator.account.resource_manager.resource_groups[rg].resources.add("alikafka_post-cn-7mz2")
    err = error_of(lambda: delete_group(root_clients, rg))
    assert (err.code, err.status_code) == ("DeleteConflict.ResourceGroup.Resource", 409)

    assert (
        error_of(lambda: delete_group(root_clients, "rg-aaaaaaaaaaaaaaa")).code
        == "EntityNotExists.ResourceGroup"
    )


# --- policy grants at resource-group scope -------------------------------------------------------
def test_attach_list_detach(emulator: Emulator, root_clients: CloudClients, rg: str, alice: str) -> None:
    assert grant(root_clients, rg, alice).request_id

    body = attachments(root_clients, resource_group_id=rg)
    assert body.total_count == 1
    (row,) = body.policy_attachments.policy_attachment
    assert (row.policy_name, row.policy_type, row.principal_type) == (
        "AliyunKafkaReadOnlyAccess",
        "System",
        "IMSUser",
    )
    assert (row.principal_name, row.resource_group_id) == (alice, rg)
    assert row.description == "Provides read-only access to ApsaraMQ for Kafka."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row.attach_date)

    ram = emulator.account.ram
    assert [a.policy_name for a, _ in ram.attached_policies("User", "alice", rg)] == [
        "AliyunKafkaReadOnlyAccess"
    ]
    assert ram.attached_policies("User", "alice") == [], "not an account-wide grant"

    grant(root_clients, rg, alice, detach=True)
    assert attachments(root_clients, resource_group_id=rg).total_count == 0
    assert ram.attached_policies("User", "alice", None) == []


def test_account_id_domain_and_account_scope(
    emulator: Emulator, root_clients: CloudClients, rg: str, alice: str
) -> None:
    account = emulator.account.account_id
    grant(root_clients, account, f"alice@{account}.onaliyun.com", "AliyunLogReadOnlyAccess")

    ram = emulator.account.ram
    assert [a.policy_name for a, _ in ram.attached_policies("User", "alice")] == ["AliyunLogReadOnlyAccess"]
    listed = ram_models.ListPoliciesForUserRequest(user_name="alice")
    assert [p.policy_name for p in root_clients.ram.list_policies_for_user(listed).body.policies.policy] == [
        "AliyunLogReadOnlyAccess"
    ]
    assert rows(attachments(root_clients, resource_group_id=account)) == [
        ("AliyunLogReadOnlyAccess", "IMSUser", alice, account)
    ]


def test_groups_roles_and_custom_policies(
    emulator: Emulator, root_clients: CloudClients, rg: str, alice: str, domain: str
) -> None:
    root_clients.ram.create_group(ram_models.CreateGroupRequest(group_name="kafka-ops"))
    trust = {
        "Statement": [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": ["acs:ram::1:root"]}}
        ]
    }
    trust["Version"] = "1"  # type: ignore[assignment]
    root_clients.ram.create_role(
        ram_models.CreateRoleRequest(role_name="KafkaJob", assume_role_policy_document=json.dumps(trust))
    )
    root_clients.ram.create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="kafka-list", policy_document=KAFKA_POLICY, description="list"
        )
    )
    group = f"kafka-ops@group.{domain}"
    role = f"KafkaJob@role.{emulator.account.ram.alias}.onaliyunservice.com"
    grant(root_clients, rg, group, "kafka-list", "Custom", "IMSGroup")
    grant(root_clients, rg, role, "AliyunKafkaFullAccess", "System", "ServiceRole")
    grant(root_clients, rg, alice, "kafka-list", "Custom")

    assert sorted(rows(attachments(root_clients, resource_group_id=rg))) == sorted(
        [
            ("kafka-list", "IMSGroup", group, rg),
            ("AliyunKafkaFullAccess", "ServiceRole", role, rg),
            ("kafka-list", "IMSUser", alice, rg),
        ]
    )
    assert rows(attachments(root_clients, principal_type="IMSGroup")) == [
        ("kafka-list", "IMSGroup", group, rg)
    ]
    assert attachments(root_clients, policy_type="Custom").total_count == 2
    assert attachments(root_clients, policy_name="AliyunKafkaFullAccess").total_count == 1
    assert attachments(root_clients, principal_name=role).total_count == 1
    custom = attachments(root_clients, policy_type="Custom").policy_attachments.policy_attachment
    assert {a.description for a in custom} == {"list"}
    assert emulator.account.ram.policies_for_role("KafkaJob", rg)[0]["Statement"][0]["Action"] == "alikafka:*"


@pytest.mark.parametrize(
    ("overrides", "code", "status"),
    [
        ({"policy": "NoSuchPolicy"}, "EntityNotExist.Policy", 404),
        ({"policy": "AliyunKafkaReadOnlyAccess", "policy_type": "Custom"}, "EntityNotExist.Policy", 404),
        ({"policy_type": "Managed"}, "InvalidParameter.PolicyType", 400),
        ({"principal_type": "RamUser"}, "InvalidParameter.PrincipalType", 400),
        ({"principal": "nobody@{domain}"}, "EntityNotExist.User", 404),
        ({"principal": "alice@someone-else.onaliyun.com"}, "InvalidParameter.PrincipalName", 400),
        ({"principal": "alice"}, "InvalidParameter.PrincipalName", 400),
        ({"principal_type": "IMSGroup", "principal": "nobody@group.{domain}"}, "EntityNotExist.Group", 404),
        ({"scope": "rg-aaaaaaaaaaaaaaa"}, "EntityNotExists.ResourceGroup", 404),
        ({"scope": "1111111111111111"}, "EntityNotExists.ResourceGroup", 404),
    ],
)
def test_attach_refusals(
    emulator: Emulator, root_clients: CloudClients, rg: str, alice: str, domain: str, overrides, code, status
) -> None:
    args: dict[str, Any] = {
        "scope": rg,
        "principal": alice,
        "policy": "AliyunKafkaReadOnlyAccess",
        "policy_type": "System",
    }
    args |= {"principal_type": "IMSUser"} | overrides
    args["principal"] = args["principal"].format(domain=domain)
    err = error_of(lambda: grant(root_clients, **args))
    assert (err.code, err.status_code) == (code, status)
    assert attachments(root_clients).total_count == 0


def test_duplicate_attach(root_clients: CloudClients, rg: str, alice: str) -> None:
    grant(root_clients, rg, alice)
    err = error_of(lambda: grant(root_clients, rg, alice))
    assert (err.code, err.status_code) == ("EntityAlreadyExists.User.Policy", 409)
    default = list_groups(root_clients, name="default").resource_groups.resource_group[0].id
    grant(root_clients, default, alice)  # the same policy in another scope is another grant
    assert attachments(root_clients, principal_name=alice).total_count == 2


def test_detach_what_is_not_attached(root_clients: CloudClients, rg: str, alice: str) -> None:
    err = error_of(lambda: grant(root_clients, rg, alice, detach=True))
    assert (err.code, err.status_code) == ("EntityNotExist.Policy", 404)
    grant(root_clients, rg, alice)
    grant(root_clients, rg, alice, detach=True)
    assert error_of(lambda: grant(root_clients, rg, alice, detach=True)).code == "EntityNotExist.Policy"
    assert error_of(lambda: grant(root_clients, "rg-aaaaaaaaaaaaaaa", alice, detach=True)).code == (
        "EntityNotExists.ResourceGroup"
    )


def test_pending_delete_group_takes_no_grants(
    emulator: Emulator, root_clients: CloudClients, rg: str, alice: str
) -> None:
    grant(root_clients, rg, alice)
    delete_group(root_clients, rg)
    err = error_of(lambda: grant(root_clients, rg, alice, "AliyunLogReadOnlyAccess"))
    assert (err.code, err.status_code) == ("Invalid.ResourceGroup.Status", 409)
    assert attachments(root_clients, resource_group_id=rg).total_count == 1

    emulator.advance(DELETE_CHECK_SECONDS)
    assert attachments(root_clients).total_count == 0, "grants go with the deleted group"
    assert emulator.account.ram.attached_policies("User", "alice", None) == []


def test_model_view_works_before_any_resourcemanager_call(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="bob"))
    policy = ram_models.AttachPolicyToUserRequest(
        policy_type="System", policy_name="ReadOnlyAccess", user_name="bob"
    )
    root_clients.ram.attach_policy_to_user(policy)
    held = for_account(emulator.account).attachments_for_principal("bob")
    assert [(a.policy_name, a.resource_group_id) for a in held] == [
        ("ReadOnlyAccess", emulator.account.account_id)
    ]


def test_list_attachments_pages(root_clients: CloudClients, rg: str, alice: str) -> None:
    policies = ["AliyunKafkaReadOnlyAccess", "AliyunLogReadOnlyAccess", "AliyunOSSReadOnlyAccess"]
    for policy in policies:
        grant(root_clients, rg, alice, policy)
    first = attachments(root_clients, page_size=2)
    second = attachments(root_clients, page_size=2, page_number=2)
    assert (first.total_count, first.page_size, first.page_number) == (3, 2, 1)
    assert [a.policy_name for a in first.policy_attachments.policy_attachment] == policies[:2]
    assert [a.policy_name for a in second.policy_attachments.policy_attachment] == policies[2:]
    assert attachments(root_clients).page_size == 10
    assert error_of(lambda: attachments(root_clients, page_number=0)).code == "InvalidParameter.PageNumber"
    assert (
        error_of(lambda: attachments(root_clients, policy_type="Both")).code == "InvalidParameter.PolicyType"
    )
    assert error_of(lambda: attachments(root_clients, resource_group_id="rg-aaaaaaaaaaaaaaa")).code == (
        "EntityNotExists.ResourceGroup"
    )


def test_offboarding_view_and_user_deletion(
    emulator: Emulator, root_clients: CloudClients, rg: str, alice: str
) -> None:
    account = emulator.account.account_id
    grant(root_clients, rg, alice)
    grant(root_clients, account, alice, "AliyunLogReadOnlyAccess")
    rm = for_account(emulator.account)
    held = rm.attachments_for_principal(alice)
    assert [(a.policy_name, a.resource_group_id) for a in held] == [
        ("AliyunKafkaReadOnlyAccess", rg),
        ("AliyunLogReadOnlyAccess", account),
    ]
    assert rm.attachments_for_principal("alice") == held
    assert rm.attachments_for_principal(f"alice@{account}.onaliyun.com") == held

    delete = ram_models.DeleteUserRequest(user_name="alice")
    grant(root_clients, account, alice, "AliyunLogReadOnlyAccess", detach=True)
    err = error_of(lambda: root_clients.ram.delete_user(delete))
    assert err.code == "DeleteConflict.User.Policy", "a resource-group grant is not dropped silently"
    assert attachments(root_clients, principal_name=alice).total_count == 1

    for a in held[:1]:
        grant(root_clients, a.resource_group_id, a.principal_name, a.policy_name, a.policy_type, detach=True)
    assert rm.attachments_for_principal(alice) == []
    root_clients.ram.delete_user(delete)
