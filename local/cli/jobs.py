"""`ramflow jobs`: bulk offboarding jobs and how far each has got, read-only."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from local.cli import app
from local.cli._context import PROFILE_OPTION, STORE_OPTION, open_store, reading, target
from local.cli.tickets import when, which_store
from shared.store.jobs import JobRecord


@app.command("jobs")
def list_jobs(
    running: bool = typer.Option(False, "--running", help="Only jobs that have not finished."),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Offboarding jobs (an owner with many users, split into per-user units): job id, owner, total,
    closed, disabled, done, failed, wave, started, updated."""
    where = target(store=store, profile=profile)
    which_store(where, Console(stderr=True, highlight=False, soft_wrap=True))
    with reading(where):
        found = [j for j in open_store(where).jobs.all() if not running or j.wave != "finished"]
    if as_json:
        print(json.dumps([j.summary() for j in found], indent=2, ensure_ascii=False))
        return
    show_jobs(Console(highlight=False, soft_wrap=True), found)


def show_jobs(console: Console, found: list[JobRecord]) -> None:
    table = Table(
        "job",
        "owner",
        "HR event",
        "wave",
        "total",
        "closed",
        "disabled",
        "done",
        "failed",
        "started",
        "updated",
        title=f"Offboarding jobs ({len(found)})",
    )
    for job in found:
        table.add_row(
            job.job_id,
            job.owner,
            job.reference,
            job.wave,
            str(job.total),
            str(job.closed),
            str(job.disabled),
            str(job.done),
            str(job.failed),
            when(job.started),
            when(job.updated),
        )
    if not found:
        table.add_row("(no jobs)", *[""] * 10)
    console.print(table)
