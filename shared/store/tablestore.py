"""The production backend on Tablestore (OTS), with the conditional writes the store contract needs.

One table, primary key `key` (STRING); attribute columns `value` (the JSON text), `version`
(INTEGER) and `expires_at` (INTEGER, ms since the epoch; absent = permanent). Tablestore row
operations are atomic and strongly consistent, and each write below names the version it read:

- a new key: PutRow with `EXPECT_NOT_EXIST`;
- replacing a document, or taking the key of an expired or deleted one: UpdateRow with
  `EXPECT_EXIST` and `version == <the version read>`;
- deleting: an UpdateRow of the same kind that leaves a tombstone (`version` only), so the key's
  versions keep increasing: a version read before a delete can never match a later document (no
  ABA) — the contract's "versions never repeat", without a global counter row every write would
  contend on;
- `purge()` removes tombstones and long-expired rows with DeleteRow (`version == <read>`); a key
  that comes back later starts from the clock (`version = max(previous + 1, now in µs)`), so it
  still cannot meet an old version unless the clock steps back further than the purge grace.

Per-document TTL is kept by the backend (`expires_at`), not by the table's TTL, which applies to
every row alike. A write whose condition fails because another writer touched the row in between
is re-read and re-decided, so `False` always means "the live document is not the one you named".
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tablestore import (
    INF_MAX,
    INF_MIN,
    ComparatorType,
    Condition,
    CredentialsProvider,
    OTSClient,
    OTSClientError,
    OTSServiceError,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    SingleColumnCondition,
    TableMeta,
    TableOptions,
)
from tablestore.credentials import Credentials
from tablestore.metadata import CapacityUnit, Direction

from shared.errors import ConfigError
from shared.store.base import BaseBackend

DEFAULT_TABLE = "ramflow_state"
PK = "key"
COLUMNS = ["value", "version", "expires_at"]
CONDITION_FAILED = "OTSConditionCheckFail"
MAX_RACE_RETRIES = 64
DEFAULT_PURGE_GRACE_SECONDS = 7 * 24 * 3600
LOGGER_NAME = "ramflow.tablestore"

# The SDK logs every failed condition at ERROR; here that is ordinary control flow, and real failures
# reach the caller as StoreError anyway.
logging.getLogger(LOGGER_NAME).setLevel(logging.CRITICAL)


class EnvironmentCredentials(CredentialsProvider):
    """The function's own credentials, read afresh for every request: FC rotates the role's STS token."""

    def get_credentials(self) -> Credentials:
        key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not key_id or not secret:
            raise ConfigError("the tablestore:// store needs ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET")
        return Credentials(key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)


class _Stored:
    """One row as read: its version and, if the document is live, its text."""

    def __init__(self, version: int, text: str | None, expires_at_ms: int | None):
        self.version = version
        self.text = text
        self.expires_at_ms = expires_at_ms

    def live(self, now_ms: int) -> bool:
        return self.text is not None and (self.expires_at_ms is None or self.expires_at_ms > now_ms)


def _row(attribute_columns: Iterable[Any]) -> _Stored | None:
    columns = {column[0]: column[1] for column in attribute_columns or []}
    if "version" not in columns:
        return None
    text = columns.get("value")
    expires = columns.get("expires_at")
    return _Stored(int(columns["version"]), str(text) if text is not None else None, expires)


class TablestoreBackend(BaseBackend):
    driver_errors = (OTSClientError, OTSServiceError)

    def __init__(self, client: OTSClient, table: str = DEFAULT_TABLE, clock: Callable[[], float] = time.time):
        self.client = client
        self.table = table
        self._clock = clock

    @classmethod
    def from_url(cls, url: str) -> TablestoreBackend:
        """`tablestore://<instance>.<region>.ots.aliyuncs.com/<table>`

        Options: `?instance=` (default: the host's first label), `?region=` (default: its second;
        turns on V4 signing), `?scheme=http` (the local fake only). Credentials: the function's
        (`ALIBABA_CLOUD_ACCESS_KEY_ID|SECRET|SECURITY_TOKEN`), or `id:secret@` in the URL for local tests.
        """
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigError(
                "store URL tablestore:// needs a host: tablestore://<instance>.<region>.ots.aliyuncs.com/<table>"
            )
        options = dict(parse_qsl(parts.query))
        labels = parts.hostname.split(".")
        instance = options.get("instance") or labels[0]
        region = options.get("region") or (labels[1] if len(labels) > 2 else None)
        scheme = options.get("scheme", "https")
        if scheme not in {"http", "https"}:
            raise ConfigError("store URL tablestore://: ?scheme= is http or https")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        table = unquote(parts.path.strip("/")) or DEFAULT_TABLE
        credentials: dict[str, Any] = (
            {"access_key_id": unquote(parts.username), "access_key_secret": unquote(parts.password or "")}
            if parts.username
            else {"credentials_provider": EnvironmentCredentials()}
        )
        client = OTSClient(
            f"{scheme}://{netloc}",
            instance_name=instance,
            region=region,
            socket_timeout=10,
            max_connection=16,
            logger_name=LOGGER_NAME,
            **credentials,
        )
        return cls(client, table)

    def close(self) -> None:
        pool = getattr(getattr(self.client, "connection", None), "pool", None)
        if pool is not None:
            pool.clear()

    # --- reads ------------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _read(self, key: str) -> _Stored | None:
        _, row, _ = self.client.get_row(self.table, [(PK, key)], columns_to_get=COLUMNS, max_version=1)
        return None if row is None else _row(row.attribute_columns)

    def _get(self, key: str) -> tuple[str, int] | None:
        stored = self._read(key)
        if stored is None or not stored.live(self._now_ms()):
            return None
        assert stored.text is not None
        return stored.text, stored.version

    def _rows(self, prefix: str) -> Iterable[tuple[str, _Stored]]:
        start: Any = [(PK, prefix if prefix else INF_MIN)]
        while start is not None:
            _, next_start, rows, _ = self.client.get_range(
                self.table, Direction.FORWARD, start, [(PK, INF_MAX)], columns_to_get=COLUMNS, max_version=1
            )
            for row in rows:
                key = str(row.primary_key[0][1])
                if not key.startswith(prefix):
                    return  # keys are sorted: past the prefix, nothing more can match
                stored = _row(row.attribute_columns)
                if stored is not None:
                    yield key, stored
            start = next_start

    def _scan(self, prefix: str) -> Iterable[tuple[str, str, int]]:
        now = self._now_ms()
        return [
            (key, s.text, s.version) for key, s in self._rows(prefix) if s.live(now) and s.text is not None
        ]

    # --- the one compare-and-set ------------------------------------------------------------------
    def _swap(
        self, key: str, expected_version: int | None, text: str | None, ttl_seconds: float | None
    ) -> bool:
        for _ in range(MAX_RACE_RETRIES):
            now_ms = self._now_ms()
            stored = self._read(key)
            live_version = stored.version if stored is not None and stored.live(now_ms) else None
            if live_version != expected_version:
                return False
            version = max((stored.version + 1) if stored else 0, int(self._clock() * 1_000_000))
            expires = None if ttl_seconds is None else now_ms + int(ttl_seconds * 1000)
            try:
                if stored is None:
                    self._create(key, text, version, expires)
                else:
                    self._replace(key, stored.version, text, version, expires)
                return True
            except OTSServiceError as exc:
                if exc.code != CONDITION_FAILED:
                    raise
                if expected_version is not None:
                    return False  # the row moved past the version named, and versions only grow
                # The key was free when read but someone wrote it since: read again and decide again.
        raise OTSClientError(f"gave up after {MAX_RACE_RETRIES} conflicting writes to one key")

    def _create(self, key: str, text: str | None, version: int, expires: int | None) -> None:
        assert text is not None, "a delete always names a live version, so its row exists"
        columns: list[tuple[str, Any]] = [("value", text), ("version", version)]
        if expires is not None:
            columns.append(("expires_at", expires))
        self.client.put_row(
            self.table, Row([(PK, key)], columns), Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)
        )

    def _replace(self, key: str, seen: int, text: str | None, version: int, expires: int | None) -> None:
        put: list[tuple[str, Any]] = [("version", version)]
        remove = ["value", "expires_at"]  # a tombstone keeps the version only
        if text is not None:
            put.append(("value", text))
            remove = ["expires_at"]
            if expires is not None:
                put.append(("expires_at", expires))
                remove = []
        change: dict[str, list[Any]] = {"PUT": put}
        if remove:
            change["DELETE_ALL"] = remove
        self.client.update_row(self.table, Row([(PK, key)], change), self._same_version(seen))

    @staticmethod
    def _same_version(version: int) -> Condition:
        return Condition(
            RowExistenceExpectation.EXPECT_EXIST,
            SingleColumnCondition("version", version, ComparatorType.EQUAL, pass_if_missing=False),
        )

    # --- housekeeping -----------------------------------------------------------------------------
    def purge(self, grace_seconds: float = DEFAULT_PURGE_GRACE_SECONDS) -> int:
        """Delete tombstones and documents expired more than `grace_seconds` ago; returns how many.

        Each DeleteRow names the version it saw, so a key written meanwhile is left alone.
        """
        cutoff = self._now_ms() - int(grace_seconds * 1000)
        removed = 0
        with self._translated_errors():
            for key, stored in list(self._rows("")):
                # A tombstone died when it was written, and versions are write times in µs.
                dead_since = stored.version // 1000 if stored.text is None else stored.expires_at_ms
                if dead_since is None or dead_since > cutoff:
                    continue
                try:
                    self.client.delete_row(self.table, Row([(PK, key)]), self._same_version(stored.version))
                    removed += 1
                except OTSServiceError as exc:
                    if exc.code != CONDITION_FAILED:
                        raise
        return removed


def create_table(client: OTSClient, table: str = DEFAULT_TABLE) -> None:
    """The table the backend expects (one-time set-up; the functions' role needs no CreateTable)."""
    client.create_table(
        TableMeta(table, [(PK, "STRING")]),
        TableOptions(time_to_live=-1, max_version=1),
        ReservedThroughput(CapacityUnit(0, 0)),
    )
