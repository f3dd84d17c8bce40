"""`ramflow invoke`: run one function's handler locally and print its reply."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from local.cli import app
from local.cli._context import check_endpoint, credentials, fail, target, unreachable
from local.invoke import invoke as invoke_function
from shared.errors import ConfigError, FlowFailed, RamflowError
from shared.fc import FcCredentials


@app.command()
def invoke(
    function: str = typer.Argument(..., help="Function name from s.yaml, e.g. user-requested."),
    event: Path = typer.Option(..., "--event", help="The event file (JSON)."),
    cloud: str | None = typer.Option(
        None, help="Cloud endpoint (the emulator's URL); same as RAMFLOW_CLOUD_ENDPOINT."
    ),
) -> None:
    """Run FUNCTION's handler with the event in FILE and print the reply JSON on stdout.

    Credentials come from the default chain (environment, `aliyun` CLI profile, ECS role, OIDC), and
    only when a step calls a cloud API: recording a request needs none. The state store is
    RAMFLOW_STORE, by default the local one `ramflow serve` uses too."""
    cloud = check_endpoint(cloud)
    if cloud:
        os.environ["RAMFLOW_CLOUD_ENDPOINT"] = cloud
    if not os.environ.get("RAMFLOW_MANAGED_USER_PREFIX") and "RAMFLOW_ALLOW_UNSCOPED_USERS" not in os.environ:
        # Neither chosen: the development configuration's choice, as `ramflow serve` runs (the functions
        # still warn that they run unscoped). A deployment's profile sets the prefix.
        from local.seed import DevConfig

        unscoped = DevConfig.load().environment.get("RAMFLOW_ALLOW_UNSCOPED_USERS", "false")
        os.environ["RAMFLOW_ALLOW_UNSCOPED_USERS"] = unscoped
    where = target(cloud=cloud)
    try:
        body = event.read_bytes()
    except OSError as exc:
        raise fail(f"--event {event}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        found = credentials()
        creds: FcCredentials | None = FcCredentials(
            found.access_key_id, found.access_key_secret, found.security_token
        )
    except ConfigError:
        creds = None  # a step that calls an API says so; one that calls none runs
    try:
        reply = invoke_function(function, body, credentials=creds)
    except FlowFailed as exc:
        print(json.dumps(exc.result.to_json(), indent=2))
        hint = unreachable([e.model_dump() for e in exc.result.errors], where)
        if hint:
            typer.echo(f"error: {hint}", err=True)
        raise typer.Exit(2) from None
    except RamflowError as exc:
        raise fail(str(exc)) from None
    print(json.dumps(reply, indent=2, ensure_ascii=False))
