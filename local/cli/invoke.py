"""`ramflow invoke`: run one function's handler locally and print its reply."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from local.cli import app
from local.invoke import invoke as invoke_function
from shared.errors import RamflowError
from shared.handler import FlowFailed


@app.command()
def invoke(
    function: str = typer.Argument(..., help="Function name from s.yaml, e.g. user-requested."),
    event: Path = typer.Option(..., "--event", exists=True, dir_okay=False, help="The event file (JSON)."),
    cloud: str | None = typer.Option(
        None, help="Cloud endpoint (the emulator's URL); same as RAMFLOW_CLOUD_ENDPOINT."
    ),
) -> None:
    """Run FUNCTION's handler with the event in FILE and print the reply JSON on stdout."""
    if cloud:
        os.environ["RAMFLOW_CLOUD_ENDPOINT"] = cloud
    try:
        reply = invoke_function(function, event.read_bytes())
    except FlowFailed as exc:
        print(json.dumps(exc.result.to_json(), indent=2))
        raise typer.Exit(2) from None
    except RamflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(json.dumps(reply, indent=2, ensure_ascii=False))
