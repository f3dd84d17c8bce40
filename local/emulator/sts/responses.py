"""STS 2015-04-01: request parsing and response shapes."""

from __future__ import annotations

from typing import Any

from local.emulator.core import CallContext, Service

service = Service("sts", "2015-04-01", "sts.aliyuncs.com")


@service.action("GetCallerIdentity")
def get_caller_identity(ctx: CallContext) -> dict[str, Any]:
    p = ctx.principal
    identity = {"root": "Account", "user": "RAMUser", "assumed-role": "AssumedRoleUser"}[p.kind]
    body: dict[str, Any] = {
        "AccountId": p.account_id,
        "Arn": p.arn,
        "IdentityType": identity,
        "PrincipalId": p.principal_id,
    }
    if p.kind == "user":
        body["UserId"] = p.principal_id
    if p.kind == "assumed-role":
        body["RoleId"] = p.role_id
    return body
