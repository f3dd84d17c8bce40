"""`ramflow emulator`: the local Alibaba Cloud on a loopback port."""

from __future__ import annotations

import typer
from rich.console import Console

from local.cli import app
from local.cli._context import port_guard
from local.emulator.core import (
    DEFAULT_ACCOUNT_ALIAS,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ROOT_KEY_ID,
    DEFAULT_ROOT_KEY_SECRET,
    Emulator,
)
from local.emulator.enforcement import enforce
from local.emulator.resourcemanager.models import DEFAULT_READY_SECONDS
from local.emulator.server import EmulatorServer


def parse_key_pair(value: str, option: str = "--root-key") -> tuple[str, str]:
    key_id, sep, secret = value.partition(":")
    if not sep or not key_id or not secret:
        raise typer.BadParameter("expected ID:SECRET", param_hint=option)
    return key_id, secret


@app.command()
def emulator(
    port: int = typer.Option(8790, help="TCP port; 0 picks a free one."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback only is wise)."),
    account_id: str = typer.Option(DEFAULT_ACCOUNT_ID, help="The emulated account's id."),
    account_alias: str = typer.Option(DEFAULT_ACCOUNT_ALIAS, help="The account alias (logon suffix)."),
    root_key: str = typer.Option(
        f"{DEFAULT_ROOT_KEY_ID}:{DEFAULT_ROOT_KEY_SECRET}", help="Root AccessKey as ID:SECRET."
    ),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every call."),
    qps: float | None = typer.Option(None, min=0.1, help="Calls per second before Throttling.User."),
    fault_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Fraction of calls answered with a 503."),
    seed: bool = typer.Option(
        True, "--seed/--no-seed", help="Create the resource groups the sample events in events/ name."
    ),
    enforce_policies: bool = typer.Option(
        False,
        "--enforce",
        help="Evaluate every non-root caller's RAM policies on every call (NoPermission when not allowed).",
    ),
    resource_group_ready_seconds: float = typer.Option(
        DEFAULT_READY_SECONDS, min=0.0, help="How long a new resource group answers Creating; 0: OK at once."
    ),
) -> None:
    """Run the RAM / IMS / STS / ResourceManager emulator until interrupted."""
    emu = Emulator(
        account_id=account_id,
        account_alias=account_alias,
        root_key=parse_key_pair(root_key),
        latency_ms=latency_ms,
        qps=qps,
        fault_rate=fault_rate,
        resource_group_ready_seconds=resource_group_ready_seconds,
    )
    if enforce_policies:
        enforce(emu)
    with port_guard("--port", host, port):
        server = EmulatorServer(emu, host=host, port=port)
    if seed:
        from local.seed import DevConfig, seed_resource_groups

        config = DevConfig.load()
        if config.account.id in emu.accounts:
            seed_resource_groups(config, emulator=emu)
    console = Console()
    mode = ", policies enforced" if enforce_policies else ""
    console.print(
        f"emulator ready on {server.endpoint} (account {account_id}, alias {account_alias}{mode}); "
        f"control: {server.endpoint}/emulator-api/ (reset, clock, recorder, faults)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
