"""The emulator's control surface over HTTP, in the spirit of moto's `/moto-api/`: any client (curl,
another process, a test in another language) can reset the cloud, move its clock and read what was
called, against `ramflow emulator` and the emulator `ramflow serve` embeds alike.

    POST   /emulator-api/reset                          a fresh cloud (accounts and root keys kept)
    GET    /emulator-api/clock                          {"now", "epoch", "offset_seconds"}
    POST   /emulator-api/clock/advance  {"duration": "P91D"}   move the clock forward (ISO-8601)
    GET    /emulator-api/recorder[?since=N][&action=A]  {"last_seq", "calls": [...]} (secrets redacted)
    DELETE /emulator-api/recorder                       forget the recorded calls
    POST   /emulator-api/faults  {"fail_nth_call": N, "when": "after", "actions": [...]}
    DELETE /emulator-api/faults                         no latency, no QPS limit, no planned failure

Loopback-only, unauthenticated and never deployed, like moto's. Replies are JSON; a bad request is a
400 naming the field and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from shared.durations import parse_duration

if TYPE_CHECKING:
    from local.emulator.core import Emulator, EmulatorRequest, EmulatorResponse


class _BadRequest(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status, self.body = status, body


def _reply(status: int, body: dict[str, Any]) -> EmulatorResponse:
    from local.emulator.core import EmulatorResponse

    return EmulatorResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _json_body(request: EmulatorRequest) -> dict[str, Any]:
    if not request.body:
        return dict(request.query)
    try:
        body = json.loads(request.body)
    except ValueError:
        raise _BadRequest(400, {"field": "body", "reason": "must be a JSON object"}) from None
    if not isinstance(body, dict):
        raise _BadRequest(400, {"field": "body", "reason": "must be a JSON object"})
    return body


def clock_state(emulator: Emulator) -> dict[str, Any]:
    from local.emulator.core import iso

    now = emulator.clock()
    return {"now": iso(now), "epoch": now, "offset_seconds": emulator.clock_offset}


def _advance(emulator: Emulator, request: EmulatorRequest) -> dict[str, Any]:
    raw = _json_body(request).get("duration")
    if not isinstance(raw, str):
        raise _BadRequest(
            400, {"field": "duration", "reason": "required: an ISO-8601 duration such as 'P91D'"}
        )
    try:
        seconds = parse_duration(raw).total_seconds()
    except ValueError as exc:
        raise _BadRequest(400, {"field": "duration", "reason": str(exc)}) from None
    emulator.advance(seconds)
    return {"advanced_seconds": seconds, **clock_state(emulator)}


def _recorder(emulator: Emulator, request: EmulatorRequest) -> dict[str, Any]:
    raw_since = request.query.get("since", "0")
    if not raw_since.isdigit():
        raise _BadRequest(400, {"field": "since", "reason": "must be a non-negative integer"})
    action = request.query.get("action")
    calls = [
        asdict(c) for c in emulator.recorder.since(int(raw_since)) if action is None or c.action == action
    ]
    return {"last_seq": emulator.recorder.last_seq, "calls": calls}


def _faults(emulator: Emulator, request: EmulatorRequest) -> dict[str, Any]:
    body = _json_body(request)
    nth, when, actions = body.get("fail_nth_call"), body.get("when", "after"), body.get("actions")
    if not isinstance(nth, int) or isinstance(nth, bool) or nth < 1:
        raise _BadRequest(400, {"field": "fail_nth_call", "reason": "must be an integer >= 1"})
    if when not in {"before", "after"}:
        raise _BadRequest(400, {"field": "when", "reason": "must be 'before' or 'after'"})
    if actions is not None and not (isinstance(actions, list) and all(isinstance(a, str) for a in actions)):
        raise _BadRequest(400, {"field": "actions", "reason": "must be a list of action names"})
    emulator.faults.fail_nth_call(nth, when=when, actions=set(actions) if actions else None)
    return {"fail_nth_call": nth, "when": when, "actions": actions}


def handle_control(emulator: Emulator, request: EmulatorRequest) -> EmulatorResponse:
    from local.emulator.core import CONTROL_PREFIX

    route = request.path[len(CONTROL_PREFIX) :].strip("/")
    method = request.method.upper()

    def reset() -> dict[str, Any]:
        emulator.reset()
        return {"reset": True, **clock_state(emulator)}

    def clear_recorder() -> dict[str, Any]:
        emulator.recorder.clear()
        return {"cleared": True}

    def clear_faults() -> dict[str, Any]:
        emulator.faults.clear()
        return {"cleared": True}

    routes: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("POST", "reset"): reset,
        ("GET", "clock"): lambda: clock_state(emulator),
        ("POST", "clock/advance"): lambda: _advance(emulator, request),
        ("GET", "recorder"): lambda: _recorder(emulator, request),
        ("DELETE", "recorder"): clear_recorder,
        ("POST", "faults"): lambda: _faults(emulator, request),
        ("DELETE", "faults"): clear_faults,
    }
    action = routes.get((method, route))
    if action is None:
        if any(path == route for _, path in routes):
            return _reply(405, {"field": "method", "reason": f"{method} is not allowed on {request.path}"})
        return _reply(404, {"field": "path", "reason": f"no control endpoint {request.path}"})
    try:
        return _reply(200, action())
    except _BadRequest as exc:
        return _reply(exc.status, exc.body)
