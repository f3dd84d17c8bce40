"""One object for a function's state: idempotency records and the ledger, on one backend."""

from __future__ import annotations

from shared.store.base import KeyValueBackend
from shared.store.idempotency import IdempotencyStore
from shared.store.ledger import Ledger
from shared.store.url import open_store


class StateStore:
    def __init__(self, backend: KeyValueBackend) -> None:
        self.backend = backend
        self.idempotency = IdempotencyStore(backend)
        self.ledger = Ledger(backend)

    @classmethod
    def from_url(cls, url: str) -> StateStore:
        """`Settings.store` (RAMFLOW_STORE) → a state store; see `open_store` for the URLs."""
        return cls(open_store(url))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
