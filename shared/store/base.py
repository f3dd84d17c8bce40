"""The state store's one primitive: versioned JSON documents with conditional writes.

Every backend offers the same five operations; the idempotency records and the ledger are built on
them alone. A write names the version it expects (or "absent"), so two writers racing on one key
cannot both win, whether they are threads, processes or functions on different machines.

Contract every backend keeps (the tests in tests/store check it for each one):

- `version` is an integer that changes on every write and never repeats for a key, even after the
  key was deleted or expired: a stale version can never match a newer document (no ABA). Memory,
  SQLite and Redis draw versions from one store-wide counter; a Tablestore backend can keep the
  version in an attribute column fed by an atomic-increment row and express the three writes as
  PutRow / UpdateRow / DeleteRow with a row-existence or column condition.
- A document past its TTL is gone: `get` and `scan` do not see it, `put_if_absent` may take its key,
  and its version no longer matches. A write without a TTL makes the document permanent again.
- Values are JSON objects; what comes back is a fresh copy, never shared with the store.
- Nothing that looks like a plaintext secret is stored: a string under a field whose name mentions
  secret, password or token must be `sealed_*` ciphertext, otherwise the write raises StoreError.
  This is a net under the flows, not a proof: a secret under an innocent name passes.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from shared.errors import StoreError

JsonObject = dict[str, Any]

_PLAINTEXT_SECRET_FIELD = re.compile(r"(?!sealed_).*(secret|passw(or)?d|token)", re.IGNORECASE)


@dataclass(frozen=True)
class Document:
    """A stored JSON object and the version that a conditional write must name to replace it."""

    value: JsonObject
    version: int


class KeyValueBackend(Protocol):
    """Versioned JSON documents with atomic conditional writes (see the module docstring)."""

    def get(self, key: str) -> Document | None: ...

    def put_if_absent(self, key: str, value: JsonObject, ttl_seconds: float | None = None) -> bool: ...

    def put_if_version(
        self, key: str, value: JsonObject, expected_version: int, ttl_seconds: float | None = None
    ) -> bool: ...

    def delete_if_version(self, key: str, expected_version: int) -> bool: ...

    def scan(self, prefix: str) -> list[tuple[str, Document]]: ...

    def close(self) -> None: ...


class BaseBackend(ABC):
    """What backends share: argument checks, JSON encoding, the secret guard, error translation.

    A backend implements three primitives over encoded text — `_get`, `_scan` and `_swap`, the one
    atomic compare-and-set from which all three conditional writes are made — and `close`.
    """

    driver_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def get(self, key: str) -> Document | None:
        with self._translated_errors():
            found = self._get(_checked_key(key))
        return None if found is None else Document(_decode(found[0]), found[1])

    def put_if_absent(self, key: str, value: JsonObject, ttl_seconds: float | None = None) -> bool:
        return self._conditional_write(key, None, value, ttl_seconds)

    def put_if_version(
        self, key: str, value: JsonObject, expected_version: int, ttl_seconds: float | None = None
    ) -> bool:
        return self._conditional_write(key, expected_version, value, ttl_seconds)

    def delete_if_version(self, key: str, expected_version: int) -> bool:
        return self._conditional_write(key, expected_version, None, None)

    def scan(self, prefix: str) -> list[tuple[str, Document]]:
        with self._translated_errors():
            found = sorted(self._scan(prefix))
        return [(key, Document(_decode(text), version)) for key, text, version in found]

    def __enter__(self) -> BaseBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _get(self, key: str) -> tuple[str, int] | None:
        """The live document's text and version."""

    @abstractmethod
    def _scan(self, prefix: str) -> Iterable[tuple[str, str, int]]:
        """(key, text, version) of every live document whose key starts with `prefix`, any order."""

    @abstractmethod
    def _swap(
        self, key: str, expected_version: int | None, text: str | None, ttl_seconds: float | None
    ) -> bool:
        """Atomically: if the live version is `expected_version` (None: no live document), store
        `text` under a fresh version (None: delete) and return True; otherwise change nothing."""

    def _conditional_write(
        self, key: str, expected_version: int | None, value: JsonObject | None, ttl_seconds: float | None
    ) -> bool:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        text = None if value is None else _encode(value)
        with self._translated_errors():
            return self._swap(_checked_key(key), expected_version, text, ttl_seconds)

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except self.driver_errors as exc:
            raise StoreError(f"{type(self).__name__}: {type(exc).__name__}: {exc}") from exc


def expiry(ttl_seconds: float | None, now: float) -> float | None:
    """The wall-clock instant a document written at `now` with this TTL stops being live."""
    return None if ttl_seconds is None else now + ttl_seconds


def refuse_plaintext_secrets(value: Any, path: str = "") -> None:
    """Raise StoreError if a string sits under a secret-sounding field not named `sealed_*`.

    The message names the field, never its value.
    """
    if isinstance(value, dict):
        for name, item in value.items():
            field = f"{path}.{name}" if path else str(name)
            if isinstance(item, str) and _PLAINTEXT_SECRET_FIELD.match(str(name)):
                raise StoreError(
                    f"refusing to store field {field!r}: secrets are stored only as sealed_* ciphertext"
                )
            refuse_plaintext_secrets(item, field)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_plaintext_secrets(item, f"{path}[{index}]")


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("a store key is a non-empty string")
    return key


def _encode(value: JsonObject) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"a stored value is a JSON object, not {type(value).__name__}")
    refuse_plaintext_secrets(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _decode(text: str) -> JsonObject:
    return json.loads(text)
