"""`ramflow jobs`: the store's offboarding jobs, as a table or JSON; `--running` hides finished ones."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from local.cli import app
from shared.store import StateStore
from shared.store.jobs import JobRecord


def test_jobs_lists_progress_and_filters_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with StateStore.from_url(url) as store:
        for job_id, owner in (("job-aaaaaaaaaaaa", "a@example.com"), ("job-bbbbbbbbbbbb", "b@example.com")):
            store.jobs.claim_owner(owner, job_id)
            store.jobs.create(
                JobRecord(job_id=job_id, owner=owner, reference="WD-1", users=["u1", "u2"], total=2)
            )
        for user in ("u1", "u2"):
            store.jobs.finish_unit("job-aaaaaaaaaaaa", "close", user, ok=True, outcome="closed")
        store.jobs.finish_unit("job-aaaaaaaaaaaa", "disable", "u1", ok=True, outcome="disabled")
        store.jobs.finish_unit("job-aaaaaaaaaaaa", "disable", "u2", ok=False, outcome="failed")
        for wave, outcome in (("close", "closed"), ("disable", "disabled"), ("delete", "deleted")):
            for user in ("u1", "u2"):
                store.jobs.finish_unit("job-bbbbbbbbbbbb", wave, user, ok=True, outcome=outcome)  # type: ignore[arg-type]

    table = CliRunner().invoke(app, ["jobs", "--store", url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert (
        "job-aaaaaaaaaaaa" in table.output
        and "job-bbbbbbbbbbbb" in table.output
        and "finished" in table.output
    )

    running = CliRunner().invoke(app, ["jobs", "--running", "--json", "--store", url])
    assert running.exit_code == 0, running.output
    [job] = json.loads(running.stdout)
    assert job["job_id"] == "job-aaaaaaaaaaaa" and job["wave"] == "disable"
    assert (job["total"], job["closed"], job["disabled"], job["done"], job["failed"]) == (2, 2, 1, 0, 1)
    assert job["started"] and job["updated"]
