"""FC's asynchronous invocation, locally: retries, the event's age, and the failed-events queue.

What FC does, and this module copies:

- a failed asynchronous invocation (the function raised, FC's HandledInvocationError /
  UnhandledInvocationError, which a timeout is too) is run again up to `maxAsyncRetryAttempts`
  times (default 3): https://www.alibabacloud.com/help/en/fc/user-guide/retry-policy;
- an event older than `maxAsyncEventAgeInSeconds` (default 86400) is not run again (same page);
- an event that failed its last retry, or aged out, goes to the `onFailure` destination (s.yaml:
  the MNS queue `ramflow-failed-events`), to be analysed and replayed; without a destination FC
  drops it: https://www.alibabacloud.com/help/en/fc/user-guide/result-callback.

Locally every attempt runs under the request id the caller got with its 202, so a retry reads as
the same invocation in the logs. FC does not publish its interval between retries of a failed
function, so the local one is short and doubles: `RAMFLOW_LOCAL_ASYNC_RETRY_SECONDS` (default 1 s,
then 2 s, 4 s, …). The onFailure destination is a queue in memory (`parked`, `replay`), mirrored to
`<workdir>/failed-events.jsonl` for an operator to read; an event s.yaml gives no destination is
parked too (FC would drop it) so that nothing fails unseen. Payloads never reach the log or that
file: only their size and SHA-256, so an event file can be matched to its record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from local.fcruntime.spec import AsyncInvokeConfig
from shared.errors import ConfigError

log = logging.getLogger("ramflow.fcruntime.async")

RETRY_SECONDS_ENV = "RAMFLOW_LOCAL_ASYNC_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 1.0
JOURNAL_NAME = "failed-events.jsonl"
RETRIES_EXHAUSTED = "retries-exhausted"
TOO_OLD = "max-event-age"


class Outcome(Protocol):
    """What one attempt reports (`runtime.Invocation`)."""

    request_id: str
    error_type: str | None

    @property
    def failed(self) -> bool: ...


def retry_seconds_from(environment: dict[str, str] | None = None) -> float:
    """The first retry's wait from `RAMFLOW_LOCAL_ASYNC_RETRY_SECONDS`, a number of seconds ≥ 0."""
    raw = (environment or {}).get(RETRY_SECONDS_ENV) or os.environ.get(RETRY_SECONDS_ENV)
    if not raw:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{RETRY_SECONDS_ENV}: must be a number of seconds, 0 or more, got {raw!r}")
    return value


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ParkedEvent:
    """An asynchronous event that failed every attempt (or aged out), waiting for a replay."""

    function: str
    request_id: str
    attempts: int
    error_type: str
    reason: str  # RETRIES_EXHAUSTED | TOO_OLD
    destination: str | None
    accepted_at: float
    parked_at: float
    payload: bytes = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Everything but the payload, which may carry sealed secrets."""
        return {
            "function": self.function,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "error_type": self.error_type,
            "reason": self.reason,
            "destination": self.destination,
            "accepted_at": _utc(self.accepted_at),
            "parked_at": _utc(self.parked_at),
            "payload_bytes": len(self.payload),
            "payload_sha256": hashlib.sha256(self.payload).hexdigest(),
        }


class NotParked(LookupError):
    """No parked event has that request id."""


class ReplayUnderWay(RuntimeError):
    """That event is being replayed already."""


class AsyncInvocations:
    """Runs asynchronous invocations in the background with FC's retries, and holds the events
    that still failed. `attempt(function, payload, request_id)` runs one attempt."""

    def __init__(
        self,
        attempt: Callable[[str, bytes, str], Outcome],
        config_of: Callable[[str], AsyncInvokeConfig],
        *,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        journal: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._attempt = attempt
        self._config_of = config_of
        self.retry_seconds = retry_seconds
        self.journal = journal
        self._clock = clock
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._in_flight = 0
        self._parked: dict[str, ParkedEvent] = {}
        self._replaying: set[str] = set()

    # --- accepting and retrying ----------------------------------------------------------------
    def submit(self, function: str, payload: bytes, request_id: str) -> None:
        """Accept the event (the caller has its 202) and run it on a thread of its own."""
        with self._lock:
            self._in_flight += 1
        accepted = (time.time(), self._clock())
        thread = threading.Thread(
            target=self._deliver,
            args=(function, payload, request_id, accepted),
            name=f"fc-async-{request_id[:8]}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            self._done()
            raise

    def _deliver(self, function: str, payload: bytes, request_id: str, accepted: tuple[float, float]) -> None:
        try:
            config = self._config_of(function)
            attempts = 0
            while True:
                attempts += 1
                result = self._attempt(function, payload, request_id)
                if not result.failed or self._stopped.is_set():
                    return  # done; or the runtime stopped under it, and the event goes with it
                error = result.error_type or "UnhandledInvocationError"
                if attempts > config.max_retry_attempts:
                    self._park(function, payload, request_id, attempts, error, RETRIES_EXHAUSTED, accepted)
                    return
                delay = self.retry_seconds * 2 ** (attempts - 1)
                log.info(
                    "function %s request %s failed (%s): retry %d of %d in %.2f s",
                    function,
                    request_id,
                    error,
                    attempts,
                    config.max_retry_attempts,
                    delay,
                )
                if self._stopped.wait(delay):
                    return
                if self._clock() - accepted[1] > config.max_event_age_seconds:
                    self._park(function, payload, request_id, attempts, error, TOO_OLD, accepted)
                    return
        except Exception as exc:  # the runtime's own fault: say so, never lose the event silently
            log.error(
                "function %s request %s: async delivery broke: %s", function, request_id, type(exc).__name__
            )
        finally:
            self._done()

    def _done(self) -> None:
        with self._settled:
            self._in_flight -= 1
            self._settled.notify_all()

    def _park(
        self,
        function: str,
        payload: bytes,
        request_id: str,
        attempts: int,
        error: str,
        reason: str,
        accepted: tuple[float, float],
    ) -> None:
        event = ParkedEvent(
            function=function,
            request_id=request_id,
            attempts=attempts,
            error_type=error,
            reason=reason,
            destination=self._config_of(function).failure_destination,
            accepted_at=accepted[0],
            parked_at=time.time(),
            payload=payload,
        )
        with self._lock:
            self._parked[request_id] = event
        log.warning(
            "function %s request %s parked in the failed-events queue after %d attempts (%s, %s)",
            function,
            request_id,
            attempts,
            error,
            reason,
        )
        self._write({"state": "parked", **event.summary()})

    def _write(self, line: dict[str, Any]) -> None:
        if self.journal is None:
            return
        try:
            with self._lock, self.journal.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
        except OSError as exc:  # the queue in memory still holds the event
            log.warning("cannot write %s: %s", self.journal.name, type(exc).__name__)

    # --- the failed-events queue ---------------------------------------------------------------
    def parked(self) -> list[ParkedEvent]:
        """The parked events, oldest first."""
        with self._lock:
            return sorted(self._parked.values(), key=lambda e: e.parked_at)

    def replay(self, request_id: str) -> tuple[ParkedEvent, Outcome]:
        """Run a parked event once more, now, under a new request id (a new invocation, as a replay
        by hand is in FC). It leaves the queue if it succeeds; otherwise it stays, one attempt more."""
        with self._lock:
            event = self._parked.get(request_id)
            if event is None:
                raise NotParked(request_id)
            if request_id in self._replaying:
                raise ReplayUnderWay(request_id)
            self._replaying.add(request_id)
        try:
            result = self._attempt(event.function, event.payload, str(uuid.uuid4()))
            with self._lock:
                if result.failed:
                    event.attempts += 1
                    event.error_type = result.error_type or "UnhandledInvocationError"
                else:
                    del self._parked[request_id]
        finally:
            with self._lock:
                self._replaying.discard(request_id)
        state = "replay-failed" if result.failed else "replayed"
        log.info(
            "function %s request %s %s as request %s", event.function, request_id, state, result.request_id
        )
        self._write({"state": state, "replay_request_id": result.request_id, **event.summary()})
        return event, result

    # --- lifecycle -----------------------------------------------------------------------------
    def wait_settled(self, timeout: float) -> bool:
        """Wait until no accepted event is still running or waiting for a retry."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or not self._settled.wait(left):
                    return self._in_flight == 0
            return True

    def stop(self) -> None:
        """No more retries: events waiting for one are dropped with the runtime, as its instances are."""
        self._stopped.set()
