"""Demo part: what the local cloud is and that the official SDK talks to it."""

from __future__ import annotations

from rich.table import Table

from local.demo import Demo


def run(demo: Demo) -> None:
    demo.section("The local Alibaba Cloud")
    clients = demo.root_clients
    identity = clients.sts.get_caller_identity().body
    alias = clients.ram.get_account_alias().body.account_alias
    table = Table("API", "call (official SDK over loopback)", "answer")
    table.add_row("STS 2015-04-01", "GetCallerIdentity", f"{identity.identity_type} {identity.arn}")
    table.add_row("RAM 2015-05-01", "GetAccountAlias", alias)
    demo.console.print(table)
