"""What every flow agrees on about a managed RAM user: the tag that marks it, and the locks.

Locks are leases in the idempotency store (`lock:owner:<owner>`, `lock:user:<name>`). A lease ends
at the invocation's deadline (FC stops the instance there, so a holder past it is provably dead
and the next claimant takes the lock over); without a deadline (the CLI) it lasts
`Settings.user_lock_seconds` (RAMFLOW_USER_LOCK_SECONDS). Every flow takes its locks in one order —
owner before user, users in name order — and decides only on what it read after taking them:

  flow                     owner lock   user lock(s)          re-read under the locks
  user.requested           yes          (auto-approve: yes)   leaver record, ticket, user record
  access.approved          yes          yes                   ticket, leaver record, user record, RAM user
  access.revoked           no           yes                   ticket and every ticket of the user
  user.offboarded (owner)  yes          every user found      users of the owner (incl. being created)
  user.offboarded (user)   no           yes                   RAM holdings, tickets
  user.rehired             yes          no                    leaver record
  reconcile                no           each user it changes  expired grants, RAM holdings, ledger
  key rotation (the key)   yes          yes                   user status, leaver record, rotation
  key rotation (later)     no           yes                   rotation (deactivating, deleting the old key)

The owner lock is what makes "a leaver keeps nothing" hold: offboarding records the leaver and
lists the owner's users while holding it, and an approval checks the leaver record and records
its user (before CreateUser) while holding it, so either the approval's user is in the list or
the approval sees the leaver and refuses. A rotation creates its new key the same way: under both
locks it refuses (and cancels the rotation) unless the user is active and its owner has not left,
and offboarding and revocation cancel a user's open rotation under the user's lock.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from shared.errors import UserBusy
from shared.flows.saga import Step, Stepper
from shared.runtime import Runtime, invocation_deadline
from shared.store import BeginStatus

log = logging.getLogger("ramflow")

MANAGED_BY = ("managed-by", "ramflow")
LOCK_POLL = 0.05


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1]


def made_by_ramflow(rt: Runtime, user_name: str, tags: dict[str, str]) -> bool:
    """A RAM user with no tags at all whose record the ledger wrote before creating it (and has not
    deleted) is ramflow's, caught by a crash between CreateUser and TagResources. The record is only
    written when no unmanaged user of the name exists (provisioning checks under the user's lock).
    A user whose `managed-by` tag was removed by hand (its other tags stay) was taken over: not ours."""
    if tags:
        return False
    record = rt.store.ledger.get_user(user_name)
    return record is not None and record.status != "deleted"


def confirmed_gone(rt: Runtime, stepper: Stepper, names: Sequence[str]) -> set[str]:
    """Of users IMS answered "no such user" for, those RAM's GetUser says do not exist. IMS is not
    enough: it names users by `<user>@<alias>.onaliyun.com`, so a stale account alias makes every
    user look absent. A user RAM has is recorded as an error (the event is retried); a GetUser that
    failed is recorded by the stepper."""
    ram = rt.cloud.ram
    gone: set[str] = set()
    for done in stepper.run(
        "confirm the users are gone",
        [Step(name, "GetUser", "", partial(ram.get_user, name)) for name in names],
    ):
        if not done.ok:
            continue
        if done.absent or done.value is None:
            gone.add(done.step.subject)
        else:
            stepper.journal.error(
                done.step.subject,
                "ListTagResources",
                f"IMS does not know {rt.logon_principal(done.step.subject)} but RAM has the user "
                "(is the account alias right?)",
            )
    return gone


def user_lock_key(user_name: str) -> str:
    return f"lock:user:{user_name}"


def owner_lock_key(owner: str) -> str:
    return f"lock:owner:{owner.strip().casefold()}"


def lock_lease_until(rt: Runtime) -> float:
    """The invocation's deadline: past it the holder is stopped, so its lock may be taken over."""
    return invocation_deadline.get() or time.time() + rt.settings.user_lock_seconds


@contextmanager
def owner_lock(rt: Runtime, owner: str) -> Iterator[None]:
    """Hold the owner's lock for the block, or raise UserBusy (the event is delivered again)."""
    key, holder = owner_lock_key(owner), uuid.uuid4().hex
    idempotency = rt.store.idempotency
    if idempotency.begin(key, "owner-lock", holder, lock_lease_until(rt)).status is not BeginStatus.ACQUIRED:
        raise UserBusy(owner)
    try:
        yield
    finally:
        try:
            idempotency.release(key, holder)
        except Exception:  # the lease ends by itself; never hide the flow's own outcome
            log.warning("could not release an owner lock")


@contextmanager
def user_locks(
    rt: Runtime, names: Sequence[str], *, wait: float = 0.0
) -> Iterator[tuple[list[str], list[str]]]:
    """Hold the per-user lock for each name: yields (held, busy). Always released.

    `wait`: seconds to keep trying the busy ones, for locks that are held briefly (reconcile holds
    a user's lock for that user's few calls only)."""
    owner, lease_until = uuid.uuid4().hex, lock_lease_until(rt)
    idempotency = rt.store.idempotency
    held: list[str] = []
    busy: list[str] = list(names)
    give_up_at = time.monotonic() + wait
    try:
        while True:
            still: list[str] = []
            for name in busy:
                claim = idempotency.begin(user_lock_key(name), "user-lock", owner, lease_until)
                (held if claim.status is BeginStatus.ACQUIRED else still).append(name)
            busy = still
            if not busy or time.monotonic() >= give_up_at:
                break
            time.sleep(LOCK_POLL)
        yield held, busy
    finally:
        for name in held:
            try:
                idempotency.release(user_lock_key(name), owner)
            except Exception:  # the lease ends by itself; never hide the flow's own outcome
                log.warning("could not release the lock of %s", name)
