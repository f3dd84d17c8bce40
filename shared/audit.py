"""The audit trail: one JSON line per decision or change, failures included, secrets masked.

Lines go to the `ramflow.audit` logger (Function Compute ships logs to SLS, where each line is one
JSON object the Logstore indexes, see README "Audit and logs") and, once `configure_audit(path)`
names a file, are appended there too — the local runtime and the demo read that file.

Every line names the invocation it belongs to: `request_id` (FC's request id, or the CLI run's),
`function` (the FC function, or `ramflow-cli <command>`) and `event_id` (the CloudEvent's id), bound
once per invocation with `audit_scope` instead of threaded through every flow.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared.redact import redact

LOGGER_NAME = "ramflow.audit"

logger = logging.getLogger(LOGGER_NAME)
logger.setLevel(logging.INFO)  # audit lines must not depend on the root logger's level

SCOPE_FIELDS = ("request_id", "function", "event_id")
_scope: ContextVar[dict[str, str | None] | None] = ContextVar("audit_scope", default=None)

_sink: Path | None = None
_sink_lock = threading.Lock()


def configure_audit(path: str | Path | None) -> None:
    """Also append audit lines to `path` (created with its folder); None stops writing a file."""
    global _sink
    with _sink_lock:
        _sink = Path(path) if path else None
        if _sink is not None:
            _sink.parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def audit_scope(**fields: str | None) -> Iterator[dict[str, str | None]]:
    """Within the block, audit lines (and JSON log lines) carry these of SCOPE_FIELDS, laid over the
    enclosing scope's: the handler binds the request and function, `process_event` the event."""
    unknown = set(fields) - set(SCOPE_FIELDS)
    if unknown:
        raise TypeError(f"audit_scope takes {SCOPE_FIELDS}, not {sorted(unknown)}")
    merged = {**(_scope.get() or {}), **fields}
    token = _scope.set(merged)
    try:
        yield merged
    finally:
        _scope.reset(token)


def current_scope() -> dict[str, str | None]:
    scope = _scope.get() or {}
    return {name: scope.get(name) for name in SCOPE_FIELDS}


def audit(action: str, *, actor: str, ticket_id: str | None, outcome: str, **details: Any) -> dict[str, Any]:
    """Record one audited event and return the record that was written."""
    scope = current_scope()
    if details.get("event_id") is not None:  # an event the scope does not know yet (e.g. rejected)
        scope["event_id"] = str(details.pop("event_id"))
    record = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "actor": actor,
        "ticket": ticket_id,
        "outcome": outcome,
        **scope,
        "details": redact(details),
    }
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))
    logger.info(line)
    with _sink_lock:
        if _sink is not None:
            with _sink.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
    return record
