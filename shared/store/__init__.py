"""The state store: idempotency records and the ticket ledger over one versioned-document backend.

Names are loaded on first access (PEP 562): a function pays at cold start only for the parts of
the store it uses, and redis-py is imported only where Redis is the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from shared.store.base import BaseBackend, Document, KeyValueBackend
    from shared.store.idempotency import (
        BeginResult,
        BeginStatus,
        IdempotencyRecord,
        IdempotencyStore,
        payload_hash,
    )
    from shared.store.ledger import Ledger
    from shared.store.memory import MemoryBackend
    from shared.store.records import (
        AccessKeyRecord,
        CredentialRecord,
        GrantRecord,
        Intent,
        LoginProfileRecord,
        ScheduledDeletion,
        TicketRecord,
        UserRecord,
        grant_id,
    )
    from shared.store.redis import RedisBackend
    from shared.store.sqlite import SqliteBackend
    from shared.store.state import StateStore
    from shared.store.url import open_store

_MODULE_OF = {
    "BaseBackend": "base",
    "Document": "base",
    "KeyValueBackend": "base",
    "BeginResult": "idempotency",
    "BeginStatus": "idempotency",
    "IdempotencyRecord": "idempotency",
    "IdempotencyStore": "idempotency",
    "payload_hash": "idempotency",
    "Ledger": "ledger",
    "MemoryBackend": "memory",
    "AccessKeyRecord": "records",
    "CredentialRecord": "records",
    "GrantRecord": "records",
    "Intent": "records",
    "LoginProfileRecord": "records",
    "ScheduledDeletion": "records",
    "TicketRecord": "records",
    "UserRecord": "records",
    "grant_id": "records",
    "RedisBackend": "redis",
    "SqliteBackend": "sqlite",
    "StateStore": "state",
    "open_store": "url",
}

__all__ = [
    "AccessKeyRecord",
    "BaseBackend",
    "BeginResult",
    "BeginStatus",
    "CredentialRecord",
    "Document",
    "GrantRecord",
    "IdempotencyRecord",
    "IdempotencyStore",
    "Intent",
    "KeyValueBackend",
    "Ledger",
    "LoginProfileRecord",
    "MemoryBackend",
    "RedisBackend",
    "ScheduledDeletion",
    "SqliteBackend",
    "StateStore",
    "TicketRecord",
    "UserRecord",
    "grant_id",
    "open_store",
    "payload_hash",
]


__getattr__ = lazy_attributes(__name__, _MODULE_OF, globals())
