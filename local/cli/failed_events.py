"""`ramflow failed-events`: the asynchronous events a running `ramflow serve` parked after FC's
retries (its stand-in for the MNS queue `ramflow-failed-events`), and a replay of one by request id.

In FC the events are messages in that queue and a replay is an invocation by hand (README, runbook).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests
import typer
from rich.console import Console
from rich.table import Table

from local.cli import app
from local.cli._context import check_endpoint, fail

CONTROL = "/fcruntime-api/failed-events"


def _call(method: str, url: str, fc: str) -> requests.Response:
    try:
        return requests.request(method, url, timeout=960)  # a replay waits for the function (≤ 900 s)
    except requests.RequestException:
        raise fail(f"--fc {fc}: nothing answers there; start `ramflow serve` or pass its address") from None


@app.command("failed-events")
def failed_events(
    fc: str = typer.Option("http://127.0.0.1:9000", "--fc", help="The `ramflow serve` to ask (its address)."),
    replay: str | None = typer.Option(
        None,
        "--replay",
        metavar="REQUEST_ID",
        help="Run this parked event again now, once its cause is fixed.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Asynchronous invocations that failed every retry under `ramflow serve`: function, request id,
    attempts, error type, why parked; or replay one (it leaves the list when it succeeds)."""
    base = check_endpoint(fc, "--fc")
    if replay is not None:
        reply = _call("POST", f"{base}{CONTROL}/{quote(replay, safe='')}/replay", fc)
        if reply.status_code == 404:
            raise fail(
                f"--replay {replay}: no parked event has that request id; `ramflow failed-events` lists them"
            )
        if reply.status_code != 200:
            raise fail(f"--replay {replay}: {reply.status_code} {_code(reply)}")
        outcome = reply.json()
        if as_json:
            typer.echo(json.dumps(outcome, indent=2))
        elif outcome["status"] == "completed":
            typer.echo(
                f"replayed {replay} ({outcome['function']}): completed as request {outcome['replay_request_id']}"
            )
        else:
            typer.echo(
                f"replayed {replay} ({outcome['function']}): failed again with {outcome['error_type']} "
                f"after {outcome['attempts']} attempts; it stays parked",
                err=True,
            )
        if outcome["status"] != "completed":
            raise typer.Exit(1)
        return
    reply = _call("GET", f"{base}{CONTROL}", fc)
    if reply.status_code != 200:
        raise fail(f"--fc {fc}: {reply.status_code} {_code(reply)}; is it a `ramflow serve`?")
    events: list[dict[str, Any]] = reply.json()["failed_events"]
    if as_json:
        typer.echo(json.dumps(events, indent=2))
        return
    table = Table(
        "request id", "function", "attempts", "error", "reason", "destination", "parked at",
        title=f"Failed asynchronous events ({len(events)})",
    )  # fmt: skip
    for e in events:
        table.add_row(
            e["request_id"],
            e["function"],
            str(e["attempts"]),
            e["error_type"],
            e["reason"],
            e["destination"] or "(none: FC drops it)",
            e["parked_at"],
        )
    Console(highlight=False, soft_wrap=True).print(table)


def _code(reply: requests.Response) -> str:
    try:
        return str(reply.json().get("Code") or "")
    except ValueError:
        return ""
