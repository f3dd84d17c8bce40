"""Provisioning when tickets, people and hand-made objects collide on one user name."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ram20150501 import models as ram_models

from shared.errors import FlowFailed
from shared.policy.templates import canonical_json
from shared.sealing import open_sealed
from shared.store import StateStore
from tests.flows.conftest import sample

FULL_KAFKA = [{"policy": "AliyunKafkaFullAccess", "type": "System"}]
READONLY_TEMPLATE = [
    {"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}}
]


def pending(call, public: str, ticket: str, **data) -> None:
    event = sample("user-requested-console.json", delivery_public_key=public, ticket_id=ticket, **data)
    assert call("user-requested", event)["status"] == "pending_approval"


def approve(call, ticket: str):
    return call(
        "access-approved", sample("access-approved.json", ticket_id=ticket, approvers=["dave@example.com"])
    )


def test_a_second_pending_ticket_for_another_owner_is_refused_at_approval(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    pending(call, public, "T-A", grants=FULL_KAFKA)
    other = {"logon_name": "alice.kafka", "owner": "mallory@example.com", "email": "mallory@example.com"}
    pending(
        call,
        public,
        "T-B",
        grants=[{"policy": "ReadOnlyAccess", "type": "System"}],
        user=other,
        requester="mallory@example.com",
    )
    assert approve(call, "T-A")["status"] == "completed"
    refused = approve(call, "T-B")
    assert refused["status"] == "rejected"
    assert refused["errors"][0]["field"] == "data.user.owner"
    attached = emulator.account.ram.users["alice.kafka"].policies
    assert {name for _, name, _ in attached} == {"AliyunKafkaFullAccess"}


def test_a_second_pending_ticket_with_the_other_access_mode_is_refused_at_approval(
    function_env, call, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    pending(call, public, "T-A", grants=FULL_KAFKA)
    pending(call, public, "T-B", grants=FULL_KAFKA, access_mode="programmatic")
    assert approve(call, "T-A")["status"] == "completed"
    refused = approve(call, "T-B")
    assert refused["status"] == "rejected" and refused["errors"][0]["field"] == "data.access_mode"
    assert emulator.account.ram.users["alice.kafka"].access_keys == {}


def test_a_hand_made_user_that_reuses_a_deleted_name_is_left_alone(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    event = sample("user-requested-console.json", delivery_public_key=public, grants=READONLY_TEMPLATE)
    assert call("user-requested", event)["status"] == "completed"
    gone = call("user-offboarded", sample("user-offboarded.json", owner=None, user_name="alice.kafka"))
    assert gone["status"] == "completed"
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="alice.kafka"))
    root_clients.ram.create_login_profile(
        ram_models.CreateLoginProfileRequest(user_name="alice.kafka", password="Hand-Made-Passw0rd!")
    )
    again = sample(
        "user-requested-console.json",
        delivery_public_key=public,
        grants=READONLY_TEMPLATE,
        ticket_id="ITSM-3000",
    )
    reply = call("user-requested", again)
    assert reply["status"] == "rejected" and reply["needs_human"] == ["alice.kafka"]
    user = emulator.account.ram.users["alice.kafka"]
    assert user.tags == {} and user.policies == {}
    assert user.login_profile.password == "Hand-Made-Passw0rd!"


def test_an_auto_approved_ticket_that_failed_halfway_finishes_on_replay(
    function_env, call, emulator, delivery_keys
) -> None:
    private, public = delivery_keys
    event = sample("user-requested-console.json", delivery_public_key=public, grants=READONLY_TEMPLATE)
    emulator.faults.fail_nth_call(1, when="after", actions={"CreateLoginProfile"})
    with pytest.raises(FlowFailed):
        call("user-requested", event)
    reply = call("user-requested", event)
    assert reply["status"] == "completed", reply
    password = open_sealed(private, reply["credential"]["sealed_password"])
    assert emulator.account.ram.users["alice.kafka"].login_profile.password == password


def test_a_busy_user_makes_the_event_retry_instead_of_dropping_it(
    function_env, call, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    pending(call, public, "T-A", grants=FULL_KAFKA)
    store = StateStore.from_url(f"sqlite:///{function_env}/state.db")
    store.idempotency.begin("lock:user:alice.kafka", "user-lock", "someone-else", 4_102_444_800.0)
    with pytest.raises(FlowFailed) as info:
        approve(call, "T-A")
    assert info.value.result.status == "in_progress"
    assert store.ledger.get_ticket("T-A").status == "pending_approval"
    store.idempotency.release("lock:user:alice.kafka", "someone-else")
    assert approve(call, "T-A")["status"] == "completed"  # the redelivery runs: nothing was dropped


def test_access_comes_back_with_a_new_ticket_after_every_grant_was_revoked(
    function_env, call, root_clients, emulator, delivery_keys, resource_group
) -> None:
    _, public = delivery_keys
    event = sample("user-requested-programmatic.json", delivery_public_key=public, grants=READONLY_TEMPLATE)
    call("user-requested", event)
    first = call(
        "access-approved", sample("access-approved-programmatic.json", approvers=["dave@example.com"])
    )
    key_id = first["credential"]["access_key_id"]
    revoked = call(
        "access-revoked", sample("access-revoked.json", ticket_id="ITSM-1043", reason="moved team")
    )
    assert revoked["status"] == "completed", revoked
    assert emulator.account.ram.users["orders-etl"].access_keys[key_id].status == "Inactive"
    again = sample(
        "user-requested-programmatic.json",
        delivery_public_key=public,
        ticket_id="ITSM-4000",
        grants=[{"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}],
    )
    reply = call("user-requested", again)
    assert reply["status"] == "completed", reply
    assert emulator.account.ram.users["orders-etl"].access_keys[key_id].status == "Active"
    assert list(emulator.account.ram.users["orders-etl"].access_keys) == [key_id]


def test_a_squatted_content_name_is_never_attached(
    function_env, call, root_clients, emulator, delivery_keys
) -> None:
    _, public = delivery_keys
    event = sample("user-requested-console.json", delivery_public_key=public, grants=READONLY_TEMPLATE)
    planned = call(
        "user-requested",
        {
            **event,
            "id": event["id"] + "-plan",
            "data": {**event["data"], "grants": READONLY_TEMPLATE + FULL_KAFKA},
        },
    )
    name = planned["plan"]["grants"][0]["policy_name"]
    hostile = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    root_clients.ram.create_policy(
        ram_models.CreatePolicyRequest(policy_name=name, policy_document=canonical_json(hostile))
    )
    reply = approve(call, "ITSM-1042")
    assert reply["status"] == "rejected" and reply["needs_human"] == [name]
    # found by the reads before the first write: nothing was created for the ticket
    assert "alice.kafka" not in emulator.account.ram.users
    assert json.loads(json.dumps(reply))["errors"][0]["field"] == "data.grants"
