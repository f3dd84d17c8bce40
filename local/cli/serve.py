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
from local.cli._context import check_endpoint, fail, port_guard
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
    config: Path = typer.Option(DEV_CONFIG, help="Local configuration (account, roles)."),
    root_key: str = typer.Option(
        f"{DEFAULT_ROOT_KEY_ID}:{DEFAULT_ROOT_KEY_SECRET}",
        help="Root AccessKey as ID:SECRET (seeding, invoke keys).",
    ),
    seed: bool | None = typer.Option(
        None,
        "--seed/--no-seed",
        help="Seed roles, resource groups and the runtime identity (idempotent; default: seed).",
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="State store of the functions (default: RAMFLOW_STORE, else the one `ramflow invoke` uses).",
    ),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency the embedded emulator adds to every call."),
    destinations: Path | None = typer.Option(
        None,
        envvar="RAMFLOW_DESTINATIONS",
        exists=True,
        dir_okay=False,
        help="Where results and notices go (RAMFLOW_DESTINATIONS); deliveries are retried while serving.",
    ),
    webhook_secret: str = typer.Option(
        DEV_SECRET,
        envvar="RAMFLOW_WEBHOOK_SECRET",
        show_default=False,
        help="whsec_… secret(s) of webhook-ingress, comma-separated (default: the development secret).",
    ),
) -> None:
    """Serve the functions: HTTP triggers and the InvokeFunction APIs (2016-08-15 and 2023-03-30)."""
    from local.fcruntime.asyncinvoke import retry_seconds_from
    from local.fcruntime.stack import LocalStack
    from local.seed import DevConfig
    from shared.config import Settings
    from shared.errors import CloudError, ConfigError

    key = parse_key_pair(root_key)
    try:
        retry_seconds_from()  # the local FC runtime's retry interval: a bad value is the user's to fix
    except ConfigError as exc:
        raise fail(str(exc)) from None
    cloud = check_endpoint(cloud)
    try:  # one local store for `serve` and `invoke`: a ticket requested with one is found by the other
        store = store or Settings.from_env().store
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        dev_config = DevConfig.load(config)
    except ConfigError as exc:
        raise fail(f"--config {config}: {str(exc).split(': ', 1)[-1]}; fix it or omit --config") from None
    with port_guard("--emulator-port", "127.0.0.1", emulator_port):  # the embedded emulator binds here
        stack = LocalStack(
            dev_config,
            port=port,
            cloud=cloud,
            emulator_port=emulator_port,
            root_key=key,
            seed_account=seed,
            emulator_options={"latency_ms": latency_ms} if cloud is None else None,
            environment={
                "RAMFLOW_WEBHOOK_SECRET": webhook_secret,
                **({"RAMFLOW_DESTINATIONS": str(destinations.resolve())} if destinations else {}),
            },
            store=store,
        )
    console = Console(highlight=False, soft_wrap=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        with port_guard("--port", "127.0.0.1", port):
            stack.start()
    except BaseException as exc:
        stack.stop()
        if not isinstance(exc, CloudError):
            raise
        where = f"--cloud {cloud}" if cloud else "the embedded emulator"
        hint = (
            "is it running? (`ramflow emulator`)"
            if exc.code in {"ConnectionError", "Timeout"}
            else "check --root-key, or pass --no-seed"
        )
        raise fail(f"seeding {where} failed at {exc.action}: {exc.code}; {hint}") from None
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stack.stop)
        runtime = stack.runtime
        assert runtime is not None
        where = "embedded emulator" if cloud is None else "cloud"
        console.print(f"ramflow serve ready on {runtime.endpoint} ({where} {stack.cloud_endpoint})")
        if cloud is None:
            console.print(
                f"  emulator control  {stack.cloud_endpoint}/emulator-api/ (reset, clock, recorder)"
            )
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
        journal = runtime.async_invocations.journal
        console.print(
            f"  failed async events  {runtime.endpoints()['failed_events']}"
            + (f", written to {journal}" if journal else "")
        )
        keys = (
            "the emulator's (root keys, RAM users' keys, STS sessions)"
            if cloud is None
            else f"root key {key[0]} only (the cloud's other keys are not known here)"
        )
        console.print(f"  InvokeFunction signed by: {keys}")
        console.print(f"  state store: {store}")
        for what in stack.missing:
            console.print(f"  [yellow]missing:[/yellow] {what}")
        console.print(
            f'  try: curl "{runtime.url("token-vendor")}?token=$(ramflow dev-token --sub demo-app)"'
        )
        sys.stdout.flush()  # scripts wait for the "ready" line on a pipe
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    console.print("stopped")
