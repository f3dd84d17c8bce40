"""The local default backend: one SQLite file, safe for many threads and processes.

Every conditional write is one `BEGIN IMMEDIATE` transaction, which takes the database's write lock
before reading the version it compares, so a writer in another process cannot slip in between.
Threads share one connection behind a lock; other processes wait on SQLite's busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.store.base import BaseBackend, expiry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_expiry ON documents (expires_at) WHERE expires_at IS NOT NULL;
-- The store-wide version counter: versions never repeat, even for a deleted and re-created key.
CREATE TABLE IF NOT EXISTS version_counter (id INTEGER PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL);
INSERT OR IGNORE INTO version_counter VALUES (0, 0);
"""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SqliteBackend(BaseBackend):
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: str | Path, *, busy_timeout_seconds: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._translated_errors():
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_seconds, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            with self._transaction() as db:
                db.execute("DELETE FROM documents WHERE expires_at <= ?", (time.time(),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _get(self, key: str) -> tuple[str, int] | None:
        with self._lock:
            return self._db.execute(
                f"SELECT value, version FROM documents WHERE key = ? AND {_LIVE}", (key, time.time())
            ).fetchone()

    def _scan(self, prefix: str) -> Iterable[tuple[str, str, int]]:
        with self._lock:
            return self._db.execute(
                f"SELECT key, value, version FROM documents WHERE substr(key, 1, ?) = ? AND {_LIVE}",
                (len(prefix), prefix, time.time()),
            ).fetchall()

    def _swap(
        self, key: str, expected_version: int | None, text: str | None, ttl_seconds: float | None
    ) -> bool:
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                f"SELECT version FROM documents WHERE key = ? AND {_LIVE}", (key, now)
            ).fetchone()
            if (row[0] if row else None) != expected_version:
                return False
            if text is None:
                db.execute("DELETE FROM documents WHERE key = ?", (key,))
                return True
            db.execute("UPDATE version_counter SET last = last + 1")
            (version,) = db.execute("SELECT last FROM version_counter").fetchone()
            db.execute(
                "INSERT OR REPLACE INTO documents (key, value, version, expires_at) VALUES (?, ?, ?, ?)",
                (key, text, version, expiry(ttl_seconds, now)),
            )
            return True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
