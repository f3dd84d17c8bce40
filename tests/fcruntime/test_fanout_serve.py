"""Through `ramflow serve`: an owner above the fan-out threshold becomes a job whose units the local
FC runtime runs as asynchronous invocations of user-offboarded, as FC would; `ramflow jobs` shows it."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.scale import seed_user
from local.cli import app
from local.emulator.core import Emulator
from local.emulator.server import EmulatorServer
from local.testing import ROOT_CREDENTIALS, serve_process
from shared.cloud.fc import FcGateway
from shared.cloud.ratelimit import TokenBucket
from shared.cloud.retry import CloudRunner
from shared.config import Settings

OWNER = "layoff@example.com"
USERS = [f"fan{i:02d}" for i in range(8)]


@pytest.fixture
def cloud() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator(resource_group_ready_seconds=0)) as server:
        for name in USERS:
            seed_user(server.emulator, name, OWNER)
        yield server


def jobs(store: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["jobs", "--json", "--store", store])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_a_large_offboarding_fans_out_through_the_local_fc_runtime(
    cloud: EmulatorServer, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path}/state.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMFLOW_")}
    env |= {
        "RAMFLOW_STORE": store,
        "RAMFLOW_RATE_LIMIT_QPS": "1000",
        "RAMFLOW_FANOUT_THRESHOLD": "3",
        "RAMFLOW_ALLOW_UNSCOPED_USERS": "true",
    }
    with serve_process("--cloud", cloud.endpoint, "--seed", env=env) as served:
        settings = Settings(fc_endpoint=served.endpoint, cloud_endpoint=cloud.endpoint)
        functions = FcGateway(settings, ROOT_CREDENTIALS, CloudRunner(TokenBucket(100)))
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "hr.example.com",
            "type": "ramflow.user.offboarded",
            "data": {"owner": OWNER, "hr_event_id": "WD-500"},
        }
        reply = functions.invoke("user-offboarded", json.dumps(event).encode())
        assert reply.error_type is None, reply.payload
        answer = json.loads(reply.payload)
        assert answer["status"] == "completed", answer
        assert "plan" in answer, answer
        job_id = answer["plan"]["job"]["job_id"]

        deadline = time.monotonic() + 120
        while True:
            found = {j["job_id"]: j for j in jobs(store)}
            if found[job_id]["wave"] == "finished" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    job = found[job_id]
    assert job["wave"] == "finished", job
    assert (job["total"], job["disabled"], job["done"], job["failed"]) == (8, 8, 8, 0)
    assert all(name not in cloud.emulator.account.ram.users for name in USERS)
    calls = [c.action for c in cloud.emulator.recorder.calls]
    closing = [
        i
        for i, a in enumerate(calls)
        if a in ("DeleteLoginProfile", "DeleteAccessKey", "DetachPolicyFromUser")
    ]
    assert max(closing) < calls.index("DeleteUser")  # every user disabled before any is deleted
