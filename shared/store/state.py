"""One object for a function's state: idempotency records and the ledger, on one backend."""

from __future__ import annotations

from shared.config import DEFAULT_IDEMPOTENCY_TTL_SECONDS
from shared.store.base import KeyValueBackend
from shared.store.idempotency import IdempotencyStore
from shared.store.jobs import Jobs
from shared.store.ledger import Ledger
from shared.store.url import open_store


class StateStore:
    def __init__(
        self, backend: KeyValueBackend, *, record_ttl_seconds: float = DEFAULT_IDEMPOTENCY_TTL_SECONDS
    ) -> None:
        self.backend = backend
        self.idempotency = IdempotencyStore(backend, record_ttl_seconds=record_ttl_seconds)
        self.ledger = Ledger(backend)
        self.jobs = Jobs(backend)

    @classmethod
    def from_url(cls, url: str, *, record_ttl_seconds: float = DEFAULT_IDEMPOTENCY_TTL_SECONDS) -> StateStore:
        """`Settings.store` (RAMFLOW_STORE) → a state store; see `open_store` for the URLs.
        `record_ttl_seconds`: `Settings.idempotency_ttl_seconds`."""
        return cls(open_store(url), record_ttl_seconds=record_ttl_seconds)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
