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
then 2 s, 4 s, …; at most 3600 s). FC kills an instance that timed out; a thread cannot be killed,
so a retry waits until the timed-out attempt's thread has ended: two attempts of one event (one
request id, the idempotency owner) never run at once. The onFailure destination is a queue in
memory (`parked`, `replay`), mirrored to `<workdir>/failed-events.jsonl` for an operator to read; an
event s.yaml gives no destination is parked too (FC would drop it) so that nothing fails unseen, and
so is one the runtime itself failed to deliver (`runtime-error`). Payloads never reach the log or
that file: only their size and SHA-256, so an event file can be matched to its record.
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
MAX_RETRY_SECONDS = 3600.0  # also keeps the doubled waits far below what threading can wait for
JOURNAL_NAME = "failed-events.jsonl"
RETRIES_EXHAUSTED = "retries-exhausted"
TOO_OLD = "max-event-age"
RUNTIME_ERROR = "runtime-error"
_POLL_SECONDS = 0.05  # how often a retry waiting for a timed-out attempt looks whether the runtime stopped


class Outcome(Protocol):
    """What one attempt reports (`runtime.Invocation`)."""

    request_id: str
    error_type: str | None

    @property
    def failed(self) -> bool: ...

    def wait_ended(self, timeout: float | None) -> bool:
        """Whether the attempt's handler has returned (a timed-out one may still run), after
        waiting up to `timeout` seconds for it."""
        ...


class RuntimeStopped(RuntimeError):
    """The runtime has stopped: it runs no function any more."""


def retry_seconds_from(environment: dict[str, str] | None = None) -> float:
    """The first retry's wait from `RAMFLOW_LOCAL_ASYNC_RETRY_SECONDS`, 0 to 3600 seconds."""
    raw = (environment or {}).get(RETRY_SECONDS_ENV) or os.environ.get(RETRY_SECONDS_ENV)
    if not raw:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    return checked_retry_seconds(value, RETRY_SECONDS_ENV)


def checked_retry_seconds(value: float, name: str) -> float:
    """`value` if it is 0 to 3600 seconds; the error names `name` and not the value, which in an
    environment variable may be anything pasted there by mistake."""
    if not 0 <= value <= MAX_RETRY_SECONDS:  # NaN fails too
        raise ConfigError(f"{name}: must be a number of seconds from 0 to {MAX_RETRY_SECONDS:.0f}")
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
    reason: str  # RETRIES_EXHAUSTED | TOO_OLD | RUNTIME_ERROR
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
    that still failed. `attempt(function, payload, request_id)` runs one attempt; after `stop()`
    none begins, so the runtime can restore its environment with no attempt left to undo that."""

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
        self.retry_seconds = checked_retry_seconds(retry_seconds, "async_retry_seconds")
        self.journal = journal
        self._clock = clock
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._in_flight = 0  # accepted events not yet done with
        self._running = 0  # attempts inside `attempt` now
        self._parked: dict[str, ParkedEvent] = {}
        self._replaying: set[str] = set()

    # --- accepting and retrying ----------------------------------------------------------------
    def submit(self, function: str, payload: bytes, request_id: str) -> None:
        """Accept the event (the caller has its 202) and run it on a thread of its own."""
        with self._lock:
            if self._stopped.is_set():
                raise RuntimeStopped("the runtime has stopped")
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
        attempts = 0
        try:
            config = self._config_of(function)
            while True:
                if not self._begin_attempt():
                    return  # the runtime stopped: the event goes with it, as with its instances
                try:
                    attempts += 1
                    result = self._attempt(function, payload, request_id)
                finally:
                    self._end_attempt()
                if not result.failed or self._stopped.is_set():
                    return  # done; or the runtime stopped under it, and the event goes with it
                error = result.error_type or "UnhandledInvocationError"
                if not result.wait_ended(0):
                    log.info(
                        "function %s request %s timed out: its retry waits for it to end",
                        function,
                        request_id,
                    )
                    while not result.wait_ended(_POLL_SECONDS):
                        if self._stopped.is_set():
                            return
                        if self._clock() - accepted[1] > config.max_event_age_seconds:
                            self._park(function, payload, request_id, attempts, error, TOO_OLD, accepted)
                            return
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
        except RuntimeStopped:
            return  # stopped while this attempt was starting: the event goes with the runtime
        except Exception as exc:  # the runtime's own fault: say so, and park the event, never lose it
            fault = type(exc).__name__
            log.error("function %s request %s: async delivery broke: %s", function, request_id, fault)
            self._park(function, payload, request_id, attempts, fault, RUNTIME_ERROR, accepted)
        finally:
            self._done()

    def _begin_attempt(self) -> bool:
        """Count an attempt as running, unless the runtime has stopped (checked under the lock
        `stop` takes, so an attempt either begins before stop waits for it, or not at all)."""
        with self._lock:
            if self._stopped.is_set():
                return False
            self._running += 1
            return True

    def _end_attempt(self) -> None:
        with self._settled:
            self._running -= 1
            self._settled.notify_all()

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
        try:
            destination = self._config_of(function).failure_destination
        except Exception:  # parked all the same: the event matters more than where it would go
            destination = None
        event = ParkedEvent(
            function=function,
            request_id=request_id,
            attempts=attempts,
            error_type=error,
            reason=reason,
            destination=destination,
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

    def stop(self, timeout: float = 0.0) -> bool:
        """No more attempts: events waiting for a retry are dropped with the runtime, as its
        instances are. Waits up to `timeout` seconds for the attempts running now; whether they ended."""
        deadline = time.monotonic() + timeout
        with self._settled:
            self._stopped.set()
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0 or not self._settled.wait(left):
                    break
            return self._running == 0
