"""`ramflow serve`: every function of `functions/` on loopback, as FC would run them."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console

from local.cli import app
from local.cli.emulator import parse_key_pair
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.seed import DEV_CONFIG
from shared.webhooks import DEV_SECRET


@app.command()
def serve(
    port: int = typer.Option(9000, help="TCP port of the functions; 0 picks a free one."),
    emulator_port: int = typer.Option(0, help="Port of the embedded emulator; 0 picks a free one."),
    cloud: str | None = typer.Option(
        None, help="Use this cloud endpoint (e.g. a running `ramflow emulator`) instead of embedding one."
    ),
    config: Path = typer.Option(
        DEV_CONFIG, exists=True, dir_okay=False, help="Local configuration (account, roles)."
    ),
    root_key: str = typer.Option(
        f"{DEFAULT_ROOT_KEY_ID}:{DEFAULT_ROOT_KEY_SECRET}",
        help="Root AccessKey as ID:SECRET (seeding, invoke keys).",
    ),
    seed: bool | None = typer.Option(
        None,
        "--seed/--no-seed",
        help="Seed roles and the runtime identity (default: only for the embedded emulator).",
    ),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency the embedded emulator adds to every call."),
    webhook_secret: str = typer.Option(
        DEV_SECRET,
        envvar="RAMFLOW_WEBHOOK_SECRET",
        show_default=False,
        help="whsec_… secret(s) of webhook-ingress, comma-separated (default: the development secret).",
    ),
) -> None:
    """Serve the functions: HTTP triggers and the InvokeFunction APIs (2016-08-15 and 2023-03-30)."""
    from local.fcruntime.stack import LocalStack

    key = parse_key_pair(root_key)
    stack = LocalStack(
        config,
        port=port,
        cloud=cloud,
        emulator_port=emulator_port,
        root_key=key,
        seed_account=seed,
        emulator_options={"latency_ms": latency_ms} if cloud is None else None,
        environment={"RAMFLOW_WEBHOOK_SECRET": webhook_secret},
    )
    console = Console(highlight=False, soft_wrap=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with stack:
        runtime = stack.runtime
        assert runtime is not None
        where = "embedded emulator" if cloud is None else "cloud"
        console.print(f"ramflow serve ready on {runtime.endpoint} ({where} {stack.cloud_endpoint})")
        for name, url in runtime.endpoints()["http_triggers"].items():
            console.print(f"  HTTP trigger  {name:<16} {url}")
        console.print(
            f"  InvokeFunction 2016-08-15  {runtime.endpoint}/2016-08-15/services/ramflow/functions/<fn>/invocations"
        )
        console.print(
            f"  InvokeFunction 2023-03-30  {runtime.endpoint}/2023-03-30/functions/<fn>/invocations"
        )
        missing = [name for name, present in runtime.endpoints()["functions"].items() if not present]
        if missing:
            console.print(f"  not written yet (404): {', '.join(missing)}")
        keys = (
            "the emulator's (root keys, RAM users' keys, STS sessions)"
            if cloud is None
            else f"root key {key[0]} only (the cloud's other keys are not known here)"
        )
        console.print(f"  InvokeFunction signed by: {keys}")
        console.print(
            f'  try: curl "{runtime.url("token-vendor")}?token=$(ramflow dev-token --sub demo-app)"'
        )
        sys.stdout.flush()  # scripts wait for the "ready" line on a pipe
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    console.print("stopped")
