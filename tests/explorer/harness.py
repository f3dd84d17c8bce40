"""One person, the five kinds of event about them, and the invariants every interleaving must keep.

The harness drives the real flows through `process_event` (idempotency, leases, locks) against the
emulator in-process and a store; a hook at every boundary of one flow — before and after each cloud
call (the emulator's per-call hooks) and each store write (a wrapper of the backend) — may run
another event right there. `settle` then redelivers whatever was not final, as FC and webhook
senders do, and `violations` states the invariants:

  I1 RAM equals the ledger (users, their attachments at both scopes, their keys)
  I2 a revoked ticket holds no grant in RAM, and a ticket whose revocation was delivered is revoked
     (whatever came before or after it)
  I3 an offboarded owner holds no enabled user, no open ticket, and no credential is minted after
     they left
  I4 no orphan: no key the ledger does not record, no ramflow custom policy attached to nobody,
     no managed user the ledger does not know
  I5 every secret delivered matches a key that exists (while its user exists)
  I6 no approval is lost: none is still kept for a ticket whose request was recorded and that
     still waits for approval (the request applies a kept approval; one kept later must be seen)
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.emulator.core import Emulator
from local.testing import ROOT_CREDENTIALS
from shared.config import Settings
from shared.flows import FLOWS
from shared.flows.reconcile import reconcile
from shared.handler import FlowFailed, process_event
from shared.models.events import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    USER_OFFBOARDED,
    USER_REQUESTED,
    CloudEvent,
)
from shared.models.results import Result
from shared.policy.catalog import Catalog
from shared.runtime import Runtime
from shared.sealing import generate_keypair, open_sealed
from shared.store import StateStore
from shared.store.base import JsonObject, KeyValueBackend
from shared.store.records import AccessKeyRecord

KINDS = ("request", "approve", "revoke", "offboard", "reconcile")


@functools.cache
def _catalog(path: Any) -> Catalog:
    return Catalog.load(path)


Hook = Callable[[str, str], None]


class HookedBackend:
    """A backend whose conditional writes call `hook("before"|"after", "store:<op> <key>")`."""

    def __init__(self, inner: KeyValueBackend, hook: Hook) -> None:
        self.inner = inner
        self.hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _around(self, op: str, key: str, call: Callable[[], bool]) -> bool:
        self.hook("before", f"store:{op} {key}")
        done = call()
        self.hook("after", f"store:{op} {key}")
        return done

    def put_if_absent(self, key: str, value: JsonObject, ttl_seconds: float | None = None) -> bool:
        return self._around("put", key, lambda: self.inner.put_if_absent(key, value, ttl_seconds))

    def put_if_version(
        self, key: str, value: JsonObject, expected_version: int, ttl_seconds: float | None = None
    ) -> bool:
        return self._around(
            "put", key, lambda: self.inner.put_if_version(key, value, expected_version, ttl_seconds)
        )

    def delete_if_version(self, key: str, expected_version: int) -> bool:
        return self._around("delete", key, lambda: self.inner.delete_if_version(key, expected_version))


@dataclass
class Person:
    """The person every event is about: one owner, one user, one ticket."""

    owner: str = "alice@example.com"
    user: str = "alice.kafka"
    ticket: str = "ITSM-9001"
    resource_group: str = ""


@dataclass
class Harness:
    emulator: Emulator
    backend: KeyValueBackend
    settings: Settings
    person: Person = field(default_factory=Person)
    trace: list[str] = field(default_factory=list)
    replies: list[tuple[str, Result]] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    events: dict[str, CloudEvent] = field(default_factory=dict)
    keys: tuple[str, str] = field(default_factory=generate_keypair)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.store = StateStore(HookedBackend(self.backend, self._boundary))
        self.runtime = Runtime(self.settings, ROOT_CREDENTIALS, self.store)
        self.runtime.__dict__["catalog"] = _catalog(self.settings.catalog_path)  # parsed once per process
        self.emulator.hooks.append(lambda when, action: self._boundary(when, f"cloud:{action}"))
        self.events = self.make_events(self.person)

    def _boundary(self, when: str, what: str) -> None:
        with self._lock:
            self.trace.append(f"{when} {what}")
        for hook in list(self.hooks):
            hook(when, what)

    def make_events(self, p: Person) -> dict[str, CloudEvent]:
        def event(event_type: str, data: dict[str, Any], source: str) -> CloudEvent:
            return CloudEvent.model_validate(
                {
                    "specversion": "1.0",
                    "id": uuid.uuid4().hex,
                    "source": source,
                    "type": event_type,
                    "data": data,
                }
            )

        grants: list[dict[str, Any]] = [
            {"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}},
            {"policy": "AliyunKafkaFullAccess", "type": "System", "resource_group": p.resource_group},
        ]
        return {
            "request": event(
                USER_REQUESTED,
                {
                    "ticket_id": p.ticket,
                    "requester": "carol@example.com",
                    "user": {"logon_name": p.user, "owner": p.owner, "email": p.owner},
                    "access_mode": "programmatic",
                    "grants": grants,
                    "justification": "on-call",
                    "delivery_public_key": self.keys[1],
                },
                "itsm.example.com",
            ),
            "approve": event(
                ACCESS_APPROVED,
                {"ticket_id": p.ticket, "approvers": ["dave@example.com"]},
                "itsm.example.com",
            ),
            "revoke": event(
                ACCESS_REVOKED, {"ticket_id": p.ticket, "reason": "moved team"}, "itsm.example.com"
            ),
            "offboard": event(USER_OFFBOARDED, {"owner": p.owner, "hr_event_id": "WD-1"}, "hr.example.com"),
        }

    # --- delivery ---------------------------------------------------------------------------------
    def deliver(self, kind: str, events: dict[str, CloudEvent] | None = None) -> bool:
        """One delivery attempt, as FC makes it; True when final (the sender stops), False to retry."""
        if kind == "reconcile":
            report = reconcile(self.runtime, remediate=True)
            return not report.journal.errors
        event = (events or self.events)[kind]
        try:
            result = process_event(
                event, FLOWS, self.runtime, owner=uuid.uuid4().hex, lease_until=time.time() + 60
            )
        except FlowFailed:
            return False
        self.replies.append((kind, result))
        return True

    def settle(self, kinds: list[str], rounds: int = 12, events: dict[str, CloudEvent] | None = None) -> None:
        """Redeliver until every event is final, round after round, as senders retry."""
        pending = list(kinds)
        for _ in range(rounds):
            pending = [kind for kind in pending if not self.deliver(kind, events)]
            if not pending:
                return
        raise AssertionError(f"never final: {pending}")

    # --- the invariants ---------------------------------------------------------------------------
    def violations(self, owners: list[str] | None = None, revoked: set[str] | None = None) -> list[str]:
        """`revoked`: the tickets an `access.revoked` was delivered for (by default, those a
        `revoke` delivery answered)."""
        ram = self.emulator.account.ram
        ledger = self.store.ledger
        found: list[str] = []
        records = {u.user_name: u for u in ledger.all_users()}
        tickets = ledger.all_tickets()
        active: dict[str, set[tuple[str, str, str]]] = {}
        for t in tickets:
            for g in t.grants:
                if g.status == "active":
                    active.setdefault(g.user_name, set()).add(
                        (g.policy_type, g.policy_name, g.resource_group_id or "")
                    )
        managed = {name: u for name, u in ram.users.items() if u.tags.get("managed-by") == "ramflow"}

        # I1 RAM equals the ledger
        for name, record in records.items():
            user = ram.users.get(name)
            if record.status == "deleted":
                if user is not None:
                    found.append(f"I1 {name}: deleted in the ledger, present in RAM")
                continue
            if user is None:
                found.append(f"I1 {name}: {record.status} in the ledger, absent from RAM")
                continue
            held = set(user.policies)
            if held != active.get(name, set()):
                found.append(
                    f"I1 {name}: RAM holds {sorted(held)}, the ledger {sorted(active.get(name, set()))}"
                )
            enabled_keys = {k for k, v in user.access_keys.items() if v.status == "Active"}
            if record.status == "disabled" and (enabled_keys or user.login_profile is not None):
                found.append(f"I1 {name}: disabled in the ledger, RAM has enabled access")
            if record.status == "active" and not active.get(name):
                statuses = {t.ticket_id: t.status for t in tickets if t.user_name == name}
                found.append(
                    f"I1 {name}: active in the ledger without an active grant "
                    f"(tickets {statuses}, RAM tags {sorted(user.tags)}, keys {len(user.access_keys)})"
                )
        for name in managed:
            if name not in records:
                found.append(f"I4 {name}: managed user in RAM the ledger does not know")

        # I2 a revoked ticket holds no grant
        if revoked is None:
            revoked = {r.ticket_id for kind, r in self.replies if kind == "revoke" and r.ticket_id}
        for t in tickets:
            if t.ticket_id in revoked and t.status not in {"revoked", "rejected"}:
                found.append(f"I2 {t.ticket_id}: its revocation was delivered, the ticket is {t.status}")
        for t in tickets:
            if t.status != "revoked":
                continue
            user = ram.users.get(t.user_name)
            for g in t.grants:
                attachment = (g.policy_type, g.policy_name, g.resource_group_id or "")
                if (
                    user is not None
                    and attachment in user.policies
                    and attachment not in active.get(t.user_name, set())
                ):
                    found.append(f"I2 {t.ticket_id}: revoked, RAM still holds {attachment}")

        # I3 a leaver holds nothing enabled, and no credential was minted after they left
        for owner in owners or [self.person.owner]:
            if ledger.get_leaver(owner) is None:
                continue
            for t in tickets:
                if t.owner == owner and t.status in {"pending_approval", "approved"}:
                    found.append(f"I3 {t.ticket_id}: the owner left, the ticket is still {t.status}")
            for name, user in ram.users.items():
                if user.tags.get("owner") != owner:
                    continue
                if (
                    any(k.status == "Active" for k in user.access_keys.values())
                    or user.login_profile
                    or user.policies
                ):
                    found.append(f"I3 {name}: the owner left, the user keeps enabled access")
            left = next((i for i, t in enumerate(self.trace) if t == f"after store:put leaver/{owner}"), None)
            if left is not None:
                minted = [
                    t
                    for t in self.trace[left:]
                    if t
                    in {
                        "after cloud:CreateAccessKey",
                        "after cloud:CreateLoginProfile",
                        "after cloud:UpdateLoginProfile",
                    }
                ]
                if minted:
                    found.append(f"I3 {owner}: {minted[0]} after the owner left")

        # I4 no orphan key or policy
        for name, user in managed.items():
            record = records.get(name)
            recorded = (
                {record.credential.access_key_id}
                if record is not None and isinstance(record.credential, AccessKeyRecord)
                else set()
            )
            orphans = set(user.access_keys) - recorded
            if orphans:
                found.append(f"I4 {name}: AccessKeys the ledger does not record: {sorted(orphans)}")
        attached = {p for u in ram.users.values() for (_, p, _) in u.policies}
        for policy in ram.policies["Custom"]:
            if policy.startswith("ramflow-") and policy not in attached:
                found.append(f"I4 custom policy {policy} is attached to nobody")

        # I5 every secret delivered matches a key that exists
        for kind, result in self.replies:
            credential = result.credential
            if credential is None or credential.kind != "access_key" or result.user_name is None:
                continue
            user = ram.users.get(result.user_name)
            if user is None:
                continue
            key = user.access_keys.get(credential.access_key_id)
            if key is None:
                found.append(
                    f"I5 {kind}: delivered {credential.access_key_id}, which {result.user_name} lacks"
                )
            elif open_sealed(self.keys[0], credential.sealed_secret) != key.secret:
                found.append(f"I5 {kind}: the delivered secret does not open to {credential.access_key_id}")

        # I6 no approval is lost
        for t in tickets:
            if t.status == "pending_approval" and ledger.get_early_approval(t.ticket_id) is not None:
                found.append(f"I6 {t.ticket_id}: an approval is kept, the ticket still waits for one")
        return found
