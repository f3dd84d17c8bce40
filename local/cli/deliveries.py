"""`ramflow deliveries`: results and notices on their way, the ones that keep failing, and replays."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import typer
from rich.console import Console
from rich.table import Table

from local.cli import app

STATUSES = ("pending", "delivering", "delivered", "failing", "dead")


def _when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command()
def deliveries(
    status: list[str] = typer.Option(
        [], "--status", help=f"Only these statuses ({', '.join(STATUSES)}); repeatable."
    ),
    failing: bool = typer.Option(False, "--failing", help="Only deliveries that failed (failing or dead)."),
    replay: str | None = typer.Option(
        None, "--replay", metavar="MESSAGE_ID", help="Send this message again (the stored event, same id)."
    ),
    store: str | None = typer.Option(None, "--store", help="State store URL (default RAMFLOW_STORE)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List result and notice deliveries from the state store, or replay one (RAMFLOW_STORE)."""
    from shared.config import Settings
    from shared.delivery import Outbox
    from shared.store import StateStore

    unknown = sorted(set(status) - set(STATUSES))
    if unknown:
        raise typer.BadParameter(
            f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}", param_hint="--status"
        )
    settings = Settings.from_env()
    with StateStore.from_url(store or settings.store) as state:
        outbox = Outbox(state.backend)
        if replay is not None:
            replayed = outbox.replay(replay)
            if not replayed:
                typer.echo(
                    f"no delivery of {replay} can be replayed now (unknown, or an attempt is under way)",
                    err=True,
                )
                raise typer.Exit(1)
            for record in replayed:
                typer.echo(
                    f"queued again: {record.id} → {record.destination} (the next delivery pass sends it)"
                )
            return
        wanted = set(status) | ({"failing", "dead"} if failing else set())
        records = sorted(
            (r for r, _ in outbox.all() if not wanted or r.status in wanted), key=lambda r: r.created_at
        )
    if as_json:
        rows = [
            {k: v for k, v in r.model_dump(mode="json").items() if k != "event"}
            | {"type": r.event.get("type")}
            for r in records
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(
        "message",
        "destination",
        "type",
        "ticket",
        "status",
        "attempts",
        "last error",
        "next try",
        title=f"Deliveries ({len(records)})",
    )
    now = time.time()
    for r in records:
        next_try = _when(r.next_at) if r.status == "failing" and r.next_at > now else ""
        table.add_row(
            r.id,
            r.destination,
            str(r.event.get("type", "")),
            r.ticket_id or "",
            r.status,
            str(r.attempts),
            r.last_error or "",
            next_try,
        )
    Console(highlight=False, soft_wrap=True).print(table)
