"""AccessKey hygiene: the three Cloud Config rules auditors run, rotation with an overlap, unused keys.

Findings, per managed user, named by the Cloud Config managed rule they answer (thresholds in
`Settings`, defaults as Cloud Config's):

- `ram-user-ak-create-date-expired-check`: a key created more than `key_max_age_days` (90) ago
  (https://www.alibabacloud.com/help/en/cloud-config/latest/o4240s, input `days`, default 90);
- `ram-user-ak-used-expired-check`: a key not used for `key_unused_days` (90) — last use from
  GetAccessKeyLastUsed, or the creation date of a key that never signed a call
  (https://www.alibabacloud.com/help/en/cloud-config/latest/k054yy, input `days`, default 90);
- `ram-user-activated-ak-quantity-check`: two or more Active keys created more than
  `key_quantity_days` (30) ago, so a fresh key next to the old one during a rotation's overlap is
  compliant, as the rule intends
  (https://alibabacloud.com/help/en/cloud-config/latest/ram-user-has-no-more-than-two-valid-accesskeys,
  input `days`, default 30).

Rotation starts on a `ramflow.key.rotation_requested` event / `ramflow rotate`, or for a key past
its age: `key_rotation` on (RAMFLOW_KEY_ROTATION, at `key_max_age_days`) or a grant of the user whose
catalog entry sets `key_rotation_days`. Rotation runs in its own function, key-rotation, whose role
holds only the AccessKey actions on managed users: reconcile's role cannot create keys, and may invoke
key-rotation only (never access-approved). It hands an aged key on as an internal
`ramflow.key.rotation_due` event naming only the user and the key (source `ramflow.reconcile`, one id
per key so repeated passes ask once): asynchronously through InvokeFunction in FC and under
`ramflow serve`, in-process (as `ramflow rotate` does) in a local run. key-rotation acts on it only
for the key the ledger records as the user's current one, once that key is past its age, and takes the
delivery key and recipient from the ledger: a forged request can at most rotate early a key that is
due, to its rightful holder. Either way the event's result, which carries the new secret sealed to the
holder, goes out through the result delivery like a provisioning result (shared/outcomes.py: the
route of the event's source, and credential-pickup for the holder of the private key), once; a
redelivery sends the stored ciphertext again.

The rotation is a record in the ledger (`rotation/<user>`) advanced one idempotent step at a time,
under the user's lock (and, to create the new key, the owner's lock before it: shared/flows/users.py):

    creating     the intent is written (the keys that exist), then CreateAccessKey; a replay deletes
                 any key the intent does not know (created, never recorded: its secret is lost)
    delivered    the new key and its secret, sealed to the owner, are recorded, the user's
                 credential is the new key, the owner is notified (`key_rotated`); the overlap runs
    deactivated  after the overlap the old key is set Inactive — unless it signed a call after the new
                 key was delivered and the new key has not been used since (the owner has not
                 switched): then `held`, with a notice (`rotation_held`), for a person
    completed    after `key_rotation_delete_after` more, the old key is deleted (held instead if
                 someone made it Active again)
    cancelled    the user is no longer active or its owner has left: the new key is never made (the
                 create step checks under the owner's and the user's locks; offboarding and a
                 revocation that disables the user cancel the open rotation themselves)

Unused keys are set Inactive (with `key_unused_deactivate`) and the owner notified
(`unused_key_deactivated`); ramflow never deletes a key for being unused: that is for a person.
Notices go through shared.notify's notifier (once per rotation or key and kind) and the audit trail.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.audit import audit
from shared.cloud.ram import AccessKeyInfo
from shared.errors import (
    CloudError,
    EntityNotFound,
    FlowFailed,
    RotationRefused,
    UserBusy,
    ValidationFailed,
)
from shared.flows.users import owner_lock, user_locks
from shared.models.events import (
    KEY_ROTATION_DUE,
    CloudEvent,
    KeyRotationDue,
    KeyRotationRequested,
)
from shared.models.results import AccessKeyReply, Result
from shared.runtime import Runtime
from shared.sealing import seal
from shared.store.records import AccessKeyRecord, Intent, RotationRecord, UserRecord

if TYPE_CHECKING:
    from shared.notify import Kind

RULE_CREATE_DATE = "ram-user-ak-create-date-expired-check"
RULE_USED = "ram-user-ak-used-expired-check"
RULE_QUANTITY = "ram-user-activated-ak-quantity-check"
RULES = (RULE_CREATE_DATE, RULE_USED, RULE_QUANTITY)


@dataclass(frozen=True)
class KeyRules:
    """The three rules' `days` inputs."""

    max_age_days: int = 90
    unused_days: int = 90
    quantity_days: int = 30


@dataclass(frozen=True)
class KeyFacts:
    """One AccessKey as RAM reports it: ListAccessKeys plus GetAccessKeyLastUsed."""

    access_key_id: str
    status: str
    created: datetime | None
    last_used: datetime | None

    @property
    def active(self) -> bool:
        return self.status == "Active"


@dataclass(frozen=True)
class Finding:
    """One non-compliant key (or user, for the quantity rule), named by the Cloud Config rule."""

    rule: str
    user_name: str
    access_key_id: str
    detail: str

    def describe(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "user_name": self.user_name,
            "access_key_id": self.access_key_id,
            "detail": self.detail,
        }


def evaluate(user_name: str, keys: list[KeyFacts], now: datetime, rules: KeyRules) -> list[Finding]:
    """The three rules over one user's keys, as Cloud Config evaluates them (pure: no cloud call)."""
    findings: list[Finding] = []
    for key in keys:
        if key.created is not None and now - key.created > timedelta(days=rules.max_age_days):
            age = (now - key.created).days
            findings.append(
                Finding(
                    RULE_CREATE_DATE,
                    user_name,
                    key.access_key_id,
                    f"created {age} days ago (limit {rules.max_age_days})",
                )
            )
        reference = key.last_used or key.created
        if reference is not None and now - reference >= timedelta(days=rules.unused_days):
            since = "last used" if key.last_used else "never used; created"
            findings.append(
                Finding(
                    RULE_USED,
                    user_name,
                    key.access_key_id,
                    f"{since} {(now - reference).days} days ago (limit {rules.unused_days})",
                )
            )
    old_active = [
        k
        for k in keys
        if k.active and k.created is not None and now - k.created > timedelta(days=rules.quantity_days)
    ]
    if len(old_active) >= 2:
        findings.append(
            Finding(
                RULE_QUANTITY,
                user_name,
                ",".join(k.access_key_id for k in old_active),
                f"{len(old_active)} Active keys older than {rules.quantity_days} days (at most 1)",
            )
        )
    return findings


def read_keys(rt: Runtime, user_name: str) -> list[KeyFacts]:
    """ListAccessKeys, then GetAccessKeyLastUsed for each key (read-only calls)."""
    ram = rt.cloud.ram
    facts = []
    for key in ram.list_access_keys(user_name):
        facts.append(_facts(key, ram.get_access_key_last_used(user_name, key.access_key_id)))
    return facts


def _facts(key: AccessKeyInfo, last_used: datetime | None) -> KeyFacts:
    return KeyFacts(key.access_key_id, key.status, key.create_date, last_used)


# --- notices ----------------------------------------------------------------------------------
def _notify(rt: Runtime, reference: str, user_name: str, owner: str, kind: Kind, detail: str) -> None:
    """Tell the owner (audit line, and the notifier's sinks once per `reference` and kind)."""
    from shared.notify import Notice, send_all

    audit(
        "key.notice",
        actor="ramflow",
        ticket_id=None,
        outcome=kind,
        user_name=user_name,
        owner=owner,
        detail=detail,
    )
    notice = Notice(
        kind=kind,
        ticket_id=reference,
        recipients=[owner] if owner else [],
        user_name=user_name,
        details={"detail": detail},
    )
    send_all(rt, [notice])


def rotation_reference(rotation: RotationRecord) -> str:
    """Names one rotation (of one old key) in notices and in credential-pickup."""
    return f"rotation:{rotation.user_name}:{rotation.old_key_id}"


# --- rotation ----------------------------------------------------------------------------------
def rotation_intent_ticket(user_name: str) -> str:
    return f"rotation:{user_name}"


def keys_in_rotation(rt: Runtime, user_name: str) -> set[str]:
    """Keys an open rotation owns: reconcile's drift check leaves them to the rotation."""
    rotation = rt.store.ledger.get_rotation(user_name)
    if rotation is None or not rotation.open:
        return set()
    return {k for k in (rotation.old_key_id, rotation.new_key_id) if k}


@contextlib.contextmanager
def _user_lock(rt: Runtime, user_name: str) -> Iterator[None]:
    with user_locks(rt, [user_name]) as (held, _):
        if not held:
            raise UserBusy(f"another ramflow flow is changing {user_name}; retry later")
        yield


@contextlib.contextmanager
def _rotation_locks(rt: Runtime, user_name: str) -> Iterator[None]:
    """The owner's lock, then the user's (the order every flow takes them in): creating a key then
    cannot race offboarding, which records the leaver and disables the users under the same locks."""
    record = rt.store.ledger.get_user(user_name)
    owner = record.owner if record is not None else ""
    with owner_lock(rt, owner) if owner else contextlib.nullcontext(), _user_lock(rt, user_name):
        yield


def _why_not_rotated(rt: Runtime, user_name: str) -> str | None:
    """Why no new key may be made for the user now (read under the locks), or None."""
    ledger = rt.store.ledger
    record = ledger.get_user(user_name)
    if record is None or record.status != "active":
        return f"{user_name} is {record.status if record else 'not in the ledger'}, not active"
    if record.owner and ledger.get_leaver(record.owner) is not None:
        return f"the owner of {user_name} has left"
    return None


def cancel_rotation(rt: Runtime, user_name: str, *, reason: str, actor: str) -> RotationRecord | None:
    """Close the user's open rotation for good (the ledger only: whoever cancels it also takes the
    user's keys away) and drop its intent, so no later step or replay makes a key for the user."""
    ledger = rt.store.ledger
    rotation = ledger.get_rotation(user_name)
    if rotation is None or not rotation.open:
        return rotation
    now = rt.clock()
    cancelled = ledger.update_rotation(
        user_name,
        lambda r: r.model_copy(
            update={"state": "cancelled", "held_at": None, "hold_reason": reason, "finished_at": now}
        ),
    )
    intent = ledger.get_intent(_intent_key(user_name))
    if intent is not None and intent.ticket_id == rotation_intent_ticket(user_name):
        ledger.delete_intent(_intent_key(user_name))
    audit(
        "key.rotation_cancelled",
        actor=actor,
        ticket_id=None,
        outcome="cancelled",
        user_name=user_name,
        access_key_id=rotation.old_key_id,
        state=rotation.state,
        reason=reason,
    )
    return cancelled


def _intent_key(user_name: str) -> str:
    return f"access_key/{user_name}"  # the same intent provisioning writes (shared.flows.provision)


def _delivery_key(rt: Runtime, record: UserRecord) -> tuple[str, str] | None:
    """The public key the holder of the user's current key received its secret under, and who holds
    the private half: recorded with the credential; for one recorded before that, the ticket that
    produced it, or the rotation that did. Never another ticket of the user: whoever filed the latest
    one may not hold this key."""
    credential = record.credential
    if not isinstance(credential, AccessKeyRecord):
        return None
    if credential.delivery_public_key and credential.recipient:
        return credential.delivery_public_key, credential.recipient
    ledger = rt.store.ledger
    if credential.ticket_id:
        ticket = ledger.get_ticket(credential.ticket_id)
        key = ticket.request.get("delivery_public_key") if ticket is not None else None
        if ticket is not None and isinstance(key, str) and key:
            return key, ticket.requester
        return None
    rotation = ledger.get_rotation(record.user_name)
    if rotation is not None and rotation.new_key_id == credential.access_key_id and rotation.recipient:
        return rotation.delivery_public_key, rotation.recipient
    return None


def _recorded_key(record: UserRecord | None) -> str | None:
    if record is None or record.status != "active" or not isinstance(record.credential, AccessKeyRecord):
        return None
    return record.credential.access_key_id


def start_rotation(
    rt: Runtime,
    user_name: str,
    *,
    reason: str,
    requested_by: str,
    public_key: str | None = None,
    note: str | None = None,
    source: str | None = None,
) -> RotationRecord:
    """Open a rotation of the user's recorded key (one read: ListAccessKeys), or return the one already
    open. A held rotation asked for again (`requested`) goes back to the step it was held at, which
    checks again why it stopped: a person who fixed the cause lets it go on this way."""
    ledger = rt.store.ledger
    current = ledger.get_rotation(user_name)
    if current is not None and current.state == "held" and reason == "requested" and current.held_at:
        return ledger.update_rotation(
            user_name,
            lambda r: r.model_copy(update={"state": r.held_at, "held_at": None, "hold_reason": None}),
        )
    if current is not None and current.open:
        return current
    record = ledger.get_user(user_name)
    old = _recorded_key(record)
    if old is None:
        raise RotationRefused(f"{user_name} has no active programmatic key that ramflow manages")
    refused = _why_not_rotated(rt, user_name)
    if refused is not None:
        raise RotationRefused(refused)
    recipient = requested_by
    if public_key is None:
        assert record is not None  # _recorded_key found its key
        known_key = _delivery_key(rt, record)
        if known_key is None:
            raise RotationRefused(f"no delivery public key is known for the holder of {user_name}'s key")
        public_key, recipient = known_key
    seal(public_key, "probe")  # refuse an unusable key now, before anything is written
    known = [k.access_key_id for k in rt.cloud.ram.list_access_keys(user_name)]
    rotation = RotationRecord(
        user_name=user_name,
        old_key_id=old,
        reason="requested" if reason == "requested" else "age",
        requested_by=requested_by,
        known_key_ids=known,
        delivery_public_key=public_key,
        recipient=recipient,
    )
    rotation = ledger.put_rotation(rotation)
    audit(
        "key.rotation_started",
        actor=requested_by,
        ticket_id=None,
        outcome=rotation.reason,
        user_name=user_name,
        access_key_id=old,
        note=note,
        source=source,
    )
    return rotation


def advance_rotation(rt: Runtime, user_name: str, *, now: datetime | None = None) -> RotationRecord | None:
    """Take every step the rotation is due for now; each is idempotent, so a replay after a crash at
    any point continues where the last one stopped."""
    ledger = rt.store.ledger
    rotation = ledger.get_rotation(user_name)
    while rotation is not None and rotation.open and rotation.state != "held":
        now = now or rt.clock()
        step = {"creating": _create, "delivered": _deactivate, "deactivated": _delete}[rotation.state]
        moved = step(rt, rotation, now)
        if moved.state == rotation.state and moved.new_key_id == rotation.new_key_id:
            return moved  # waiting for time to pass
        rotation = moved
    return rotation


def _hold(rt: Runtime, rotation: RotationRecord, owner: str, reason: str) -> RotationRecord:
    held = rt.store.ledger.update_rotation(
        rotation.user_name,
        lambda r: r.model_copy(update={"state": "held", "held_at": r.state, "hold_reason": reason}),
    )
    _notify(rt, rotation_reference(rotation), rotation.user_name, owner, "rotation_held", reason)
    audit(
        "key.rotation_held",
        actor="ramflow",
        ticket_id=None,
        outcome="held",
        user_name=rotation.user_name,
        reason=reason,
    )
    return held


def _owner(rt: Runtime, user_name: str) -> str:
    record = rt.store.ledger.get_user(user_name)
    return record.owner if record else ""


def _create(rt: Runtime, rotation: RotationRecord, now: datetime) -> RotationRecord:
    """Make the new key. The caller holds the owner's lock, then the user's (`_rotation_locks`): the
    user's status and the leaver record read here cannot change before the key is recorded."""
    ledger, ram, name = rt.store.ledger, rt.cloud.ram, rotation.user_name
    intent_key = _intent_key(name)
    keys = {k.access_key_id: k for k in ram.list_access_keys(name)}
    for orphan in [k for k in keys if k not in rotation.known_key_ids]:
        # created by a crashed attempt, never recorded: nobody has it ("no such key": a lost reply's retry)
        with contextlib.suppress(EntityNotFound):
            ram.delete_access_key(name, orphan)
        del keys[orphan]
    refused = _why_not_rotated(rt, name)
    if refused is not None:
        return cancel_rotation(rt, name, reason=refused, actor="ramflow") or rotation
    if rotation.old_key_id not in keys:
        return _hold(rt, rotation, _owner(rt, name), "the key being rotated no longer exists in RAM")
    if len(keys) >= 2:
        return _hold(rt, rotation, _owner(rt, name), "the user already holds two AccessKeys (RAM's limit)")
    ledger.put_intent(
        Intent(key=intent_key, ticket_id=rotation_intent_ticket(name), known_key_ids=sorted(keys))
    )
    new = ram.create_access_key(name)
    sealed = seal(rotation.delivery_public_key, new.secret.get_secret_value())
    delivered = ledger.update_rotation(
        name,
        lambda r: r.model_copy(
            update={
                "new_key_id": new.access_key_id,
                "sealed_secret": sealed,
                "state": "delivered",
                "delivered_at": now,
                "deactivate_after": now + rt.settings.key_rotation_overlap,
            }
        ),
    )
    record = _settle(rt, delivered)
    audit(  # the sealed secret itself leaves with the request's result (shared/outcomes.py)
        "key.delivered",
        actor=rotation.requested_by,
        ticket_id=None,
        outcome="sealed",
        user_name=name,
        owner=record.owner,
        access_key_id=new.access_key_id,
    )
    _notify(
        rt,
        rotation_reference(delivered),
        name,
        record.owner,
        "key_rotated",
        f"new key {new.access_key_id}; {rotation.old_key_id} is deactivated after "
        f"{delivered.deactivate_after.isoformat() if delivered.deactivate_after else 'the overlap'}",
    )
    audit(
        "key.rotated",
        actor=rotation.requested_by,
        ticket_id=None,
        outcome="delivered",
        user_name=name,
        old_key_id=rotation.old_key_id,
        new_key_id=new.access_key_id,
        overlap_until=delivered.deactivate_after,
    )
    return delivered


def _rotated_credential(rotation: RotationRecord) -> AccessKeyRecord:
    """The new key as the user's credential, held by the same holder: the next rotation seals to it."""
    assert rotation.new_key_id is not None and rotation.sealed_secret is not None
    return AccessKeyRecord(
        access_key_id=rotation.new_key_id,
        sealed_secret=rotation.sealed_secret,
        ticket_id=None,
        delivery_public_key=rotation.delivery_public_key,
        recipient=rotation.recipient,
    )


def _settle(rt: Runtime, rotation: RotationRecord) -> UserRecord:
    """The delivered rotation's last writes, idempotent: the user's credential is the new key (if it
    still names the old one) and the rotation's intent is gone. The create step ends with them and
    the next step starts with them, so a crash between the rotation's record and the user's leaves
    neither the ledger pointing at the old key nor the intent behind."""
    ledger, name = rt.store.ledger, rotation.user_name

    def point_at_new(user: UserRecord) -> None:
        current = user.credential
        if isinstance(current, AccessKeyRecord) and current.access_key_id == rotation.old_key_id:
            user.credential = _rotated_credential(rotation)

    record = ledger.update_user(name, point_at_new)
    intent = ledger.get_intent(_intent_key(name))
    if intent is not None and intent.ticket_id == rotation_intent_ticket(name):
        ledger.delete_intent(_intent_key(name))
    return record


def _deactivate(rt: Runtime, rotation: RotationRecord, now: datetime) -> RotationRecord:
    assert rotation.deactivate_after is not None and rotation.delivered_at is not None
    _settle(rt, rotation)
    if now < rotation.deactivate_after:
        return rotation
    ram, name = rt.cloud.ram, rotation.user_name
    old_used = ram.get_access_key_last_used(name, rotation.old_key_id)
    new_used = ram.get_access_key_last_used(name, rotation.new_key_id or "")
    if (
        old_used is not None
        and old_used > rotation.delivered_at
        and (new_used is None or new_used < old_used)
    ):
        return _hold(
            rt,
            rotation,
            _owner(rt, name),
            f"the old key {rotation.old_key_id} signed a call at {old_used.isoformat()} after the new key "
            "was delivered, and the new key has not been used since",
        )
    ram.update_access_key(name, rotation.old_key_id, "Inactive")
    audit(
        "key.deactivated",
        actor="ramflow",
        ticket_id=None,
        outcome="rotation",
        user_name=name,
        access_key_id=rotation.old_key_id,
    )
    return rt.store.ledger.update_rotation(
        name,
        lambda r: r.model_copy(
            update={
                "state": "deactivated",
                "deactivated_at": now,
                "delete_after": now + rt.settings.key_rotation_delete_after,
            }
        ),
    )


def _delete(rt: Runtime, rotation: RotationRecord, now: datetime) -> RotationRecord:
    assert rotation.delete_after is not None
    if now < rotation.delete_after:
        return rotation
    ram, name = rt.cloud.ram, rotation.user_name
    old = next((k for k in ram.list_access_keys(name) if k.access_key_id == rotation.old_key_id), None)
    if old is not None and old.status == "Active":
        return _hold(
            rt, rotation, _owner(rt, name), f"the old key {rotation.old_key_id} was made Active again"
        )
    if old is not None:
        with contextlib.suppress(EntityNotFound):
            ram.delete_access_key(name, rotation.old_key_id)
    audit(
        "key.deleted",
        actor="ramflow",
        ticket_id=None,
        outcome="rotation",
        user_name=name,
        access_key_id=rotation.old_key_id,
    )
    return rt.store.ledger.update_rotation(
        name, lambda r: r.model_copy(update={"state": "completed", "finished_at": now})
    )


def rotate(
    rt: Runtime,
    user_name: str,
    *,
    reason: str = "requested",
    requested_by: str = "operator",
    public_key: str | None = None,
    note: str | None = None,
    source: str | None = None,
) -> RotationRecord | None:
    """Start a rotation (if none is open) and take every step due now, under the owner's lock and
    the user's."""
    with _rotation_locks(rt, user_name):
        start_rotation(
            rt,
            user_name,
            reason=reason,
            requested_by=requested_by,
            public_key=public_key,
            note=note,
            source=source,
        )
        return advance_rotation(rt, user_name)


def resume(rt: Runtime, user_name: str) -> RotationRecord | None:
    """Take the steps an open rotation is due for now (a replay, or a later pass), under the owner's
    lock and the user's."""
    with _rotation_locks(rt, user_name):
        return advance_rotation(rt, user_name)


def describe_rotation(rotation: RotationRecord) -> dict[str, Any]:
    """What a reply or report shows: states, ids, dates and the ciphertext, never anything else."""
    return rotation.model_dump(
        mode="json",
        include={
            "user_name",
            "old_key_id",
            "new_key_id",
            "state",
            "reason",
            "delivered_at",
            "deactivate_after",
            "deactivated_at",
            "delete_after",
            "finished_at",
            "hold_reason",
            "sealed_secret",
            "recipient",
        },
    )


def rotation_requested(data: KeyRotationRequested, event: CloudEvent, rt: Runtime) -> Result:
    """`ramflow.key.rotation_requested`: rotate one user's key now (the rest follows on reconcile).
    The reply carries the new secret, sealed: the result delivery takes it to the owner.

    `cause: age` is reconcile's word: accepted only from its source and never with a delivery key (an
    age rotation seals to the holder the ledger records). Who asked and from where are always audited."""
    audit(
        "key.rotation_requested",
        actor=data.requested_by,
        ticket_id=None,
        outcome=data.cause,
        user_name=data.user_name,
        source=event.source,
        event_id=event.id,
        delivery_key_given=data.delivery_public_key is not None,
    )
    if data.cause == "age" and event.source != AGE_SOURCE:
        reason = f"'age' is for rotations reconcile asks for (source {AGE_SOURCE}); not from {event.source}"
        return Result.rejected([{"field": "data.cause", "reason": reason}], event_id=event.id)
    if data.cause == "age" and data.delivery_public_key is not None:
        reason = "an age rotation seals to the key the ledger records for the holder: it takes none"
        return Result.rejected([{"field": "data.delivery_public_key", "reason": reason}], event_id=event.id)
    try:
        rotation = rotate(
            rt,
            data.user_name,
            reason=data.cause,
            requested_by=data.requested_by,
            public_key=data.delivery_public_key,
            note=data.reason,
            source=event.source,
        )
    except RotationRefused as exc:
        return Result.rejected([{"field": "data.user_name", "reason": str(exc)}], event_id=event.id)
    return _rotation_result(rotation, data.user_name, event)


def rotation_due(data: KeyRotationDue, event: CloudEvent, rt: Runtime) -> Result:
    """`ramflow.key.rotation_due` (reconcile's hand-off): rotate the user's key if, by the ledger and
    RAM, it is the user's current key and past its age, or finish the rotation of that key already
    open. Nothing in the event says where the secret goes: the ledger does."""
    if event.source != AGE_SOURCE:
        return Result.rejected(
            [{"field": "source", "reason": f"an age rotation comes from {AGE_SOURCE} only"}],
            event_id=event.id,
        )
    try:
        with _rotation_locks(rt, data.user_name):
            current = rt.store.ledger.get_rotation(data.user_name)
            if current is None or not current.open or current.old_key_id != data.old_key_id:
                _check_due(rt, data.user_name, data.old_key_id)
            start_rotation(rt, data.user_name, reason="age", requested_by=AGE_REQUESTER, source=event.source)
            rotation = advance_rotation(rt, data.user_name)
    except RotationRefused as exc:
        return Result.rejected([{"field": "data.old_key_id", "reason": str(exc)}], event_id=event.id)
    return _rotation_result(rotation, data.user_name, event)


def _check_due(rt: Runtime, user_name: str, key_id: str) -> None:
    """Refuse unless `key_id` is the key the ledger records for the user and is past its age."""
    if _recorded_key(rt.store.ledger.get_user(user_name)) != key_id:
        raise RotationRefused(f"{key_id} is not the recorded AccessKey of {user_name}")
    limit = rotation_age_limit(rt, user_name)
    key = next((k for k in rt.cloud.ram.list_access_keys(user_name) if k.access_key_id == key_id), None)
    now = rt.clock()
    if (
        limit is None
        or key is None
        or key.create_date is None
        or now - key.create_date <= timedelta(days=limit)
    ):
        raise RotationRefused(f"{key_id} of {user_name} is not due for rotation")


def _rotation_result(rotation: RotationRecord | None, user_name: str, event: CloudEvent) -> Result:
    assert rotation is not None
    credential = (
        AccessKeyReply(access_key_id=rotation.new_key_id, sealed_secret=rotation.sealed_secret)
        if rotation.new_key_id and rotation.sealed_secret and rotation.state != "cancelled"
        else None
    )
    return Result(
        status="completed",
        event_id=event.id,
        user_name=user_name,
        actions=[f"rotation of {user_name}: {rotation.state}"],
        plan={"rotation": describe_rotation(rotation)},
        needs_human=[f"{user_name}: {rotation.hold_reason}"] if rotation.state == "held" else [],
        credential=credential,
    )


# --- the per-user pass reconcile calls ---------------------------------------------------------
@dataclass
class UserKeyReport:
    user_name: str
    findings: list[Finding] = field(default_factory=list)
    rotation: RotationRecord | None = None
    deactivated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy: bool = False
    handed_off: str | None = None
    missing: bool = False
    """RAM has no such user: nothing was evaluated, so the findings on record are left as they were."""


def rules_of(rt: Runtime) -> KeyRules:
    s = rt.settings
    return KeyRules(s.key_max_age_days, s.key_unused_days, s.key_quantity_days)


def check_user_keys(rt: Runtime, user_name: str, *, now: datetime, dry_run: bool = False) -> UserKeyReport:
    """One managed user's keys: findings, then (unless a dry run) the rotation and unused-key steps due.

    Separate from reconcile's traversal so any pass over users (full or incremental) can call it."""
    report = UserKeyReport(user_name)
    ledger = rt.store.ledger
    try:
        try:
            facts = read_keys(rt, user_name)
        except EntityNotFound as exc:
            if exc.code != "EntityNotExist.User":
                raise  # a key deleted between the two reads: an error, and the next pass reads again
            report.missing = True  # the drift sweep reports the missing user to a human
            return report
        report.findings = evaluate(user_name, facts, now, rules_of(rt))
        report.rotation = ledger.get_rotation(user_name)
        if dry_run:
            return report
        with _user_lock(rt, user_name):
            report.rotation, aged_key = _rotation_due(rt, user_name, facts, now)
            in_rotation = keys_in_rotation(rt, user_name)
            owner = _owner(rt, user_name)
            for finding in report.findings:
                if finding.rule != RULE_USED or finding.access_key_id in in_rotation:
                    continue
                key = next(k for k in facts if k.access_key_id == finding.access_key_id)
                if rt.settings.key_unused_deactivate and key.active:
                    rt.cloud.ram.update_access_key(user_name, key.access_key_id, "Inactive")
                    report.deactivated.append(key.access_key_id)
                    audit(
                        "key.deactivated",
                        actor="reconcile",
                        ticket_id=None,
                        outcome="unused",
                        user_name=user_name,
                        access_key_id=key.access_key_id,
                    )
                    _notify(
                        rt,
                        f"key:{user_name}:{key.access_key_id}",
                        user_name,
                        owner,
                        "unused_key_deactivated",
                        finding.detail,
                    )
        if aged_key is not None:  # outside the lock: the rotation takes it
            try:
                report.handed_off = hand_off_rotation(rt, user_name, aged_key)
            except FlowFailed as exc:  # in-process, the rotation failed: the next pass asks again
                reasons = "; ".join(f"{e.field}: {e.reason}" for e in exc.result.errors)
                report.errors.append(f"key rotation: {reasons or exc.result.status}")
            report.rotation = ledger.get_rotation(user_name)
        if report.deactivated or (report.rotation is not None and report.rotation.state != "held"):
            report.findings = evaluate(user_name, read_keys(rt, user_name), now, rules_of(rt))  # as left
    except UserBusy:
        report.busy = True  # another flow is changing this user: the next pass takes the steps due
    except (CloudError, RotationRefused, ValidationFailed) as exc:
        report.errors.append(str(exc))
    return report


def rotation_age_limit(rt: Runtime, user_name: str) -> int | None:
    """After how many days the user's key is rotated automatically: `key_max_age_days` with
    `key_rotation` on, or the smallest `key_rotation_days` of the catalog entries the user holds a
    grant of (None: never automatically)."""
    limits = [rt.settings.key_max_age_days] if rt.settings.key_rotation else []
    catalog = rt.catalog
    for ticket in rt.store.ledger.tickets_of_user(user_name):
        if not any(g.status == "active" for g in ticket.grants):
            continue
        for grant in ticket.request.get("grants") or []:
            entry = catalog.policy(grant.get("policy", "")) or catalog.template(grant.get("template", ""))
            if entry is not None and entry.key_rotation_days is not None:
                limits.append(entry.key_rotation_days)
    return min(limits) if limits else None


def _rotation_due(
    rt: Runtime, user_name: str, facts: list[KeyFacts], now: datetime
) -> tuple[RotationRecord | None, str | None]:
    """Advance an open rotation; or the key to hand on for rotation: past its age, or of a rotation
    whose new key is still to be made (a crashed attempt: only key-rotation may create it)."""
    ledger = rt.store.ledger
    rotation = ledger.get_rotation(user_name)
    if rotation is not None and rotation.state == "creating":
        return rotation, rotation.old_key_id
    if rotation is not None and rotation.open:
        return advance_rotation(rt, user_name, now=now), None
    recorded = _recorded_key(ledger.get_user(user_name))
    key = next((k for k in facts if k.access_key_id == recorded), None)
    limit = rotation_age_limit(rt, user_name) if key is not None else None
    if key is None or key.created is None or limit is None or now - key.created <= timedelta(days=limit):
        return rotation, None
    return rotation, key.access_key_id


AGE_SOURCE = "ramflow.reconcile"
AGE_REQUESTER = "reconcile"
ROTATING_FUNCTION = "key-rotation"  # the only function reconcile may invoke (local/roles.py)


def age_rotation_event(user_name: str, old_key_id: str) -> CloudEvent:
    """The request reconcile hands on: one id per key, so every pass that finds it asks once. It
    names the user and the key only: key-rotation reads everything else from the ledger."""
    return CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"age-rotation:{user_name}:{old_key_id}",
            "source": AGE_SOURCE,
            "type": KEY_ROTATION_DUE,
            "datacontenttype": "application/json",
            "data": {"user_name": user_name, "old_key_id": old_key_id},
        }
    )


def hand_off_rotation(rt: Runtime, user_name: str, old_key_id: str) -> str:
    """Ask key-rotation to rotate an aged key: InvokeFunction (async) where functions run in
    Function Compute or the local FC runtime, else in-process through the same event handling."""
    event = age_rotation_event(user_name, old_key_id)
    audit(
        "key.rotation_handed_off",
        actor=AGE_REQUESTER,
        ticket_id=None,
        outcome="requested",
        user_name=user_name,
        access_key_id=old_key_id,
        event_id=event.id,
    )
    if rt.settings.fc_endpoint or os.environ.get("FC_FUNCTION_NAME"):
        from shared.cloud import account_runner
        from shared.cloud.fc import FcGateway

        runner = account_runner(rt.settings, rt.credentials, store=rt.store.backend)
        body = event.model_dump_json(by_alias=True, exclude_none=True).encode()
        FcGateway(rt.settings, rt.credentials, runner).invoke(ROTATING_FUNCTION, body, asynchronous=True)
        return f"handed to {ROTATING_FUNCTION}"
    from shared.handler import process_event
    from shared.runtime import invocation_deadline

    lease = invocation_deadline.get() or time.time() + rt.settings.idempotency_lease_seconds
    process_event(
        event,
        {KEY_ROTATION_DUE: rotation_due},
        rt,
        owner=f"{AGE_REQUESTER}/{uuid.uuid4()}",
        lease_until=lease,
    )
    return "rotated in-process"
