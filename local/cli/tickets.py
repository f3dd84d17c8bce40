"""`ramflow tickets` and `ramflow users`: what the deployment's ledger holds, read-only."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from local.cli import app
from local.cli._context import PROFILE_OPTION, STORE_OPTION, Target, fail, open_store, reading, target
from local.review import TicketView, UserView, tickets, users
from shared.durations import parse_duration
from shared.store.records import TicketRecord

TICKET_STATUSES: tuple[str, ...] = get_args(TicketRecord.model_fields["status"].annotation)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def duration_option(flag: str, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise fail(f"{flag} {value!r}: {exc}; write an ISO-8601 duration such as P7D or PT12H") from None


def which_store(where: Target, console: Console) -> None:
    """Say which store is read when nobody named one: an empty local store must not pass for the deployment's."""
    if not where.store_named:
        console.print(
            f"reading the local store {where.settings.store}; name the deployment's with --profile or --store",
            style="yellow",
        )


def emit_json(items: list[Any]) -> None:
    print(json.dumps([i.model_dump(mode="json") for i in items], indent=2, ensure_ascii=False))


@app.command("tickets")
def list_tickets(
    status: str | None = typer.Option(
        None, "--status", help=f"Only this status: {', '.join(TICKET_STATUSES)}."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Only tickets for users this person owns."),
    expiring_within: str | None = typer.Option(
        None,
        "--expiring-within",
        help="Only tickets whose grants end within this ISO-8601 duration (e.g. P7D).",
    ),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List access tickets: pending, approved, completed, revoked, expiring. Reads the ledger only."""
    if status is not None and status not in TICKET_STATUSES:
        raise fail(f"--status {status!r}: not a ticket status; use one of {', '.join(TICKET_STATUSES)}")
    window = duration_option("--expiring-within", expiring_within)
    where = target(store=store, profile=profile)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    which_store(where, err)
    with reading(where):
        found = tickets(
            open_store(where),
            status=status,
            owner=owner,
            expiring_within=window,
            now=datetime.now(timezone.utc),
        )
    filters = [f"{flag} {value}" for flag, value in (("--status", status), ("--owner", owner)) if value]
    filters += [f"--expiring-within {expiring_within}"] if expiring_within else []
    if as_json:
        emit_json(found)
    else:
        show_tickets(Console(highlight=False, soft_wrap=True), found)
    if not found and filters:
        raise fail(f"no ticket matches {' '.join(filters)}")


def show_tickets(console: Console, found: list[TicketView]) -> None:
    table = Table(
        "ticket",
        "status",
        "user",
        "owner",
        "mode",
        "requester",
        "approved by",
        "approved",
        "expires",
        title="Tickets",
    )
    for t in found:
        table.add_row(
            t.ticket_id,
            t.status,
            t.user_name,
            t.owner,
            t.access_mode,
            t.requester,
            ", ".join(t.approvers) or "-",
            when(t.approved_at),
            when(t.expires_at),
        )
    console.print(table if found else "no tickets")


@app.command("users")
def list_users(
    name: str | None = typer.Argument(None, help="One managed RAM user (default: all)."),
    owner: str | None = typer.Option(None, "--owner", help="Only users this person owns."),
    store: str | None = STORE_OPTION,
    profile: str | None = PROFILE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Managed RAM users: owner, grants with scope and expiry, access mode, last change, findings."""
    from shared.errors import ConfigError
    from shared.policy.catalog import Catalog

    where = target(store=store, profile=profile)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    which_store(where, err)
    try:
        catalog = Catalog.load(where.settings.catalog_path)
    except ConfigError:
        catalog = None  # high-risk marks then come from the known list only
    with reading(where):
        found = users(
            open_store(where), name=name, owner=owner, catalog=catalog, now=datetime.now(timezone.utc)
        )
    if as_json:
        emit_json(found)
    else:
        show_users(Console(highlight=False, soft_wrap=True), found)
    if not found and name:
        raise fail(f"{name!r}: no managed RAM user of that name in the ledger (`ramflow users` lists them)")
    if not found and owner:
        raise fail(f"--owner {owner}: no managed RAM user has this owner; check the spelling")


def show_users(console: Console, found: list[UserView]) -> None:
    if not found:
        console.print("no managed users")
        return
    summary = Table(
        "user", "owner", "mode", "status", "tickets", "last change", "findings", title="Managed users"
    )
    for u in found:
        summary.add_row(
            u.user_name,
            u.owner,
            u.access_mode,
            u.status + (f" (delete after {when(u.delete_after)})" if u.delete_after else ""),
            ", ".join(u.tickets),
            when(u.last_change),
            str(len(u.findings)) if u.findings else "-",
        )
    console.print(summary)
    grants = Table(
        "user", "policy", "scope", "ticket", "status", "approved by", "expires", "risk", title="Grants"
    )
    for u in found:
        for g in u.grants:
            grants.add_row(
                g.user_name,
                f"{g.policy_type}:{g.policy_name}",
                g.scope,
                g.ticket_id,
                g.status,
                ", ".join(g.approvers) or "-",
                when(g.expires_at) + (" (soon)" if g.expiring else ""),
                "HIGH" if g.high_risk else "",
            )
    console.print(grants)
    findings = [(u.user_name, f) for u in found for f in u.findings]
    if findings:
        table = Table("user", "finding", "detail", "severity", "source", title="Findings")
        for user_name, f in findings:
            table.add_row(user_name, f.kind, f.detail, f.severity, f.source)
        console.print(table)
