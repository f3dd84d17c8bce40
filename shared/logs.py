"""Log lines an SLS Logstore can index: one JSON object per line.

In Function Compute every function's stdout and stderr lines go to the Logstore named in `s.yaml`;
the python runtime's default format (`time request-id [level] message`) is not JSON, so inside FC
(`FC_FUNCTION_NAME` is set, https://www.alibabacloud.com/help/en/functioncompute/fc/environment-variables)
`configure_logging` gives the root logger's handlers a JSON formatter (python-json-logger). Audit
records (`ramflow.audit`) are already JSON objects and are written as they are; every other record
becomes `{"ts", "level", "logger", "message", "request_id", "function", "event_id"}`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pythonjsonlogger.json import JsonFormatter

from shared.audit import LOGGER_NAME, audit_scope, current_scope
from shared.fc import request_id_of

_configured = False
_lock = threading.Lock()


class ScopeFilter(logging.Filter):
    """Copies the invocation's request id, function and event id onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_scope().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line; audit records pass through unchanged (they are JSON already)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            datefmt="%Y-%m-%dT%H:%M:%SZ",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
            **kwargs,
        )
        self.converter = time.gmtime  # `ts` in UTC, as the audit records

    def format(self, record: logging.LogRecord) -> str:
        if record.name == LOGGER_NAME:
            return record.getMessage()
        return super().format(record)


def install(handler: logging.Handler) -> logging.Handler:
    """Make `handler` write JSON lines carrying the invocation's scope."""
    handler.setFormatter(JsonLines())
    if not any(isinstance(f, ScopeFilter) for f in handler.filters):
        handler.addFilter(ScopeFilter())
    return handler


def configure_logging() -> None:
    """In FC, JSON lines on the root logger's handlers (one to stdout if it has none); elsewhere
    nothing: tests and the local tools keep their own formats."""
    global _configured
    if not os.environ.get("FC_FUNCTION_NAME"):
        return
    with _lock:
        if _configured:
            return
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler(sys.stdout))
        for handler in root.handlers:
            install(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        _configured = True


H = TypeVar("H", bound=Callable[[Any, Any], Any])


def audited(handler: H) -> H:
    """An FC handler whose audit and log lines carry FC's request id and the function's name (and,
    in FC, are JSON lines: `shared.logs`)."""
    configure_logging()

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        function = getattr(getattr(context, "function", None), "name", None)
        with audit_scope(request_id=request_id_of(context), function=function, event_id=None):
            return handler(event, context)

    return wrapper  # type: ignore[return-value]
