"""The ticket ledger: tickets and their grants, managed users, owner → users, intents, deletions.

Documents live under `ticket/<id>`, `user/<name>`, `owner/<owner>`, `intent/<key>`,
`deletion/<user>`, `leaver/<owner>` (an owner who has left), `early-approval/<ticket>` (an
approval that arrived before its request) and `early-revocation/<ticket>` (a revocation that did). Every change is a read-modify-write under compare-and-set, retried while other
writers win, so concurrent invocations never lose each other's updates.

Tickets are never purged, so nothing on a flow's path reads them all. Two indexes, kept with the
tickets, find the ones a flow needs: `tickets-of/<user>` (every ticket naming the user, a pending
one too, before the user has a record) and `index/expiring-tickets` (tickets holding an active
grant with an expiry, for reconcile's sweep). Either may name a ticket too many after a crash,
never one too few. `tickets-of-owner/<owner>` finds an owner's tickets (a leaver's pending ones
are closed). A store written before the indexes existed gets them on its first ticket write
(one pass over the tickets, then `index/tickets` says it is done); until then lookups read every
ticket, as they did.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from shared.errors import RecordNotFound, StoreError
from shared.store.base import Document, JsonObject, KeyValueBackend
from shared.store.records import (
    EarlyApproval,
    EarlyRevocation,
    GrantRecord,
    Intent,
    KeyFindingsRecord,
    LeaverRecord,
    RotationRecord,
    ScheduledDeletion,
    TicketRecord,
    UserRecord,
    utc_now,
)

__all__ = ["Ledger"]

TICKETS, USERS, OWNERS, INTENTS, DELETIONS = "ticket/", "user/", "owner/", "intent/", "deletion/"
TICKETS_OF = "tickets-of/"
TICKETS_OF_OWNER = "tickets-of-owner/"
LEAVERS, EARLY_APPROVALS, EARLY_REVOCATIONS = "leaver/", "early-approval/", "early-revocation/"
ROTATIONS = "rotation/"
KEY_FINDINGS = "key-findings/"
EXPIRING = "index/expiring-tickets"
INDEXED = "index/tickets"

M = TypeVar("M", bound=BaseModel)
Change = Callable[[JsonObject | None], JsonObject | None]


class Ledger:
    def __init__(
        self, backend: KeyValueBackend, *, clock: Callable[[], datetime] = utc_now, max_attempts: int = 64
    ) -> None:
        self.backend = backend
        self._clock = clock
        self._max_attempts = max_attempts
        self._indexed = False  # the store's tickets are indexed (seen once, it stays so)

    # Tickets

    def save_ticket(self, ticket: TicketRecord) -> TicketRecord:
        """Store the ticket as given (last writer wins); use update_ticket to change a stored one."""
        return self._put_ticket(ticket.ticket_id, lambda _: ticket)

    def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        return self._get(TICKETS + ticket_id, TicketRecord)

    def update_ticket(
        self, ticket_id: str, mutate: Callable[[TicketRecord], TicketRecord | None]
    ) -> TicketRecord:
        """Apply `mutate` to the stored ticket (change it in place or return a new one) and store
        the result; `mutate` runs again on fresh data whenever another writer got there first."""
        change = _existing(f"ticket {ticket_id!r}", mutate, lambda t: t.ticket_id == ticket_id)
        return self._put_ticket(ticket_id, change)

    def all_tickets(self) -> list[TicketRecord]:
        """Every ticket ever recorded: a full pass, which grows with all history."""
        return self._scan(TICKETS, TicketRecord)

    def tickets_of_user(self, user_name: str) -> list[TicketRecord]:
        """Every ticket that names the user (as its user or in a grant), whatever its status, by id:
        those of the user's record and those recorded before it, still pending."""
        if not self._tickets_indexed():
            return [t for t in self.all_tickets() if user_name in _names(t)]
        index = self.backend.get(TICKETS_OF + user_name)
        user = self.get_user(user_name)
        ids = set(index.value["tickets"] if index else []) | set(user.tickets if user else [])
        found = (self.get_ticket(ticket_id) for ticket_id in sorted(ids))
        return [t for t in found if t is not None and user_name in _names(t)]

    def tickets_of_users(self, names: Sequence[str]) -> list[TicketRecord]:
        """Every ticket naming any of these users, pending ones too (offboarding closes them), by id."""
        found = {t.ticket_id: t for name in sorted(set(names)) for t in self.tickets_of_user(name)}
        return [found[ticket_id] for ticket_id in sorted(found)]

    def mark_revoked(self, tickets: Sequence[TicketRecord], grant_ids: set[str]) -> None:
        """Grants revoked; a ticket none of whose grants is left becomes `revoked`."""
        for ticket in tickets:
            if not any(g.grant_id in grant_ids for g in ticket.grants):
                continue

            def change(t: TicketRecord) -> None:
                for grant in t.grants:
                    if grant.grant_id in grant_ids:
                        grant.status = "revoked"
                if t.grants and all(g.status == "revoked" for g in t.grants) and t.status != "rejected":
                    t.status = "revoked"

            self.update_ticket(ticket.ticket_id, change)

    def mark_users_revoked(self, tickets: Sequence[TicketRecord], users: set[str]) -> None:
        """Every grant of these users is gone from RAM: the ledger says so, ticket by ticket."""
        ids = {
            g.grant_id for t in tickets for g in t.grants if g.user_name in users and g.status != "revoked"
        }
        self.mark_revoked(tickets, ids)

    def grants_of_user(self, user_name: str) -> list[GrantRecord]:
        """Every grant any ticket made (or plans) for the user, whatever its status."""
        return [
            grant
            for ticket in self.tickets_of_user(user_name)
            for grant in ticket.grants
            if grant.user_name == user_name
        ]

    def expired_grants(self, now: datetime) -> list[GrantRecord]:
        """Active grants whose expiry is at or before `now`, soonest first. A planned grant is not
        in RAM yet (its ticket awaits approval, which computes the expiry afresh): nothing expires."""
        if self._tickets_indexed():
            found = (self.get_ticket(ticket_id) for ticket_id in sorted(self._expiring()))
            tickets = [t for t in found if t is not None]
        else:
            tickets = self.all_tickets()
        expired = [
            grant
            for ticket in tickets
            for grant in ticket.grants
            if grant.status == "active" and grant.expires_at is not None and grant.expires_at <= now
        ]
        return sorted(expired, key=lambda grant: grant.expires_at or now)

    # Users and owners

    def save_user(self, user: UserRecord) -> UserRecord:
        """Store the user as given (last writer wins) and index it under its owner."""
        return self._put_user(user.user_name, lambda _: user)

    def get_user(self, user_name: str) -> UserRecord | None:
        return self._get(USERS + user_name, UserRecord)

    def update_user(self, user_name: str, mutate: Callable[[UserRecord], UserRecord | None]) -> UserRecord:
        """Like update_ticket; moves the user between owner indexes if the owner changes."""
        return self._put_user(
            user_name, _existing(f"user {user_name!r}", mutate, lambda u: u.user_name == user_name)
        )

    def all_users(self) -> list[UserRecord]:
        return self._scan(USERS, UserRecord)

    def users_of_owner(self, owner: str) -> list[str]:
        """Names of the owner's users, sorted.

        Includes a name whose record a crash kept from being written (offboarding must not miss
        it); excludes one whose record names another owner now.
        """
        doc = self.backend.get(OWNERS + _owner_key(owner))
        names: list[str] = doc.value["users"] if doc else []
        return [
            name
            for name in names
            if (user := self.get_user(name)) is None or _owner_key(user.owner) == _owner_key(owner)
        ]

    def tickets_of_owner(self, owner: str) -> list[TicketRecord]:
        """Every ticket recorded for the owner (written since this index exists), by id."""
        index = self.backend.get(TICKETS_OF_OWNER + _owner_key(owner))
        found = (self.get_ticket(ticket_id) for ticket_id in (index.value["tickets"] if index else []))
        return [t for t in found if t is not None and _owner_key(t.owner) == _owner_key(owner)]

    # Leavers: a fact that outlives the offboarding event

    def record_leaver(
        self, owner: str, *, left_at: datetime, hr_event_id: str, source: str = ""
    ) -> LeaverRecord:
        """Record that the owner has left; an earlier record stays (the first HR event is the fact)."""
        leaver = LeaverRecord(
            owner=_owner_key(owner), left_at=left_at, hr_event_id=hr_event_id, source=source
        )
        return self._put(LEAVERS + _owner_key(owner), LeaverRecord, lambda current: current or leaver)

    def get_leaver(self, owner: str) -> LeaverRecord | None:
        return self._get(LEAVERS + _owner_key(owner), LeaverRecord)

    def clear_leaver(self, owner: str) -> bool:
        """A rehire: True if the owner was recorded as having left."""
        return self._delete(LEAVERS + _owner_key(owner))

    # Approvals that came before their request

    def keep_early_approval(self, approval: EarlyApproval) -> EarlyApproval:
        """Keep the first approval that arrived for the ticket (a redelivery changes nothing)."""
        return self._put(
            EARLY_APPROVALS + approval.ticket_id, EarlyApproval, lambda current: current or approval
        )

    def get_early_approval(self, ticket_id: str) -> EarlyApproval | None:
        return self._get(EARLY_APPROVALS + ticket_id, EarlyApproval)

    def drop_early_approval(self, ticket_id: str) -> bool:
        return self._delete(EARLY_APPROVALS + ticket_id)

    # Revocations that came before their request (kept for good: ticket ids are never reused)

    def keep_early_revocation(self, revocation: EarlyRevocation) -> EarlyRevocation:
        """Keep the first revocation that arrived for the ticket (a redelivery changes nothing)."""
        return self._put(
            EARLY_REVOCATIONS + revocation.ticket_id, EarlyRevocation, lambda current: current or revocation
        )

    def get_early_revocation(self, ticket_id: str) -> EarlyRevocation | None:
        return self._get(EARLY_REVOCATIONS + ticket_id, EarlyRevocation)

    # Intents

    def put_intent(self, intent: Intent) -> Intent:
        return self._put(INTENTS + intent.key, Intent, lambda _: intent)

    def get_intent(self, key: str) -> Intent | None:
        return self._get(INTENTS + key, Intent)

    def delete_intent(self, key: str) -> bool:
        """True if there was one."""
        return self._delete(INTENTS + key)

    # AccessKey rotations (one per user at a time; shared/flows/keys.py advances them)

    def get_rotation(self, user_name: str) -> RotationRecord | None:
        return self._get(ROTATIONS + user_name, RotationRecord)

    def put_rotation(self, rotation: RotationRecord) -> RotationRecord:
        return self._put(ROTATIONS + rotation.user_name, RotationRecord, lambda _: self._stamped(rotation))

    def update_rotation(
        self, user_name: str, mutate: Callable[[RotationRecord], RotationRecord | None]
    ) -> RotationRecord:
        change = _existing(f"rotation of {user_name!r}", mutate, lambda r: r.user_name == user_name)
        return self._put(ROTATIONS + user_name, RotationRecord, lambda r: self._stamped(change(r)))

    def all_rotations(self) -> list[RotationRecord]:
        return self._scan(ROTATIONS, RotationRecord)

    def put_key_findings(self, record: KeyFindingsRecord) -> KeyFindingsRecord:
        return self._put(KEY_FINDINGS + record.user_name, KeyFindingsRecord, lambda _: record)

    def get_key_findings(self, user_name: str) -> KeyFindingsRecord | None:
        return self._get(KEY_FINDINGS + user_name, KeyFindingsRecord)

    # Deletions

    def schedule_deletion(self, user_name: str, due_at: datetime) -> datetime:
        """Schedule the user's deletion and return when it is due: a deletion already scheduled
        earlier stays, so a later event never postpones one."""

        def earliest(current: ScheduledDeletion | None) -> ScheduledDeletion:
            if current is not None and current.due_at <= due_at:
                return current
            return ScheduledDeletion(user_name=user_name, due_at=due_at)

        return self._put(DELETIONS + user_name, ScheduledDeletion, earliest).due_at

    def due_deletions(self, now: datetime) -> list[ScheduledDeletion]:
        """Deletions due at or before `now`, soonest first."""
        due = [entry for entry in self._scan(DELETIONS, ScheduledDeletion) if entry.due_at <= now]
        return sorted(due, key=lambda entry: entry.due_at)

    def scheduled_deletion(self, user_name: str) -> ScheduledDeletion | None:
        return self._get(DELETIONS + user_name, ScheduledDeletion)

    def clear_deletion(self, user_name: str) -> bool:
        """True if one was scheduled."""
        return self._delete(DELETIONS + user_name)

    # Internals

    def _put_ticket(
        self, ticket_id: str, change: Callable[[TicketRecord | None], TicketRecord]
    ) -> TicketRecord:
        """Write a ticket, keeping both ticket indexes; each is written before the ticket.

        A write that makes the ticket expiring gives its entry a fresh stamp; one that ends it reads
        the stamp before writing and afterwards removes the entry only if the stamp is unchanged. A
        writer making it expiring again read the ended ticket, so stamped after the removal's read:
        the removal leaves the entry, or the stamp comes after the removal and names it again.
        """
        self._index_existing_tickets()
        ended: str | None = None

        def indexed(current: TicketRecord | None) -> TicketRecord:
            nonlocal ended
            named, was = (_names(current), _expiring(current)) if current else (set(), False)
            ticket = self._stamped(change(current))  # (an update may change `current` in place)
            for name in sorted(_names(ticket) - named):
                self._index_tickets_of(name, [ticket_id])
            if current is None or _owner_key(current.owner) != _owner_key(ticket.owner):
                self._index_tickets_of_owner(ticket.owner, [ticket_id])
            now = _expiring(ticket)
            stamps = self._expiring() if was or now else {}
            ended = stamps.get(ticket_id) if was and not now else None
            if now and (not was or ticket_id not in stamps):  # (not named: an old writer's ticket)
                self._stamp_expiring([ticket_id])
            return ticket

        ticket = self._put(TICKETS + ticket_id, TicketRecord, indexed)
        if ended is not None:
            self._unstamp_expiring(ticket_id, ended)
        return ticket

    def _index_tickets_of(self, user_name: str, ticket_ids: list[str]) -> None:
        def change(index: JsonObject | None) -> JsonObject:
            tickets = set(index["tickets"]) if index else set()
            return {"user_name": user_name, "tickets": sorted(tickets | set(ticket_ids))}

        self._write(TICKETS_OF + user_name, change)

    def _index_tickets_of_owner(self, owner: str, ticket_ids: list[str]) -> None:
        def change(index: JsonObject | None) -> JsonObject:
            tickets = set(index["tickets"]) if index else set()
            return {"owner": _owner_key(owner), "tickets": sorted(tickets | set(ticket_ids))}

        self._write(TICKETS_OF_OWNER + _owner_key(owner), change)

    def _expiring(self) -> dict[str, str]:
        """Ticket id → stamp of every ticket the expiring index names."""
        doc = self.backend.get(EXPIRING)
        return _stamps(doc.value if doc else None)

    def _stamp_expiring(self, ticket_ids: list[str]) -> None:
        """Name the tickets under a fresh stamp each: always a real write, which a removal notices."""

        def change(index: JsonObject | None) -> JsonObject:
            return _stamps_doc(_stamps(index) | {ticket_id: uuid.uuid4().hex for ticket_id in ticket_ids})

        self._write(EXPIRING, change)

    def _unstamp_expiring(self, ticket_id: str, stamp: str) -> None:
        def change(index: JsonObject | None) -> JsonObject | None:
            stamps = _stamps(index)
            if stamps.get(ticket_id) != stamp:
                return index  # stamped again since: the ticket may be expiring once more
            del stamps[ticket_id]
            return _stamps_doc(stamps) if stamps else None

        self._write(EXPIRING, change)

    def _tickets_indexed(self) -> bool:
        if not self._indexed:
            self._indexed = self.backend.get(INDEXED) is not None
        return self._indexed

    def _index_existing_tickets(self) -> None:
        """Once per store, before the first ticket write: index the tickets written without indexes.

        Another process may be doing the same: both only add to the indexes, so either may finish.
        """
        if self._tickets_indexed():
            return
        tickets = self.all_tickets()
        by_user: dict[str, list[str]] = {}
        for ticket in tickets:
            for name in _names(ticket):
                by_user.setdefault(name, []).append(ticket.ticket_id)
        for name, ticket_ids in sorted(by_user.items()):
            self._index_tickets_of(name, ticket_ids)
        by_owner: dict[str, list[str]] = {}
        for ticket in tickets:
            by_owner.setdefault(_owner_key(ticket.owner), []).append(ticket.ticket_id)
        for owner, ticket_ids in sorted(by_owner.items()):
            self._index_tickets_of_owner(owner, ticket_ids)
        expiring = [t.ticket_id for t in tickets if _expiring(t)]
        if expiring:
            self._stamp_expiring(expiring)
        self.backend.put_if_absent(INDEXED, {"indexed_at": self._clock().isoformat()})
        self._indexed = True

    def _put_user(self, user_name: str, change: Callable[[UserRecord | None], UserRecord]) -> UserRecord:
        previous_owner: str | None = None

        def indexed(current: UserRecord | None) -> UserRecord:
            nonlocal previous_owner
            previous_owner = current.owner if current else None
            user = self._stamped(change(current))
            # Index first: after a crash the index may name a user too many (users_of_owner checks),
            # never one too few, which would hide the user from offboarding.
            self._index_owner(user.owner, user_name, present=True)
            return user

        user = self._put(USERS + user_name, UserRecord, indexed)
        if previous_owner is not None and _owner_key(previous_owner) != _owner_key(user.owner):
            self._index_owner(previous_owner, user_name, present=False)
        return user

    def _index_owner(self, owner: str, user_name: str, *, present: bool) -> None:
        key = _owner_key(owner)

        def change(index: JsonObject | None) -> JsonObject | None:
            users = set(index["users"]) if index else set()
            users = users | {user_name} if present else users - {user_name}
            return {"owner": key, "users": sorted(users)} if users else None

        self._write(OWNERS + key, change)

    def _stamped(self, record: M) -> M:
        return record.model_copy(update={"updated_at": self._clock()})

    def _get(self, key: str, model: type[M]) -> M | None:
        doc = self.backend.get(key)
        return None if doc is None else model.model_validate(doc.value)

    def _scan(self, prefix: str, model: type[M]) -> list[M]:
        return [model.model_validate(doc.value) for _, doc in self.backend.scan(prefix)]

    def _put(self, key: str, model: type[M], change: Callable[[M | None], M]) -> M:
        def change_json(value: JsonObject | None) -> JsonObject:
            stored = change(None if value is None else model.model_validate(value)).model_dump(mode="json")
            model.model_validate(
                stored
            )  # model_copy(update=...) skips validation: never store what cannot load
            return stored

        _, stored = self._write(key, change_json)
        return model.model_validate(stored)

    def _delete(self, key: str) -> bool:
        before, _ = self._write(key, lambda _: None)
        return before is not None

    def _write(self, key: str, change: Change) -> tuple[JsonObject | None, JsonObject | None]:
        """Replace the document with `change(document)` (None: absent) under compare-and-set.

        Returns the document before and after. `change` must not modify its argument, and may run
        several times; an exception from it aborts the write.
        """
        for attempt in range(self._max_attempts):
            doc = self.backend.get(key)
            before = None if doc is None else doc.value
            after = change(before)
            if self._replace(key, doc, after):
                return before, after
            time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # let the winner's peers spread out
        raise StoreError(f"ledger {key!r}: gave up after {self._max_attempts} conflicting writes")

    def _replace(self, key: str, doc: Document | None, after: JsonObject | None) -> bool:
        """One conditional write from `doc` to `after`; False if another writer changed it first."""
        if doc is None:
            return after is None or self.backend.put_if_absent(key, after)
        if after is None:
            return self.backend.delete_if_version(key, doc.version)
        return after == doc.value or self.backend.put_if_version(key, after, doc.version)


def _existing(
    what: str, mutate: Callable[[M], M | None], keeps_identity: Callable[[M], bool]
) -> Callable[[M | None], M]:
    """Wrap an update function: the record must exist, and the update may not rename it."""

    def change(current: M | None) -> M:
        if current is None:
            raise RecordNotFound(f"no {what} in the ledger")
        result = mutate(current)
        updated = current if result is None else result
        if not keeps_identity(updated):
            raise StoreError(f"an update of {what} may not change its id")
        return updated

    return change


def _owner_key(owner: str) -> str:
    """Owners are e-mail addresses: one index whatever their case."""
    return owner.strip().casefold()


def _names(ticket: TicketRecord) -> set[str]:
    """The users a ticket concerns: its own, and any its grants name."""
    return {ticket.user_name} | {grant.user_name for grant in ticket.grants}


def _expiring(ticket: TicketRecord) -> bool:
    """The ticket holds an active grant that will expire: reconcile's sweep must see it."""
    return any(grant.status == "active" and grant.expires_at is not None for grant in ticket.grants)


def _stamps(index: JsonObject | None) -> dict[str, str]:
    return {entry["ticket_id"]: entry["stamp"] for entry in index["tickets"]} if index else {}


def _stamps_doc(stamps: dict[str, str]) -> JsonObject:
    """Ticket ids are values, never field names: the store refuses secret-sounding field names."""
    return {"tickets": [{"ticket_id": t, "stamp": stamp} for t, stamp in sorted(stamps.items())]}
