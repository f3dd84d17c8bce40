"""The CLI's audit lines name who ran it, as the cloud knows them (GetCallerIdentity), and the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.emulator.server import EmulatorServer
from shared.audit import configure_audit
from tests.cli.test_offboard_cli import OWNER, ramflow, world  # noqa: F401 - the fixture

ROOT_ARN = "acs:ram::5123456789012345:root"


@pytest.mark.usefixtures("world")
def test_offboarding_from_the_cli_is_audited_with_the_caller_identity(
    emulator_server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trail = tmp_path / "audit.jsonl"
    monkeypatch.setenv("RAMFLOW_AUDIT_PATH", str(trail))
    try:
        code, output = ramflow(emulator_server, "offboard", "--owner", OWNER)
    finally:
        configure_audit(None)
    assert code == 0, output
    written = [json.loads(line) for line in trail.read_text().splitlines()]
    assert written
    assert {line["actor"] for line in written} == {ROOT_ARN}
    assert {line["function"] for line in written} == {"ramflow-cli offboard"}
    assert len({line["request_id"] for line in written}) == 1 and written[0]["request_id"]
