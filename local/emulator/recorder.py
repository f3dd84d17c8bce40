"""A record of every call the emulator answered: what tests, benchmarks and the demo read back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.redact import redact


@dataclass(frozen=True)
class CallRecord:
    seq: int
    service: str
    action: str
    params: dict[str, Any]
    caller: str
    outcome: str  # "OK" or the error code
    status: int
    started: float
    finished: float


@dataclass
class CallRecorder:
    calls: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        *,
        service: str,
        action: str,
        params: dict[str, str],
        caller: str,
        outcome: str,
        status: int,
        started: float,
    ) -> CallRecord:
        with self._lock:
            rec = CallRecord(
                len(self.calls) + 1,
                service,
                action,
                redact(dict(params)),
                caller,
                outcome,
                status,
                started,
                time.time(),
            )
            self.calls.append(rec)
            return rec

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def actions(self, *, outcome: str | None = None) -> list[str]:
        return [c.action for c in list(self.calls) if outcome is None or c.outcome == outcome]

    def count(self) -> Counter[str]:
        return Counter(self.actions())

    def since(self, seq: int) -> list[CallRecord]:
        return [c for c in list(self.calls) if c.seq > seq]

    @property
    def last_seq(self) -> int:
        return len(self.calls)
