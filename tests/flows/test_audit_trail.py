"""The audit trail names the invocation: request id, function, event id, actor, outcome; a failed
flow writes its line too; in FC the logs are JSON lines as well (shared/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path

import pytest

from local.invoke import invoke
from shared.audit import audit, audit_scope, configure_audit
from shared.fc import FcContext, FcFunction
from shared.handler import FlowFailed
from shared.logs import install

EVENTS = Path(__file__).resolve().parents[2] / "events"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def context(function: str, request_id: str) -> FcContext:
    return FcContext(FcFunction(function), request_id=request_id)


def test_every_line_names_the_request_the_function_and_the_event(function_env: Path) -> None:
    event = json.loads((EVENTS / "user-requested-console.json").read_text())
    invoke("user-requested", json.dumps(event).encode(), context("user-requested", "req-0001"))

    written = lines(function_env / "audit.jsonl")
    assert written, "the request was audited"
    for line in written:
        assert (line["request_id"], line["function"], line["event_id"]) == (
            "req-0001",
            "user-requested",
            event["id"],
        )
        assert line["outcome"] and line["actor"]


def test_a_failed_flow_writes_an_audit_line(
    function_env: Path, emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.seed import DevConfig, seed_resource_groups

    seed_resource_groups(DevConfig.load(), emulator=emulator)  # the sample's resource group is read first
    invoke("user-requested", (EVENTS / "user-requested-console.json").read_bytes())
    with socket.socket() as closed:  # bound, never listening: every call is refused
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("RAMFLOW_CLOUD_ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}")
        monkeypatch.setenv("RAMFLOW_MAX_ATTEMPTS", "1")
        approved = json.loads((EVENTS / "access-approved.json").read_text())
        with pytest.raises(FlowFailed):
            invoke("access-approved", json.dumps(approved).encode(), context("access-approved", "req-0002"))

    [failed] = [line for line in lines(function_env / "audit.jsonl") if line["action"] == "flow.failed"]
    assert failed["outcome"] == "failed" and failed["ticket"] == "ITSM-1042"
    assert (failed["request_id"], failed["function"], failed["event_id"]) == (
        "req-0002",
        "access-approved",
        approved["id"],
    )
    assert failed["details"]["errors"] and failed["details"]["errors"][0]["reason"] == "ConnectionError"


def test_log_lines_are_json_objects_with_the_scope(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = install(logging.StreamHandler(stream))
    logger = logging.getLogger("ramflow")
    logger.addHandler(handler)
    configure_audit(None)
    try:
        with audit_scope(request_id="req-9", function="reconcile", event_id="ev-1"):
            logger.warning("retrying %s", "ListUsers")
            written = audit("grant.expired", actor="fc:reconcile", ticket_id="T-1", outcome="revoked")
    finally:
        logger.removeHandler(handler)
    log_line, audit_line = (json.loads(line) for line in stream.getvalue().splitlines())
    assert log_line["message"] == "retrying ListUsers" and log_line["level"] == "WARNING"
    assert (log_line["request_id"], log_line["function"], log_line["event_id"]) == (
        "req-9",
        "reconcile",
        "ev-1",
    )
    assert log_line["ts"].endswith("Z") and log_line["logger"] == "ramflow"
    assert audit_line == written, "audit records are written as they are, not wrapped"


def test_in_function_compute_every_line_on_stdout_is_a_json_object(tmp_path: Path) -> None:
    """FC ships stdout line by line to the Logstore: with FC_FUNCTION_NAME set (as FC sets it), the
    audit lines and the log lines a handler writes are each one JSON object."""
    import os
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from local.invoke import invoke\n"
        f"invoke('access-approved', open({str(EVENTS / 'access-approved.json')!r}, 'rb').read())\n"
        "logging.getLogger('ramflow').warning('after the invocation')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "RAMFLOW_"))}
    env.update(
        FC_FUNCTION_NAME="access-approved",
        RAMFLOW_STORE=f"sqlite:///{tmp_path}/state.db",
        RAMFLOW_MANAGED_USER_PREFIX="rf-",  # as s.yaml deploys it
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=EVENTS.parent, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    written = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert any(
        line.get("action") == "ticket.approval_kept" and line["function"] == "access-approved"
        for line in written
    )
    assert any(
        line.get("level") == "WARNING" and line["message"] == "after the invocation" for line in written
    )
