"""The state store: idempotency records and the ticket ledger over one versioned-document backend."""

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
