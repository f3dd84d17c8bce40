"""The emulator driven by a second official client: Alibaba Cloud's Node.js SDK (tests/node/*.test.mjs).

The packages are pinned exactly in tests/node/package.json and package-lock.json and installed with
`npm ci` into tests/node/node_modules (git-ignored), once per lock file: a stamp with the lock file's
hash says the install is current. Without node and npm the suite is skipped, except under CI=true,
where it fails: there a missing runtime is a broken machine, not an optional extra.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer

NODE_DIR = Path(__file__).resolve().parent
LOCK = NODE_DIR / "package-lock.json"
MODULES = NODE_DIR / "node_modules"
STAMP = MODULES / ".ramflow-lock-sha256"
SUITES = sorted(NODE_DIR.glob("*.test.mjs"))
READY_SECONDS = 0.3  # resource groups answer Creating this long: the Node suite watches them turn OK


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    message = "the Node.js SDK suite needs node and npm on PATH"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    """The node binary, with the pinned packages installed (`npm ci`, skipped when the lock is unchanged)."""
    node, npm = _tools()
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    with open(NODE_DIR / ".npm-ci.lock", "w") as guard:  # one install at a time per checkout
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not STAMP.exists() or STAMP.read_text().strip() != digest:
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
            STAMP.write_text(digest)
    yield node


def test_the_node_sdk_suite_passes_against_the_emulator(node: str) -> None:
    assert SUITES, "no tests/node/*.test.mjs"
    emulator = Emulator(resource_group_ready_seconds=READY_SECONDS)
    with EmulatorServer(emulator) as server:
        env = {
            **os.environ,
            "RAMFLOW_NODE_ENDPOINT": urlsplit(server.endpoint).netloc,
            "RAMFLOW_NODE_ACCOUNT_ID": emulator.account.account_id,
            "RAMFLOW_NODE_KEY_ID": DEFAULT_ROOT_KEY_ID,
            "RAMFLOW_NODE_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
        }
        run = subprocess.run(
            [node, "--test", "--test-reporter=tap", *map(str, SUITES)],
            cwd=NODE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) >= 8, report
    assert re.search(r"^# fail 0$", run.stdout, re.M), report
    # The calls did reach this emulator, signed by the Node SDK, for each of the four APIs.
    services = {call.service for call in emulator.recorder.calls if call.outcome == "OK"}
    assert services == {"ram", "ims", "sts", "resourcemanager"}, services


def test_without_node_the_suite_fails_under_ci_and_is_skipped_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="needs node and npm"):
        _tools()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="needs node and npm"):
        _tools()
