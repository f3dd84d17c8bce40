"""Provisioning end to end: events → handlers → official SDK → emulator over loopback."""

from __future__ import annotations

import json
import threading

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models
from Tea.exceptions import TeaException

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.cloud.ram import PasswordPolicy
from shared.config import Settings
from shared.handler import FlowFailed
from shared.passwords import satisfies
from shared.sealing import open_sealed
from tests.flows.conftest import sample

APPROVER = "dave@example.com"


def programmatic_request(public_key: str, resource_group: str) -> dict:
    event = sample("user-requested-programmatic.json", delivery_public_key=public_key)
    event["data"]["grants"][1]["resource_group"] = resource_group
    return event


def approval(ticket_id: str, approvers: list[str] | None = None) -> dict:
    return sample("access-approved-programmatic.json", ticket_id=ticket_id, approvers=approvers or [APPROVER])


def policies_of(clients: CloudClients, user: str) -> set[tuple[str, str]]:
    body = clients.ram.list_policies_for_user(ram_models.ListPoliciesForUserRequest(user_name=user)).body
    return {(p.policy_name, p.policy_type) for p in body.policies.policy}


def keys_of(clients: CloudClients, user: str) -> list[str]:
    body = clients.ram.list_access_keys(ram_models.ListAccessKeysRequest(user_name=user)).body
    return [k.access_key_id for k in body.access_keys.access_key]


def rg_attachments(clients: CloudClients, principal: str) -> set[tuple[str, str, str]]:
    request = rm_models.ListPolicyAttachmentsRequest(principal_name=principal, principal_type="IMSUser")
    body = clients.resource_manager.list_policy_attachments(request).body
    # ResourceManager also lists account-scope attachments, under the account id: keep resource groups only
    return {
        (a.policy_name, a.policy_type, a.resource_group_id)
        for a in body.policy_attachments.policy_attachment
        if a.resource_group_id.startswith("rg-")
    }


def tags_of(emulator: Emulator, user: str) -> dict[str, str]:
    return dict(emulator.account.ram.users[user].tags)


def test_programmatic_user_ends_in_exactly_the_approved_state(
    function_env, call, root_clients, emulator, delivery_keys, resource_group
) -> None:
    private, public = delivery_keys
    requested = call("user-requested", programmatic_request(public, resource_group))
    assert requested["status"] == "pending_approval"
    assert [g["policy_name"] for g in requested["plan"]["grants"]][1] == "AliyunKafkaFullAccess"
    assert "orders-etl" not in emulator.account.ram.users  # nothing created before approval

    reply = call("access-approved", approval("ITSM-1043"))
    assert reply["status"] == "completed", reply
    user = "orders-etl"
    custom = [g["policy_name"] for g in requested["plan"]["grants"] if g["policy_type"] == "Custom"]
    assert policies_of(root_clients, user) == {(custom[0], "Custom")}
    assert rg_attachments(root_clients, f"{user}@ramflow-demo.onaliyun.com") == {
        ("AliyunKafkaFullAccess", "System", resource_group)
    }
    assert tags_of(emulator, user) == {
        "managed-by": "ramflow",
        "ticket": "ITSM-1043",
        "owner": "frank@example.com",
        "team": "orders",
        "cost-center": "cc-4711",
    }
    assert emulator.account.ram.users[user].groups == {}
    assert emulator.account.ram.users[user].mfa_serial_number is None
    assert keys_of(root_clients, user) == [reply["credential"]["access_key_id"]]
    with pytest.raises(TeaException) as info:
        root_clients.ram.get_login_profile(ram_models.GetLoginProfileRequest(user_name=user))
    assert info.value.code == "EntityNotExist.User.LoginProfile"
    secret = open_sealed(private, reply["credential"]["sealed_secret"])
    own = CloudClients(root_clients.settings, CloudCredentials(reply["credential"]["access_key_id"], secret))
    assert own.sts.get_caller_identity().body.arn.endswith(f":user/{user}")


def test_console_user_is_auto_approved_with_forced_reset_and_mfa(
    function_env, call, root_clients, emulator, delivery_keys, resource_group
) -> None:
    private, public = delivery_keys
    root_clients.ram.set_password_policy(
        ram_models.SetPasswordPolicyRequest(
            minimum_password_length=14,
            require_symbols=True,
            require_numbers=True,
            require_uppercase_characters=True,
            require_lowercase_characters=True,
        )
    )
    event = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        grants=[
            {"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}},
            {"policy": "AliyunKafkaReadOnlyAccess", "type": "System", "resource_group": resource_group},
        ],
    )
    reply = call("user-requested", event)
    assert reply["status"] == "completed", reply
    user = event["data"]["user"]["logon_name"]
    custom = next(a.split(" to ")[0].removeprefix("attached ") for a in reply["actions"] if " to " in a)
    assert custom.startswith("ramflow-kafka-instance-readonly-")
    assert policies_of(root_clients, user) == {(custom, "Custom")}
    assert rg_attachments(root_clients, f"{user}@ramflow-demo.onaliyun.com") == {
        ("AliyunKafkaReadOnlyAccess", "System", resource_group)
    }
    assert tags_of(emulator, user) == {
        "managed-by": "ramflow",
        "ticket": "ITSM-1042",
        "owner": "alice@example.com",
        "team": "payments",
    }
    assert emulator.account.ram.users[user].groups == {}
    assert emulator.account.ram.users[user].mfa_serial_number is None
    profile = root_clients.ram.get_login_profile(
        ram_models.GetLoginProfileRequest(user_name=user)
    ).body.login_profile
    assert profile.password_reset_required is True and profile.mfabind_required is True
    assert keys_of(root_clients, user) == []
    credential = reply["credential"]
    assert credential["logon_principal"] == f"{user}@ramflow-demo.onaliyun.com"
    password = open_sealed(private, credential["sealed_password"])
    assert satisfies(
        password,
        PasswordPolicy(
            minimum_length=14,
            require_symbols=True,
            require_numbers=True,
            require_uppercase=True,
            require_lowercase=True,
        ),
    )
    assert emulator.account.ram.users[user].login_profile.password == password


def test_second_ticket_adds_grants_without_a_second_key(
    function_env, call, root_clients, delivery_keys, resource_group
) -> None:
    _, public = delivery_keys
    call("user-requested", programmatic_request(public, resource_group))
    first = call("access-approved", approval("ITSM-1043"))
    more = programmatic_request(public, resource_group)
    more["data"].update(ticket_id="ITSM-2000", grants=[{"policy": "ReadOnlyAccess", "type": "System"}])
    assert call("user-requested", more)["status"] == "pending_approval"
    second = call("access-approved", approval("ITSM-2000"))
    assert second["status"] == "completed" and "credential" not in second
    assert ("ReadOnlyAccess", "System") in policies_of(root_clients, "orders-etl")
    assert keys_of(root_clients, "orders-etl") == [first["credential"]["access_key_id"]]


def test_concurrent_duplicates_make_one_user_one_key_one_reply(
    function_env, call, root_clients, emulator, delivery_keys, resource_group
) -> None:
    _, public = delivery_keys
    call("user-requested", programmatic_request(public, resource_group))
    event = approval("ITSM-1043")
    replies: list[dict] = []
    barrier = threading.Barrier(32)

    def deliver() -> None:
        barrier.wait()
        try:
            replies.append(call("access-approved", event))
        except FlowFailed as busy:  # another delivery holds the lease: raised, so FC delivers it again
            replies.append(busy.result.to_json())

    threads = [threading.Thread(target=deliver) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 32
    completed = [r for r in replies if r["status"] == "completed"]
    assert completed and all(r["status"] in {"completed", "in_progress"} for r in replies)
    assert len({json.dumps(r, sort_keys=True) for r in completed}) == 1  # one stored reply
    assert emulator.recorder.count()["CreateUser"] == 1
    assert emulator.recorder.count()["CreateAccessKey"] == 1
    assert keys_of(root_clients, "orders-etl") == [completed[0]["credential"]["access_key_id"]]
    assert call("access-approved", event) == completed[0]  # a later duplicate gets the stored reply


def test_same_event_id_with_another_payload_is_rejected(
    function_env, call, delivery_keys, resource_group
) -> None:
    _, public = delivery_keys
    call("user-requested", programmatic_request(public, resource_group))
    event = approval("ITSM-1043")
    assert call("access-approved", event)["status"] == "completed"
    event["data"]["approvers"] = ["erin@example.com"]
    reply = call("access-approved", event)
    assert reply["status"] == "rejected"
    assert reply["errors"][0]["field"] == "id"


def test_a_returning_user_after_offboarding_starts_afresh(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    private, public = delivery_keys
    grants = [{"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}}]
    first = call(
        "user-requested", sample("user-requested-console.json", delivery_public_key=public, grants=grants)
    )
    assert first["status"] == "completed"
    gone = call(
        "user-offboarded", sample("user-offboarded.json", owner=None, user_name="alice.kafka", grace="P0D")
    )
    assert gone["status"] == "completed", gone
    assert "alice.kafka" not in emulator.account.ram.users
    again = sample(
        "user-requested-console.json", delivery_public_key=public, grants=grants, ticket_id="ITSM-3000"
    )
    second = call("user-requested", again)
    assert second["status"] == "completed", second
    assert emulator.account.ram.users["alice.kafka"].tags["ticket"] == "ITSM-3000"
    assert second["credential"]["sealed_password"] != first["credential"]["sealed_password"]
    password = open_sealed(private, second["credential"]["sealed_password"])
    assert emulator.account.ram.users["alice.kafka"].login_profile.password == password


def test_an_unrecorded_key_whose_deletion_reply_was_lost_does_not_fail_the_approval(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings
) -> None:
    """CreateAccessKey took effect but its reply was lost; the replay deletes that unrecorded key,
    and that DeleteAccessKey's reply is lost too: the runner's retry hears "no such key", which is
    what the replay wanted, not a failure that leaves the ticket approved and the user keyless."""
    from shared.models.results import AccessKeyReply
    from tests.flows.test_offboard_world import make_world

    world = make_world(emulator, root_clients, cloud_settings, max_attempts=2)
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateAccessKey"})
    with pytest.raises(FlowFailed):
        world.provision("gil.kafka", "gil@example.com", ticket="T-K1")
    emulator.faults.fail_nth_call(1, when="after", actions={"DeleteAccessKey"})

    result = world.provision("gil.kafka", "gil@example.com", ticket="T-K1")

    assert result.status == "completed"
    assert isinstance(result.credential, AccessKeyReply)
    user = world.runtime().store.ledger.get_user("gil.kafka")
    assert user is not None and user.credential is not None
    assert set(world.ram.users["gil.kafka"].access_keys) == {result.credential.access_key_id}
