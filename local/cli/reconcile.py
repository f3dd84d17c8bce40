"""`ramflow reconcile`: one reconcile pass from an operator's shell (what the timer runs)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from local.cli import app
from local.cli._context import PROFILE_OPTION, STORE_OPTION, refuse_local_store, target
from local.cli.offboard import run_and_show, show_planned, show_problems
from shared.flows.reconcile import ReconcileReport
from shared.flows.reconcile import reconcile as reconcile_pass


@app.command()
def reconcile(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; call only read APIs."),
    remediate: bool | None = typer.Option(
        None, "--remediate/--report-only", help="Fix drift (default: RAMFLOW_RECONCILE_REMEDIATE)."
    ),
    cloud: str | None = typer.Option(
        None, help="Cloud endpoint (the emulator's URL); as RAMFLOW_CLOUD_ENDPOINT."
    ),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the reply JSON instead of tables."),
) -> None:
    """Revoke expired grants, finish deletions whose grace ended, report (and fix) drift."""
    console = Console(highlight=False, soft_wrap=True)
    where = target(cloud=cloud, store=store, profile=profile)
    if not dry_run:
        refuse_local_store(where, "ramflow reconcile")
    run_and_show(
        console,
        where,
        as_json,
        lambda rt, progress, actor: reconcile_pass(
            rt, dry_run=dry_run, remediate=remediate, progress=progress, actor=actor
        ),
        lambda report: report.result(),
        show_reconcile,
        command="reconcile",
    )


def show_reconcile(console: Console, report: ReconcileReport) -> None:
    mode = " (dry run: nothing was changed)" if report.dry_run else ""
    summary = Table("what", "count", title=f"Reconcile{mode}")
    summary.add_row("grants past their duration", str(len(report.expired)))
    summary.add_row("deletions due", str(len(report.deletions)))
    summary.add_row("drift", str(len(report.drift)))
    summary.add_row("AccessKey findings", str(len(report.findings)))
    if report.busy:
        summary.add_row("sweep", "another reconcile sweep is running: nothing done")
    elif report.sweep:
        sweep = report.sweep
        state = "finished" if sweep["finished"] else f"about {sweep['eta_seconds']} s to go"
        summary.add_row("sweep", f"{sweep['checked']} of {sweep['total']} users ({state})")
    console.print(summary)
    if report.expired:
        table = Table("ticket", "user", "policy", "scope", "expired at", title="Expired grants")
        for grant in report.expired:
            table.add_row(
                grant.ticket_id,
                grant.user_name,
                f"{grant.policy_type}:{grant.policy_name}",
                grant.resource_group_id or "account",
                grant.expires_at.isoformat() if grant.expires_at else "",
            )
        console.print(table)
    if report.deletions:
        table = Table("user", "state", title="Deletions")
        for name, outcome in report.deletions.items():
            table.add_row(name, outcome.state)
        console.print(table)
    if report.drift:
        fixed = report.remediate and not report.dry_run
        table = Table("user", "drift", "what", "remediated", title="Drift")
        for drift in report.drift:
            done = fixed and drift.fix is not None
            planned = report.remediate and report.dry_run and drift.fix is not None
            table.add_row(
                drift.user_name, drift.kind, drift.target, "yes" if done else ("planned" if planned else "no")
            )
        console.print(table)
    if report.findings:
        table = Table("Cloud Config rule", "user", "AccessKey", "finding", title="AccessKey findings")
        for finding in report.findings:
            table.add_row(finding.rule, finding.user_name, finding.access_key_id, finding.detail)
        console.print(table)
    rotations = {name: r.rotation for name, r in report.keys.items() if r.rotation is not None}
    if rotations:
        table = Table("user", "state", "old key", "new key", "next step after", title="AccessKey rotations")
        for name, rotation in rotations.items():
            due = rotation.deactivate_after if rotation.state == "delivered" else rotation.delete_after
            table.add_row(
                name,
                rotation.state + (f": {rotation.hold_reason}" if rotation.hold_reason else ""),
                rotation.old_key_id,
                rotation.new_key_id or "",
                due.isoformat() if due and rotation.state in {"delivered", "deactivated"} else "",
            )
        console.print(table)
    if report.dry_run:
        show_planned(console, report.journal.planned)
    drift_humans = {(d.user_name, f"{d.kind} {d.target}".strip()) for d in report.drift} | {
        (f.user_name, f"{f.rule}: {f.access_key_id} {f.detail}") for f in report.findings
    }
    humans = [
        h for h in report.journal.needs_human if (h.get("subject"), h.get("reason")) not in drift_humans
    ]
    show_problems(console, report.journal.errors, humans)
