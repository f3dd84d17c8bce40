"""What every flow agrees on about a managed RAM user: the tag that marks it, and its lock.

The lock serialises provisioning, revocation, offboarding and reconcile for one user across
processes; its lease lasts until the invocation's deadline (at least `USER_LOCK_SECONDS`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shared.runtime import Runtime, invocation_deadline
from shared.store import BeginStatus

log = logging.getLogger("ramflow")

MANAGED_BY = ("managed-by", "ramflow")
USER_LOCK_SECONDS = 300


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1]


def user_lock_key(user_name: str) -> str:
    return f"lock:user:{user_name}"


def lock_lease_until() -> float:
    return max(time.time() + USER_LOCK_SECONDS, invocation_deadline.get() or 0.0)


@contextmanager
def user_locks(rt: Runtime, names: Sequence[str]) -> Iterator[tuple[list[str], list[str]]]:
    """Hold the per-user lock for each name: yields (held, busy). Always released."""
    owner, lease_until = uuid.uuid4().hex, lock_lease_until()
    idempotency = rt.store.idempotency
    held: list[str] = []
    busy: list[str] = []
    try:
        for name in names:
            claim = idempotency.begin(user_lock_key(name), "user-lock", owner, lease_until)
            (held if claim.status is BeginStatus.ACQUIRED else busy).append(name)
        yield held, busy
    finally:
        for name in held:
            try:
                idempotency.release(user_lock_key(name), owner)
            except Exception:  # the lease ends by itself; never hide the flow's own outcome
                log.warning("could not release the lock of %s", name)
