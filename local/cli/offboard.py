"""`ramflow offboard`: take a leaver's RAM users apart from an operator's shell.

Runs the same flow as the `user-offboarded` function, against the configured endpoint (the
emulator or the real cloud), with the credentials in `ALIBABA_CLOUD_*`. `--dry-run` reads what
RAM holds and prints what would be called, calling only Get*/List* APIs and writing nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from local.cli import app
from local.cli._context import (
    PROFILE_OPTION,
    STORE_OPTION,
    Target,
    refuse_local_store,
    runtime,
    target,
    unreachable,
)
from shared.audit import audit, audit_scope
from shared.errors import RamflowError, ValidationFailed
from shared.flows.offboard import OffboardReport, run_offboarding
from shared.models.events import UserOffboarded
from shared.models.results import Result
from shared.models.validation import validate
from shared.runtime import Runtime

EXIT_PARTIAL = 2

R = TypeVar("R")


class BarProgress:
    """One rich progress bar per level of calls; `advance` is called from worker threads."""

    def __init__(self, console: Console):
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def level(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(description, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)


def caller_actor(rt: Runtime) -> str:
    """Who runs the command, as the cloud knows them (GetCallerIdentity): the audit trail's actor."""
    try:
        return rt.cloud.sts.get_caller_identity().arn or "ramflow-cli"
    except RamflowError:
        return "ramflow-cli"  # the run itself reports the cloud's answer


def fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def stats_line(rt: Runtime, elapsed: float) -> str:
    s = rt.cloud.stats.snapshot()
    rate = s["attempts"] / elapsed if elapsed > 0 else 0.0
    return (
        f"{s['calls']} cloud calls ({s['retries']} retries, {s['throttled']} throttled) in {elapsed:.1f}s "
        f"= {rate:.0f}/s; rate limit {rt.settings.rate_limit_qps:g}/s, {rt.settings.max_concurrency} at a time"
    )


def run_and_show(
    console: Console,
    where: Target,
    as_json: bool,
    run: Callable[[Runtime, BarProgress, str], R],
    result: Callable[[R], Result],
    show: Callable[[Console, R], None],
    nothing: Callable[[Runtime, R], str | None] = lambda _rt, _report: None,
    *,
    command: str,
) -> None:
    """One flow run with progress bars, then its reply JSON or tables; exits 2 unless it completed,
    1 when `nothing` says the selection matched nothing (a typo must not read as success)."""
    rt = runtime(where)
    actor = "ramflow-cli"
    with audit_scope(request_id=str(uuid.uuid4()), function=f"ramflow-cli {command}", event_id=None):
        try:
            started = time.monotonic()
            actor = caller_actor(rt)
            with BarProgress(Console(stderr=True)) as progress:
                report = run(rt, progress, actor)
            elapsed = time.monotonic() - started
        except RamflowError as exc:
            audit("cli.failed", actor=actor, ticket_id=None, outcome="failed", error=type(exc).__name__)
            raise fail(console, str(exc)) from None
        reply = result(report)
        if reply.status in {"failed", "partial"}:
            errors = [e.model_dump() for e in reply.errors]
            audit("cli.failed", actor=actor, ticket_id=reply.ticket_id, outcome=reply.status, errors=errors)
    hint = unreachable([e.model_dump() for e in reply.errors], where)
    if hint:
        typer.echo(f"error: {hint}", err=True)
        if not as_json:
            raise typer.Exit(EXIT_PARTIAL)
    empty = nothing(rt, report)
    if empty and not reply.errors:
        if as_json:
            print(json.dumps(reply.to_json(), indent=2, ensure_ascii=False))
        raise fail(console, empty)
    if as_json:
        print(json.dumps(reply.to_json(), indent=2, ensure_ascii=False))
    else:
        show(console, report)
        console.print(stats_line(rt, elapsed))
    if reply.status != "completed":
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def offboard(
    owner: str | None = typer.Option(
        None, "--owner", help="Offboard every managed RAM user this person owns."
    ),
    user: str | None = typer.Option(None, "--user", help="Offboard one RAM user."),
    grace: str = typer.Option("P0D", help="ISO-8601 time before deletion (disabled at once either way)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; call only read APIs."),
    hr_event_id: str = typer.Option("cli", "--hr-event-id", help="Reference kept in the ledger and audit."),
    cloud: str | None = typer.Option(
        None, help="Cloud endpoint (the emulator's URL); as RAMFLOW_CLOUD_ENDPOINT."
    ),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the reply JSON instead of tables."),
) -> None:
    """Disable a leaver's RAM users at once and delete them (now, or after --grace).

    The ledger it writes (pending deletions, leaver records) must be the deployment's, which the
    reconcile function reads: name it with --profile or --store."""
    console = Console(highlight=False, soft_wrap=True)
    where = target(cloud=cloud, store=store, profile=profile)
    try:
        data = validate(
            UserOffboarded,
            {
                "hr_event_id": hr_event_id,
                "grace": grace,
                **({"owner": owner} if owner is not None else {}),
                **({"user_name": user} if user is not None else {}),
            },
        )
    except ValidationFailed as exc:
        reasons = "; ".join(f"{e['field'].replace('user_name', 'user')}: {e['reason']}" for e in exc.errors)
        raise fail(console, reasons or "give exactly one of --owner or --user") from None
    if not dry_run:
        refuse_local_store(where, "ramflow offboard")
    selection = f"--owner {owner}" if owner is not None else f"--user {user}"
    run_and_show(
        console,
        where,
        as_json,
        lambda rt, progress, actor: run_offboarding(
            rt, data, actor=actor, dry_run=dry_run, progress=progress, fan_out=False
        ),
        lambda report: report.result(user_name=data.user_name),
        show_report,
        nothing=lambda rt, report: nothing_matched(rt, report, selection, user),
        command="offboard",
    )


def nothing_matched(rt: Runtime, report: OffboardReport, selection: str, user: str | None) -> str | None:
    """Why the selection found nothing, when it did: an owner with no managed user, or a user that
    neither RAM nor the ledger knows (one offboarded earlier is `gone`, which is success)."""
    hint = "check the spelling (`ramflow users` lists the managed users and their owners)"
    if not report.users and not report.journal.needs_human:
        return f"{selection}: no RAM user managed by ramflow matches; {hint}"
    if user is not None:
        outcome = report.users.get(user)
        if outcome is None or outcome.state not in ("gone", "planned"):
            return None
        unknown = outcome.holdings is None or not outcome.holdings.found
        if unknown and rt.store.ledger.get_user(user) is None:
            return f"{selection}: no RAM user of that name, and none in the ledger; {hint}"
    return None


def show_report(console: Console, report: OffboardReport) -> None:
    title = "Offboarding plan (dry run: nothing was changed)" if report.dry_run else "Offboarding"
    table = Table("user", "state", "keys", "policies", "rg grants", "groups", "MFA", "calls", title=title)
    journal = report.journal
    done = Counter(a["subject"] for a in (journal.planned if report.dry_run else journal.actions))
    for name, outcome in report.users.items():
        held = outcome.holdings
        table.add_row(
            name,
            outcome.state,
            *(
                (
                    str(len(held.keys)),
                    str(len(held.policies)),
                    str(len(held.rg_grants)),
                    str(len(held.groups)),
                    "yes" if held.mfa_serial else "-",
                )
                if held is not None and held.found
                else ("-",) * 5
            ),
            str(done.get(name, 0)),
        )
    if not report.users:
        table.add_row("(no users found)", "", "", "", "", "", "", "")
    console.print(table)
    if report.dry_run:
        show_planned(console, journal.planned)
    show_problems(console, journal.errors, journal.needs_human)
    states = Counter(o.state for o in report.users.values())
    console.print(", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "nothing to do")


def show_planned(console: Console, planned: list[dict[str, str]]) -> None:
    if planned:
        calls = Table("subject", "would call", "on", title="Calls a real run would make")
        for call in planned:
            calls.add_row(call["subject"], call["action"], call["target"])
        console.print(calls)


def show_problems(console: Console, errors: list[dict[str, str]], humans: list[dict[str, Any]]) -> None:
    if humans:
        table = Table("subject", "needs a human because", title="Needs a human", title_style="yellow")
        for entry in humans:
            table.add_row(str(entry.get("subject", "")), str(entry.get("reason", "")))
        console.print(table)
    if errors:
        table = Table("where", "error", title="Errors (run again to finish)", title_style="red")
        for error in errors:
            table.add_row(error["field"], error["reason"])
        console.print(table)
