"""The audit trail: one JSON line per decision or change, secrets masked.

Lines go to the `ramflow.audit` logger (Function Compute ships logs to SLS) and, once
`configure_audit(path)` names a file, are appended there too — the local runtime and the demo
read that file.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared.redact import redact

LOGGER_NAME = "ramflow.audit"

logger = logging.getLogger(LOGGER_NAME)
logger.setLevel(logging.INFO)  # audit lines must not depend on the root logger's level

_sink: Path | None = None
_sink_lock = threading.Lock()


def configure_audit(path: str | Path | None) -> None:
    """Also append audit lines to `path` (created with its folder); None stops writing a file."""
    global _sink
    with _sink_lock:
        _sink = Path(path) if path else None
        if _sink is not None:
            _sink.parent.mkdir(parents=True, exist_ok=True)


def audit(action: str, *, actor: str, ticket_id: str | None, outcome: str, **details: Any) -> dict[str, Any]:
    """Record one audited event and return the record that was written."""
    record = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "actor": actor,
        "ticket": ticket_id,
        "outcome": outcome,
        "details": redact(details),
    }
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))
    logger.info(line)
    with _sink_lock:
        if _sink is not None:
            with _sink.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
    return record
