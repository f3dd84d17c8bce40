"""The ledger's ticket indexes on each backend: a user's tickets and the expiring ones are found
without reading every ticket, pending tickets included, under concurrency, crashes and old stores."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.errors import StoreError
from shared.store import KeyValueBackend, Ledger
from shared.store.ledger import EXPIRING, TICKETS_OF
from tests.store.support import race
from tests.store.test_ledger import NOW, grant, ticket, user

LATE = NOW - timedelta(hours=1)


class Watched:
    """The backend, with the key prefixes every scan asked for."""

    def __init__(self, backend: KeyValueBackend) -> None:
        self.backend = backend
        self.scans: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def scan(self, prefix: str) -> Any:
        self.scans.append(prefix)
        return self.backend.scan(prefix)


@pytest.fixture
def watched(backend: KeyValueBackend) -> Watched:
    return Watched(backend)


@pytest.fixture
def ledger(watched: Watched) -> Ledger:
    return Ledger(watched, clock=lambda: NOW)


def active(ticket_id: str, user_name: str, policy: str, expires_at: datetime | None = LATE) -> Any:
    return grant(ticket_id, user_name, policy, status="active", expires_at=expires_at)


def history(ledger: Ledger) -> None:
    """alice: an approved ticket in her record, an older one of hers, and one still pending (she had
    no record when it came); bob: tickets of his own; many closed tickets of others."""
    for i in range(20):
        ledger.save_ticket(ticket(f"OLD-{i:02d}", user_name=f"gone.{i}", status="revoked"))
    ledger.save_ticket(ticket("T-1", grants=[active("T-1", "alice.kafka", "A")], status="completed"))
    ledger.save_ticket(ticket("T-2", grants=[grant("T-2", "alice.kafka", "B", status="revoked")]))
    ledger.save_ticket(ticket("T-9", grants=[grant("T-9", "alice.kafka", "P")]))
    ledger.save_user(user("alice.kafka", tickets=["T-1", "T-2"]))
    ledger.save_ticket(ticket("T-3", user_name="bob.kafka", grants=[active("T-3", "bob.kafka", "D", None)]))


def test_a_users_tickets_and_the_expired_grants_are_found_without_reading_every_ticket(
    ledger: Ledger, watched: Watched
) -> None:
    history(ledger)
    watched.scans.clear()

    assert [t.ticket_id for t in ledger.tickets_of_user("alice.kafka")] == ["T-1", "T-2", "T-9"]
    assert [(g.ticket_id, g.status) for g in ledger.grants_of_user("alice.kafka")] == [
        ("T-1", "active"),
        ("T-2", "revoked"),
        ("T-9", "planned"),
    ]
    assert [t.ticket_id for t in ledger.tickets_of_user("bob.kafka")] == ["T-3"]
    assert ledger.tickets_of_user("nobody") == []
    assert [g.policy_name for g in ledger.expired_grants(NOW)] == ["A"]
    assert watched.scans == []


def test_a_pending_ticket_is_found_before_the_user_has_a_record(ledger: Ledger) -> None:
    ledger.save_ticket(ticket("T-9", grants=[grant("T-9", "alice.kafka", "P")]))

    assert ledger.get_user("alice.kafka") is None
    assert [t.ticket_id for t in ledger.tickets_of_user("alice.kafka")] == ["T-9"]


def test_a_ticket_is_found_under_every_user_its_grants_name(ledger: Ledger) -> None:
    ledger.save_ticket(ticket("T-1"))
    ledger.update_ticket("T-1", lambda t: t.grants.append(grant("T-1", "bob.kafka", "B")))

    assert [g.policy_name for g in ledger.grants_of_user("bob.kafka")] == ["B"]
    assert [t.ticket_id for t in ledger.tickets_of_user("alice.kafka")] == ["T-1"]


def test_a_ticket_the_user_record_lists_is_found_even_if_no_index_names_it(
    ledger: Ledger, backend: KeyValueBackend
) -> None:
    ledger.save_ticket(ticket("T-1"))  # the store is indexed from here on
    unindexed = ticket("T-7", grants=[grant("T-7", "alice.kafka", "A")])
    assert backend.put_if_absent("ticket/T-7", unindexed.model_dump(mode="json"))
    ledger.save_user(user("alice.kafka", tickets=["T-7"]))

    assert [t.ticket_id for t in ledger.tickets_of_user("alice.kafka")] == ["T-1", "T-7"]


def test_a_store_written_before_the_indexes_is_indexed_by_its_first_ticket_write(
    backend: KeyValueBackend,
) -> None:
    for old in [
        ticket("OLD-1", user_name="carol.ops", grants=[grant("OLD-1", "carol.ops", "P")]),
        ticket("OLD-2", user_name="dave.ops", grants=[active("OLD-2", "dave.ops", "A")]),
    ]:
        assert backend.put_if_absent(f"ticket/{old.ticket_id}", old.model_dump(mode="json"))
    watched = Watched(backend)
    ledger = Ledger(watched, clock=lambda: NOW)

    # Until a ticket is written, lookups read every ticket, as before, and write nothing
    assert [t.ticket_id for t in ledger.tickets_of_user("carol.ops")] == ["OLD-1"]
    assert [g.grant_id for g in ledger.expired_grants(NOW)] == [grant("OLD-2", "dave.ops", "A").grant_id]
    assert backend.get(TICKETS_OF + "carol.ops") is None

    ledger.save_ticket(ticket("T-1", user_name="erin.ops"))
    watched.scans.clear()
    fresh = Ledger(watched, clock=lambda: NOW)

    assert [t.ticket_id for t in fresh.tickets_of_user("carol.ops")] == ["OLD-1"]
    assert [t.ticket_id for t in fresh.tickets_of_user("erin.ops")] == ["T-1"]
    assert [g.policy_name for g in fresh.expired_grants(NOW)] == ["A"]
    assert watched.scans == []


def test_32_tickets_of_one_user_recorded_and_activated_concurrently_are_all_indexed(ledger: Ledger) -> None:
    ledger.save_ticket(ticket("T-0"))

    def record_and_activate(i: int) -> None:
        ledger.save_ticket(ticket(f"T-{i + 1:02d}", grants=[grant(f"T-{i + 1:02d}", "alice.kafka", f"P{i}")]))

        def activate(t: Any) -> None:
            for g in t.grants:
                g.status, g.expires_at = "active", LATE

        ledger.update_ticket(f"T-{i + 1:02d}", activate)

    race(record_and_activate)

    assert len(ledger.tickets_of_user("alice.kafka")) == 33
    assert sorted(g.policy_name for g in ledger.expired_grants(NOW)) == sorted(f"P{i}" for i in range(32))


def test_a_ticket_leaves_the_expiring_index_when_no_grant_of_it_can_expire(
    ledger: Ledger, backend: KeyValueBackend
) -> None:
    ledger.save_ticket(ticket("T-1", grants=[active("T-1", "alice.kafka", "A")]))
    ledger.save_ticket(ticket("T-2", grants=[active("T-2", "alice.kafka", "B")]))

    def revoke(t: Any) -> None:
        for g in t.grants:
            g.status = "revoked"

    ledger.update_ticket("T-1", revoke)

    index = backend.get(EXPIRING)
    assert index is not None and [e["ticket_id"] for e in index.value["tickets"]] == ["T-2"]
    ledger.update_ticket("T-2", revoke)
    assert backend.get(EXPIRING) is None
    assert ledger.expired_grants(NOW) == []


def test_any_ticket_id_can_be_indexed(ledger: Ledger) -> None:
    """Ticket ids come from the ITSM: one that reads like a secret's field name is still an id."""
    ledger.save_ticket(ticket("ITSM-token-reset", grants=[active("ITSM-token-reset", "alice.kafka", "A")]))

    assert [t.ticket_id for t in ledger.tickets_of_user("alice.kafka")] == ["ITSM-token-reset"]
    assert [g.ticket_id for g in ledger.expired_grants(NOW)] == ["ITSM-token-reset"]


def test_ending_a_ticket_while_another_writer_starts_it_again_keeps_it_for_the_sweep(
    backend: KeyValueBackend,
) -> None:
    """The end is written, then, before its writer updates the index, a second writer reads the
    ended ticket, indexes it and writes it active again: the index must still name it."""
    armed = threading.Event()
    restart_waiting, go = threading.Event(), threading.Event()
    ending = threading.get_ident()
    restarts: list[threading.Thread] = []

    class Interleaved:
        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def put_if_version(
            self, key: str, value: Any, expected_version: int, ttl: float | None = None
        ) -> bool:
            mine = threading.get_ident() == ending
            if armed.is_set() and key == "ticket/T-1" and not mine:
                restart_waiting.set()
                assert go.wait(30)
            written = backend.put_if_version(key, value, expected_version, ttl)
            if armed.is_set() and key == "ticket/T-1" and mine and written and not restarts:
                restarts.append(threading.Thread(target=ledger.update_ticket, args=("T-1", start)))
                restarts[0].start()
                assert restart_waiting.wait(30)
            return written

    def end(t: Any) -> None:
        t.grants[0].status = "revoked"

    def start(t: Any) -> None:
        t.grants[0].status, t.grants[0].expires_at = "active", NOW - timedelta(minutes=1)

    ledger = Ledger(Interleaved(), clock=lambda: NOW)
    ledger.save_ticket(ticket("T-1", grants=[active("T-1", "alice.kafka", "A")]))
    armed.set()

    ledger.update_ticket("T-1", end)
    go.set()
    restarts[0].join(30)

    stored = ledger.get_ticket("T-1")
    assert stored is not None and stored.grants[0].status == "active"
    assert [g.policy_name for g in ledger.expired_grants(NOW)] == ["A"]


def test_the_indexes_are_written_before_the_ticket(backend: KeyValueBackend) -> None:
    """A crash between the writes leaves an index naming a ticket too many, never one too few."""

    class CrashOnTicketWrite:
        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def put_if_absent(self, key: str, value: Any, ttl_seconds: float | None = None) -> bool:
            if key.startswith("ticket/"):
                raise StoreError("simulated crash")
            return backend.put_if_absent(key, value, ttl_seconds)

    with pytest.raises(StoreError, match="simulated crash"):
        Ledger(CrashOnTicketWrite()).save_ticket(ticket("T-1", grants=[active("T-1", "alice.kafka", "A")]))

    named = backend.get(TICKETS_OF + "alice.kafka")
    expiring = backend.get(EXPIRING)
    assert named is not None and named.value["tickets"] == ["T-1"]
    assert expiring is not None and [e["ticket_id"] for e in expiring.value["tickets"]] == ["T-1"]
    ledger = Ledger(backend, clock=lambda: NOW)
    assert ledger.tickets_of_user("alice.kafka") == [] and ledger.expired_grants(NOW) == []
