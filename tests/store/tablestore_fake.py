"""A loopback Tablestore that speaks the SDK's own wire protocol, for the store contract tests.

Why a server and not a stub of `OTSClient`: the backend's requests go through the real `tablestore`
SDK unchanged — protobuf and PlainBuffer encoding of rows and conditions, request signatures (V2 and
V4), response signatures and MD5s, error decoding (`OTSConditionCheckFail` as an `OTSServiceError`),
pagination of GetRange — and processes in the cross-process test reach it like a real endpoint.

What it models (one instance, in memory, rows locked one at a time like Tablestore's row
atomicity): CreateTable / ListTable / DeleteTable; GetRow, PutRow, UpdateRow (PUT, DELETE_ALL,
DELETE, INCREMENT), DeleteRow and GetRange (both directions, `limit`, a small page size so paging is
exercised) with `columns_to_get`; conditions = row existence plus single-column and composite
(AND/OR/NOT) column conditions with `pass_if_missing`. One version per cell (max_versions 1).
What it does not: CRC checks of PlainBuffer cells, filters on reads, multi-version cells, secondary
indexes, search, transactions, capacity accounting.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from tablestore import consts
from tablestore.auth import RequestContext, SignV2, SignV4
from tablestore.credentials import Credentials
from tablestore.metadata import INF_MAX, INF_MIN
from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder
from tablestore.protobuf import table_store_filter_pb2 as filter_pb2
from tablestore.protobuf import table_store_pb2 as pb2

from local.loopback import LoopbackHTTPServer

HEADER = 0x75
(TAG_ROW_PK, TAG_ROW_DATA, TAG_CELL, TAG_CELL_NAME, TAG_CELL_VALUE, TAG_CELL_TYPE) = (1, 2, 3, 4, 5, 6)
(TAG_CELL_TIMESTAMP, TAG_DELETE_ROW_MARKER, TAG_ROW_CHECKSUM, TAG_CELL_CHECKSUM) = (7, 8, 9, 10)
VT_INTEGER, VT_DOUBLE, VT_BOOLEAN, VT_STRING, VT_BLOB, VT_INF_MIN, VT_INF_MAX = 0, 1, 2, 3, 7, 9, 10
DELETE_ALL_VERSION, DELETE_ONE_VERSION, INCREMENT = 1, 3, 4


class Refused(Exception):
    """An error reply: HTTP status, Tablestore error code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# --- PlainBuffer (the SDK only writes requests and reads responses; this is the other side) ---------
class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def int32(self) -> int:
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return value

    def int64(self) -> int:
        (value,) = struct.unpack_from("<q", self.data, self.pos)
        self.pos += 8
        return value

    def raw(self, size: int) -> bytes:
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def value(self) -> Any:
        """A typed value: type byte, then its bytes (no length prefix)."""
        kind = self.byte()
        if kind == VT_INTEGER:
            return self.int64()
        if kind == VT_DOUBLE:
            return struct.unpack("<d", self.raw(8))[0]
        if kind == VT_BOOLEAN:
            return self.byte() != 0
        if kind == VT_STRING:
            return self.raw(self.int32()).decode("utf-8")
        if kind == VT_BLOB:
            return bytearray(self.raw(self.int32()))
        if kind == VT_INF_MIN:
            return INF_MIN
        if kind == VT_INF_MAX:
            return INF_MAX
        raise Refused(400, "OTSParameterInvalid", f"unsupported value type {kind}")


def decode_row(data: bytes) -> tuple[list[tuple[str, Any]], list[tuple[str, Any, int | None]], bool]:
    """(primary key, cells as (name, value-or-None, op), delete marker) of one PlainBuffer row."""
    reader = _Reader(data)
    if reader.int32() != HEADER:
        raise Refused(400, "OTSParameterInvalid", "bad PlainBuffer header")
    if reader.byte() != TAG_ROW_PK:
        raise Refused(400, "OTSParameterInvalid", "expected the primary key")
    primary_key: list[tuple[str, Any]] = []
    cells: list[tuple[str, Any, int | None]] = []
    tag = reader.byte()
    while tag == TAG_CELL:
        name, value, _op, tag = _cell(reader)
        primary_key.append((name, value))
    if tag == TAG_ROW_DATA:
        tag = reader.byte()
        while tag == TAG_CELL:
            name, value, op, tag = _cell(reader)
            cells.append((name, value, op))
    deleted = tag == TAG_DELETE_ROW_MARKER
    if deleted:
        tag = reader.byte()
    if tag != TAG_ROW_CHECKSUM:
        raise Refused(400, "OTSParameterInvalid", "expected the row checksum")
    return primary_key, cells, deleted


def _cell(reader: _Reader) -> tuple[str, Any, int | None, int]:
    if reader.byte() != TAG_CELL_NAME:
        raise Refused(400, "OTSParameterInvalid", "expected a cell name")
    name = reader.raw(reader.int32()).decode("utf-8")
    value: Any = None
    op: int | None = None
    tag = reader.byte()
    if tag == TAG_CELL_VALUE:
        reader.int32()  # the value's length, implied by its type
        value = reader.value()
        tag = reader.byte()
    if tag == TAG_CELL_TYPE:
        op = reader.byte()
        tag = reader.byte()
    if tag == TAG_CELL_TIMESTAMP:
        reader.int64()
        tag = reader.byte()
    if tag != TAG_CELL_CHECKSUM:
        raise Refused(400, "OTSParameterInvalid", "expected a cell checksum")
    reader.byte()
    return name, value, op, reader.byte()


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is INF_MIN:
        return (0, b"")
    if value is INF_MAX:
        return (9, b"")
    if isinstance(value, bool):
        return (4, value)
    if isinstance(value, int):
        return (1, value)
    if isinstance(value, str):
        return (2, value.encode("utf-8"))  # Tablestore orders strings by their bytes
    return (3, bytes(value))


def _pk_key(primary_key: list[tuple[str, Any]]) -> tuple[tuple[int, Any], ...]:
    return tuple(_sort_key(v) for _, v in primary_key)


# --- tables and conditions ---------------------------------------------------------------------------
class _Table:
    def __init__(self, name: str, pk_names: list[str]):
        self.name = name
        self.pk_names = pk_names
        self.rows: dict[
            tuple[tuple[int, Any], ...], tuple[list[tuple[str, Any]], dict[str, tuple[Any, int]]]
        ] = {}


_COMPARE: dict[int, Callable[[Any, Any], bool]] = {
    filter_pb2.CT_EQUAL: lambda a, b: a == b,
    filter_pb2.CT_NOT_EQUAL: lambda a, b: a != b,
    filter_pb2.CT_GREATER_THAN: lambda a, b: a > b,
    filter_pb2.CT_GREATER_EQUAL: lambda a, b: a >= b,
    filter_pb2.CT_LESS_THAN: lambda a, b: a < b,
    filter_pb2.CT_LESS_EQUAL: lambda a, b: a <= b,
}


def _column_condition_holds(raw: bytes, columns: dict[str, tuple[Any, int]]) -> bool:
    condition = filter_pb2.Filter()
    condition.ParseFromString(raw)
    if condition.type == filter_pb2.FT_SINGLE_COLUMN_VALUE:
        single = filter_pb2.SingleColumnValueFilter()
        single.ParseFromString(condition.filter)
        present = single.column_name in columns
        if single.comparator == filter_pb2.CT_EXIST:
            return present
        if single.comparator == filter_pb2.CT_NOT_EXIST:
            return not present
        if not present:
            return not single.filter_if_missing
        expected = _Reader(single.column_value).value()
        actual = columns[single.column_name][0]
        if type(actual) is not type(expected) and not (
            isinstance(actual, int | float) and isinstance(expected, int | float)
        ):
            return single.comparator == filter_pb2.CT_NOT_EQUAL
        return _COMPARE[single.comparator](actual, expected)
    if condition.type == filter_pb2.FT_COMPOSITE_COLUMN_VALUE:
        composite = filter_pb2.CompositeColumnValueFilter()
        composite.ParseFromString(condition.filter)
        results = [_column_condition_holds(sub.SerializeToString(), columns) for sub in composite.sub_filters]
        if composite.combinator == filter_pb2.LO_AND:
            return all(results)
        if composite.combinator == filter_pb2.LO_OR:
            return any(results)
        return not results[0]
    raise Refused(400, "OTSParameterInvalid", "unsupported column condition")


class FakeTablestore:
    """One Tablestore instance on 127.0.0.1; `url(table)` is a `tablestore://` store URL for it."""

    PAGE_SIZE = 2  # rows per GetRange reply: small, so every scan pages

    def __init__(self, instance: str = "ramflow-test", keys: dict[str, str] | None = None):
        self.instance = instance
        self.keys = keys or {"LTAIfaketablestore": "fake-tablestore-secret"}
        self.tables: dict[str, _Table] = {}
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> FakeTablestore:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:  # noqa: N802 - the base class's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = fake.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = self._server.start_thread("tablestore-fake")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop_thread(self._thread)
            self._server = None

    def __enter__(self) -> FakeTablestore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, table: str, *, region: str | None = "cn-hangzhou") -> str:
        key_id, secret = next(iter(self.keys.items()))
        port = self.endpoint.rsplit(":", 1)[1]
        query = f"instance={self.instance}&scheme=http" + (f"&region={region}" if region else "")
        return f"tablestore://{key_id}:{secret}@127.0.0.1:{port}/{table}?{query}"

    # --- the protocol ---
    def handle(
        self, path: str, raw_headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {k.lower(): v for k, v in raw_headers.items()}
        api = path.rsplit("/", 1)[-1]
        signer_and_key: tuple[Any, Any] | None = None
        try:
            signer_and_key = self._authenticate(path, headers, body)
            handler = getattr(self, f"_api_{api}", None)
            if handler is None:
                raise Refused(400, "OTSUnsupportOperation", f"{api} is not supported by the fake")
            self.calls.append(api)
            status, payload = 200, handler(body).SerializeToString()
        except Refused as refusal:
            error = pb2.Error(code=refusal.code, message=refusal.message)
            status, payload = refusal.status, error.SerializeToString()
        return status, self._reply_headers(path, headers, payload, signer_and_key), payload

    def _authenticate(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Any, Any]:
        if headers.get("x-ots-instancename") != self.instance:
            raise Refused(403, "OTSAuthFailed", "unknown instance")
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        if headers.get("x-ots-contentmd5") != md5:
            raise Refused(400, "OTSInvalidPK", "content MD5 mismatch")
        key_id = headers.get("x-ots-accesskeyid", "")
        secret = self.keys.get(key_id)
        if secret is None:
            raise Refused(403, "OTSAuthFailed", "unknown AccessKey")
        context = RequestContext(Credentials(key_id, secret, headers.get("x-ots-ststoken")))
        signed = {
            k: v
            for k, v in headers.items()
            if k not in {consts.OTS_HEADER_SIGNATURE, consts.OTS_HEADER_SIGNATURE_V4}
        }
        signer: Any
        if consts.OTS_HEADER_SIGNATURE_V4 in headers:
            signer = SignV4(
                "utf-8",
                region=headers.get(consts.OTS_HEADER_SIGN_REGION),
                sign_date=headers.get(consts.OTS_HEADER_SIGN_DATE),
            )
            claimed = headers[consts.OTS_HEADER_SIGNATURE_V4]
            name = consts.OTS_HEADER_SIGNATURE_V4
        else:
            signer = SignV2("utf-8")
            claimed = headers.get(consts.OTS_HEADER_SIGNATURE, "")
            name = consts.OTS_HEADER_SIGNATURE
        recomputed = {
            k: v
            for k, v in signed.items()
            if k not in {consts.OTS_HEADER_SIGN_DATE, consts.OTS_HEADER_SIGN_REGION}
        }
        signer.make_request_signature_and_add_headers(path, recomputed, context)
        if recomputed[name] != claimed:
            raise Refused(403, "OTSAuthFailed", "signature mismatch")
        return signer, signer.get_signing_key(context)

    def _reply_headers(
        self, path: str, request: dict[str, str], payload: bytes, signer_and_key: tuple[Any, Any] | None
    ) -> dict[str, str]:
        headers = {
            "x-ots-contentmd5": base64.b64encode(hashlib.md5(payload).digest()).decode(),
            "x-ots-requestid": str(uuid.uuid4()),
            "x-ots-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "x-ots-contenttype": "protocol buffer",
        }
        if signer_and_key is not None:
            signer, key = signer_and_key
            signature = signer.make_response_signature(path, headers, key)
            headers["authorization"] = f"OTS {request.get('x-ots-accesskeyid')}:{signature}"
        return headers

    # --- tables ---
    def _table(self, name: str) -> _Table:
        table = self.tables.get(name)
        if table is None:
            raise Refused(404, "OTSObjectNotExist", "Requested table does not exist.")
        return table

    def _api_CreateTable(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.CreateTableRequest()
        request.ParseFromString(body)
        name = request.table_meta.table_name
        with self.lock:
            if name in self.tables:
                raise Refused(409, "OTSObjectAlreadyExist", "Requested table already exists.")
            self.tables[name] = _Table(name, [pk.name for pk in request.table_meta.primary_key])
        return pb2.CreateTableResponse()

    def _api_ListTable(self, body: bytes) -> Any:  # noqa: N802
        return pb2.ListTableResponse(table_names=sorted(self.tables))

    def _api_DeleteTable(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.DeleteTableRequest()
        request.ParseFromString(body)
        with self.lock:
            self._table(request.table_name)
            del self.tables[request.table_name]
        return pb2.DeleteTableResponse()

    # --- rows ---
    @staticmethod
    def _consumed(read: int, write: int) -> Any:
        return pb2.ConsumedCapacity(capacity_unit=pb2.CapacityUnit(read=read, write=write))

    @staticmethod
    def _check(condition: Any, existing: dict[str, tuple[Any, int]] | None) -> None:
        expectation = condition.row_existence
        if expectation == pb2.EXPECT_EXIST and existing is None:
            raise Refused(403, "OTSConditionCheckFail", "Condition check failed.")
        if expectation == pb2.EXPECT_NOT_EXIST and existing is not None:
            raise Refused(403, "OTSConditionCheckFail", "Condition check failed.")
        column_condition = condition.column_condition if condition.HasField("column_condition") else b""
        if column_condition and not _column_condition_holds(column_condition, existing or {}):
            raise Refused(403, "OTSConditionCheckFail", "Condition check failed.")

    @staticmethod
    def _row_bytes(
        primary_key: list[tuple[str, Any]], columns: dict[str, tuple[Any, int]], wanted: list[str]
    ) -> bytes:
        cells = [(n, v, ts) for n, (v, ts) in sorted(columns.items()) if not wanted or n in wanted]
        return bytes(PlainBufferBuilder.serialize_for_put_row(primary_key, cells))

    def _api_GetRow(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.GetRowRequest()
        request.ParseFromString(body)
        primary_key, _, _ = decode_row(request.primary_key)
        with self.lock:
            found = self._table(request.table_name).rows.get(_pk_key(primary_key))
            row = b"" if found is None else self._row_bytes(found[0], found[1], list(request.columns_to_get))
        return pb2.GetRowResponse(consumed=self._consumed(1, 0), row=row)

    def _api_PutRow(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.PutRowRequest()
        request.ParseFromString(body)
        primary_key, cells, _ = decode_row(request.row)
        now = int(time.time() * 1000)
        with self.lock:
            table = self._table(request.table_name)
            existing = table.rows.get(_pk_key(primary_key))
            self._check(request.condition, existing[1] if existing else None)
            table.rows[_pk_key(primary_key)] = (primary_key, {n: (v, now) for n, v, _ in cells})
        return pb2.PutRowResponse(consumed=self._consumed(0, 1))

    def _api_UpdateRow(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.UpdateRowRequest()
        request.ParseFromString(body)
        primary_key, cells, _ = decode_row(request.row_change)
        now = int(time.time() * 1000)
        with self.lock:
            table = self._table(request.table_name)
            existing = table.rows.get(_pk_key(primary_key))
            self._check(request.condition, existing[1] if existing else None)
            columns = dict(existing[1]) if existing else {}
            for name, value, op in cells:
                if op in (DELETE_ALL_VERSION, DELETE_ONE_VERSION):
                    columns.pop(name, None)
                elif op == INCREMENT:
                    columns[name] = ((columns.get(name, (0, 0))[0] or 0) + value, now)
                else:
                    columns[name] = (value, now)
            table.rows[_pk_key(primary_key)] = (primary_key, columns)
        return pb2.UpdateRowResponse(consumed=self._consumed(0, 1))

    def _api_DeleteRow(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.DeleteRowRequest()
        request.ParseFromString(body)
        primary_key, _, _ = decode_row(request.primary_key)
        with self.lock:
            table = self._table(request.table_name)
            existing = table.rows.get(_pk_key(primary_key))
            self._check(request.condition, existing[1] if existing else None)
            table.rows.pop(_pk_key(primary_key), None)
        return pb2.DeleteRowResponse(consumed=self._consumed(0, 1))

    def _api_GetRange(self, body: bytes) -> Any:  # noqa: N802
        request = pb2.GetRangeRequest()
        request.ParseFromString(body)
        start, _, _ = decode_row(request.inclusive_start_primary_key)
        end, _, _ = decode_row(request.exclusive_end_primary_key)
        forward = request.direction == pb2.FORWARD
        low, high = _pk_key(start), _pk_key(end)
        limit = min(request.limit or self.PAGE_SIZE, self.PAGE_SIZE)
        with self.lock:
            table = self._table(request.table_name)
            keys = sorted(table.rows, reverse=not forward)
            if forward:
                selected = [k for k in keys if low <= k < high]
            else:
                selected = [k for k in keys if high < k <= low]
            page, rest = selected[:limit], selected[limit:]
            encoded = [self._row_bytes(*table.rows[k], list(request.columns_to_get)) for k in page]
            next_start = b""
            if rest:
                next_start = bytes(PlainBufferBuilder.serialize_primary_key(table.rows[rest[0]][0]))
        rows = encoded[0] + b"".join(e[4:] for e in encoded[1:]) if encoded else b""
        return pb2.GetRangeResponse(
            consumed=self._consumed(1, 0), rows=rows, next_start_primary_key=next_start
        )


# --- pytest fixtures (imported by tests/store/conftest.py) -----------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - the fake is also usable outside pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def tablestore_fake() -> Any:
        with FakeTablestore() as fake:
            yield fake

    @pytest.fixture
    def tablestore_url(tablestore_fake: FakeTablestore) -> str:
        """A fresh table of its own on the loopback Tablestore, created through the SDK."""
        from shared.store.tablestore import TablestoreBackend, create_table

        table = f"t{uuid.uuid4().hex[:16]}"
        url = tablestore_fake.url(table)
        backend = TablestoreBackend.from_url(url)
        create_table(backend.client, table)
        backend.close()
        return url
