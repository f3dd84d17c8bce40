"""RAM 2015-05-01: request parsing and response shapes."""

from __future__ import annotations

from typing import Any

from local.emulator.core import CallContext, Service

service = Service("ram", "2015-05-01", "ram.aliyuncs.com")


@service.action("GetAccountAlias")
def get_account_alias(ctx: CallContext) -> dict[str, Any]:
    return {"AccountAlias": ctx.account.alias}
