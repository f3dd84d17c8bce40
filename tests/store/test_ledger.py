"""The ledger on each backend: typed round trips, CAS updates under contention, indexes, schedules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.errors import RecordNotFound, StoreError
from shared.store import (
    AccessKeyRecord,
    GrantRecord,
    Intent,
    KeyValueBackend,
    Ledger,
    LoginProfileRecord,
    TicketRecord,
    UserRecord,
)
from tests.store.support import race

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
NOW = datetime(2025, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def ledger(backend: KeyValueBackend) -> Ledger:
    return Ledger(backend, clock=lambda: NOW)


def ticket(ticket_id: str = "ITSM-1042", user_name: str = "alice.kafka", **changes: object) -> TicketRecord:
    fields: dict[str, object] = {
        "ticket_id": ticket_id,
        "requester": "carol@example.com",
        "user_name": user_name,
        "owner": "alice@example.com",
        "access_mode": "console",
        "request": {"ticket_id": ticket_id, "grants": [{"policy": "AliyunKafkaReadOnlyAccess"}]},
        "created_at": T0,
        "updated_at": T0,
    }
    return TicketRecord.model_validate(fields | changes)


def grant(ticket_id: str, user_name: str, policy: str, **changes: object) -> GrantRecord:
    return GrantRecord.plan(
        ticket_id=ticket_id, user_name=user_name, policy_name=policy, policy_type="System"
    ).model_copy(update=changes)


def user(user_name: str = "alice.kafka", owner: str = "alice@example.com", **changes: object) -> UserRecord:
    fields: dict[str, object] = {"user_name": user_name, "owner": owner, "access_mode": "console"}
    return UserRecord.model_validate(fields | changes)


# Tickets


def test_a_ticket_round_trips_and_is_stamped(ledger: Ledger) -> None:
    original = ticket(
        approvers=["dave@example.com"],
        break_glass=True,
        expires_at=T0 + timedelta(days=30),
        grants=[
            GrantRecord.plan(
                ticket_id="ITSM-1042",
                user_name="alice.kafka",
                policy_name="AliyunKafkaReadOnlyAccess",
                policy_type="System",
                resource_group_id="rg-aek2xl5qw",
                expires_at=T0 + timedelta(days=30),
            )
        ],
    )

    saved = ledger.save_ticket(original)

    assert saved == original.model_copy(update={"updated_at": NOW})
    assert ledger.get_ticket("ITSM-1042") == saved
    assert original.updated_at == T0, "the caller's object is left alone"
    assert ledger.get_ticket("ITSM-0000") is None


def test_update_ticket_in_place_or_by_returning_a_record(ledger: Ledger) -> None:
    ledger.save_ticket(ticket())

    def approve(t: TicketRecord) -> None:
        t.status = "approved"
        t.approvers.append("dave@example.com")

    ledger.update_ticket("ITSM-1042", approve)
    updated = ledger.update_ticket("ITSM-1042", lambda t: t.model_copy(update={"break_glass": True}))

    stored = ledger.get_ticket("ITSM-1042")
    assert stored == updated
    assert stored is not None
    assert (stored.status, stored.approvers, stored.break_glass) == ("approved", ["dave@example.com"], True)


def test_update_ticket_refuses_a_missing_ticket_or_a_new_id(ledger: Ledger) -> None:
    with pytest.raises(RecordNotFound, match="ITSM-404"):
        ledger.update_ticket("ITSM-404", lambda t: None)
    ledger.save_ticket(ticket())
    before = ledger.get_ticket("ITSM-1042")

    with pytest.raises(StoreError, match="may not change"):
        ledger.update_ticket("ITSM-1042", lambda t: t.model_copy(update={"ticket_id": "ITSM-9"}))
    with pytest.raises(ValidationError):
        ledger.update_ticket("ITSM-1042", lambda t: setattr(t, "status", "bogus"))
    with pytest.raises(ValidationError):
        ledger.update_ticket("ITSM-1042", lambda t: t.model_copy(update={"access_mode": "both"}))

    assert ledger.get_ticket("ITSM-1042") == before
    assert ledger.get_ticket("ITSM-9") is None


def test_32_concurrent_ticket_updates_all_land(ledger: Ledger) -> None:
    ledger.save_ticket(ticket())

    def add_grant(i: int) -> None:
        ledger.update_ticket(
            "ITSM-1042", lambda t: t.grants.append(grant("ITSM-1042", "alice.kafka", f"Policy{i}"))
        )

    race(add_grant)

    stored = ledger.get_ticket("ITSM-1042")
    assert stored is not None
    assert sorted(g.policy_name for g in stored.grants) == sorted(f"Policy{i}" for i in range(32))


def test_grants_of_user_span_tickets(ledger: Ledger) -> None:
    ledger.save_ticket(
        ticket("T-1", grants=[grant("T-1", "alice.kafka", "A"), grant("T-1", "bob.kafka", "B")])
    )
    ledger.save_ticket(ticket("T-2", grants=[grant("T-2", "alice.kafka", "C", status="revoked")]))
    ledger.save_ticket(ticket("T-3", user_name="bob.kafka", grants=[grant("T-3", "bob.kafka", "D")]))

    grants = ledger.grants_of_user("alice.kafka")

    assert [(g.ticket_id, g.policy_name, g.status) for g in grants] == [
        ("T-1", "A", "planned"),
        ("T-2", "C", "revoked"),
    ]
    assert ledger.grants_of_user("nobody") == []


def test_expired_grants_are_those_active_and_past_due(ledger: Ledger) -> None:
    ledger.save_ticket(
        ticket(
            "T-1",
            grants=[
                grant("T-1", "alice.kafka", "Late", status="active", expires_at=NOW - timedelta(hours=1)),
                grant("T-1", "alice.kafka", "Revoked", status="revoked", expires_at=NOW - timedelta(days=2)),
                grant("T-1", "alice.kafka", "Forever", status="active"),
                grant("T-1", "alice.kafka", "Future", status="active", expires_at=NOW + timedelta(seconds=1)),
            ],
        )
    )
    ledger.save_ticket(
        ticket(
            "T-2",
            grants=[
                grant("T-2", "alice.kafka", "Earliest", status="active", expires_at=NOW - timedelta(days=1))
            ],
        )
    )
    ledger.save_ticket(  # still waiting for approval: nothing of it is in RAM, so nothing expires
        ticket(
            "T-3",
            grants=[
                grant("T-3", "alice.kafka", "Pending", status="planned", expires_at=NOW - timedelta(days=2))
            ],
        )
    )

    assert [g.policy_name for g in ledger.expired_grants(NOW)] == ["Earliest", "Late"]


def test_all_tickets(ledger: Ledger) -> None:
    for ticket_id in ["T-2", "T-1", "T-3"]:
        ledger.save_ticket(ticket(ticket_id))

    assert [t.ticket_id for t in ledger.all_tickets()] == ["T-1", "T-2", "T-3"]


def test_grant_ids_are_deterministic_and_scopes_consistent() -> None:
    first = GrantRecord.plan(
        ticket_id="T-1", user_name="u", policy_name="P", policy_type="Custom", resource_group_id="rg-1"
    )
    again = GrantRecord.plan(
        ticket_id="T-1", user_name="u", policy_name="P", policy_type="Custom", resource_group_id="rg-1"
    )
    account_wide = GrantRecord.plan(ticket_id="T-1", user_name="u", policy_name="P", policy_type="Custom")

    assert first.grant_id == again.grant_id
    assert first.scope == "resource_group"
    assert account_wide.scope == "account"
    assert account_wide.grant_id != first.grant_id
    with pytest.raises(ValidationError, match="resource_group_id"):
        GrantRecord.model_validate(first.model_dump() | {"scope": "account"})


def test_times_must_be_timezone_aware_and_become_utc() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        ticket(created_at=datetime(2025, 3, 1, 9, 0))
    shanghai = timezone(timedelta(hours=8))

    stored = ticket(expires_at=datetime(2025, 3, 1, 17, 0, tzinfo=shanghai))

    assert stored.expires_at == T0
    assert stored.expires_at is not None
    assert stored.expires_at.utcoffset() == timedelta(0)


# Users and owners


def test_a_user_round_trips_with_a_sealed_credential(ledger: Ledger, backend: KeyValueBackend) -> None:
    original = user(
        access_mode="programmatic",
        tickets=["ITSM-1042"],
        credential=AccessKeyRecord(
            access_key_id="LTAI5tExample", sealed_secret="c2VhbGVkLWJveA==", ticket_id="ITSM-1042"
        ),
    )

    saved = ledger.save_user(original)

    assert ledger.get_user("alice.kafka") == saved
    assert saved.credential == original.credential
    raw = backend.get("user/alice.kafka")
    assert raw is not None
    assert raw.value["credential"] == {
        "kind": "access_key",
        "access_key_id": "LTAI5tExample",
        "sealed_secret": "c2VhbGVkLWJveA==",
        "ticket_id": "ITSM-1042",
        "delivery_public_key": None,
        "recipient": None,
    }
    assert ledger.get_user("nobody") is None


def test_credentials_admit_only_sealed_fields() -> None:
    with pytest.raises(ValidationError):
        AccessKeyRecord.model_validate({"access_key_id": "LTAI5t", "access_key_secret": "plain"})
    with pytest.raises(ValidationError):
        LoginProfileRecord.model_validate({"password": "plain"})
    with pytest.raises(ValidationError):
        user(credential={"kind": "login_profile", "sealed_password": "c2Vhbg==", "password": "plain"})

    console = user(credential={"kind": "login_profile", "sealed_password": "c2Vhbg=="})
    assert isinstance(console.credential, LoginProfileRecord)


def test_users_of_owner_and_all_users(ledger: Ledger) -> None:
    ledger.save_user(user("alice.kafka", "alice@example.com"))
    ledger.save_user(user("alice.ops", "Alice@Example.com"))
    ledger.save_user(user("bob.kafka", "bob@example.com"))

    assert ledger.users_of_owner("alice@example.com") == ["alice.kafka", "alice.ops"]
    assert ledger.users_of_owner("ALICE@example.com ") == ["alice.kafka", "alice.ops"]
    assert ledger.users_of_owner("bob@example.com") == ["bob.kafka"]
    assert ledger.users_of_owner("nobody@example.com") == []
    assert [u.user_name for u in ledger.all_users()] == ["alice.kafka", "alice.ops", "bob.kafka"]


def test_32_users_indexed_concurrently_under_one_owner(ledger: Ledger) -> None:
    race(lambda i: ledger.save_user(user(f"svc-{i:02d}", "team@example.com")))

    assert ledger.users_of_owner("team@example.com") == [f"svc-{i:02d}" for i in range(32)]


def test_update_user_moves_it_between_owners(ledger: Ledger) -> None:
    ledger.save_user(user("alice.kafka", "alice@example.com"))

    def hand_over(u: UserRecord) -> None:
        u.owner = "dave@example.com"
        u.status = "disabled"

    updated = ledger.update_user("alice.kafka", hand_over)

    assert (updated.owner, updated.status, updated.updated_at) == ("dave@example.com", "disabled", NOW)
    assert ledger.users_of_owner("alice@example.com") == []
    assert ledger.users_of_owner("dave@example.com") == ["alice.kafka"]
    with pytest.raises(RecordNotFound):
        ledger.update_user("nobody", lambda u: None)
    with pytest.raises(StoreError, match="may not change"):
        ledger.update_user("alice.kafka", lambda u: u.model_copy(update={"user_name": "mallory"}))


def test_the_owner_index_is_written_before_the_user(backend: KeyValueBackend) -> None:
    """A crash between the two writes must not hide the user from offboarding."""

    class CrashOnUserWrite:
        def __getattr__(self, name: str) -> object:
            return getattr(backend, name)

        def put_if_absent(self, key: str, value: dict, ttl_seconds: float | None = None) -> bool:
            if key.startswith("user/"):
                raise StoreError("simulated crash")
            return backend.put_if_absent(key, value, ttl_seconds)

    with pytest.raises(StoreError, match="simulated crash"):
        Ledger(CrashOnUserWrite()).save_user(user("alice.kafka", "alice@example.com"))  # type: ignore[arg-type]

    ledger = Ledger(backend)
    assert ledger.get_user("alice.kafka") is None
    assert ledger.users_of_owner("alice@example.com") == ["alice.kafka"]


# Intents


def test_intents_are_put_read_and_deleted(ledger: Ledger) -> None:
    intent = Intent(
        key="access_key/alice.kafka", ticket_id="ITSM-1042", known_key_ids=["LTAI5tOld"], created_at=T0
    )

    ledger.put_intent(intent)
    assert ledger.get_intent("access_key/alice.kafka") == intent

    done = intent.model_copy(
        update={"state": "done", "result": {"access_key_id": "LTAI5tNew", "sealed_secret": "c2Vh"}}
    )
    ledger.put_intent(done)
    assert ledger.get_intent("access_key/alice.kafka") == done

    assert ledger.delete_intent("access_key/alice.kafka") is True
    assert ledger.get_intent("access_key/alice.kafka") is None
    assert ledger.delete_intent("access_key/alice.kafka") is False


def test_an_intent_result_with_a_plaintext_secret_is_refused(ledger: Ledger) -> None:
    intent = Intent(key="password/alice.kafka", ticket_id="ITSM-1042", result={"password": "Plain-Text-1!"})

    with pytest.raises(StoreError) as raised:
        ledger.put_intent(intent)

    assert "Plain-Text-1!" not in str(raised.value)
    assert ledger.get_intent("password/alice.kafka") is None


# Deletions


def test_deletions_are_scheduled_found_when_due_and_cleared(ledger: Ledger) -> None:
    assert ledger.schedule_deletion("alice.kafka", NOW + timedelta(days=7)) == NOW + timedelta(days=7)
    assert ledger.schedule_deletion("alice.kafka", NOW) == NOW, "an earlier date replaces a later one"
    assert ledger.schedule_deletion("alice.kafka", NOW + timedelta(days=30)) == NOW, "never postponed"
    ledger.schedule_deletion("bob.kafka", NOW - timedelta(hours=1))
    ledger.schedule_deletion("carol.kafka", NOW + timedelta(seconds=1))

    due = ledger.due_deletions(NOW)

    assert [(d.user_name, d.due_at) for d in due] == [
        ("bob.kafka", NOW - timedelta(hours=1)),
        ("alice.kafka", NOW),
    ]
    assert ledger.clear_deletion("bob.kafka") is True
    assert ledger.clear_deletion("bob.kafka") is False
    assert [d.user_name for d in ledger.due_deletions(NOW + timedelta(days=1))] == [
        "alice.kafka",
        "carol.kafka",
    ]
