"""STS 2015-04-01: request parsing and response shapes."""

from __future__ import annotations

from typing import Any

from local.emulator.core import CallContext, Emulator, Service, iso
from local.emulator.enforcement import caller_allowed
from local.emulator.ram.models import Role
from local.emulator.sts import exceptions as errors
from local.emulator.sts import models

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
    if p.kind in {"root", "user"}:
        body["UserId"] = p.principal_id
    if p.kind == "assumed-role":
        body["RoleId"] = p.role_id
    return body


@service.action("AssumeRole")
def assume_role(ctx: CallContext) -> dict[str, Any]:
    arn = models.parse_role_arn(ctx.require("RoleArn"))
    session_name = models.check_session_name(ctx.require("RoleSessionName"))
    session_policy = models.parse_session_policy(ctx.get("Policy"))
    external_id = models.check_external_id(ctx.get("ExternalId"))
    source_identity = models.check_source_identity(ctx.get("SourceIdentity"))
    if ctx.principal.kind == "root":
        raise errors.RootRefused()
    # STS's own check, on whether or not policy enforcement is switched on: the caller needs
    # `sts:AssumeRole` on the role (e.g. AliyunSTSAssumeRoleAccess), before anything about the role
    # itself is revealed (https://www.alibabacloud.com/help/en/ram/support/faq-about-ram-roles-and-sts-tokens).
    if not caller_allowed(ctx, "sts:AssumeRole", f"acs:ram::{arn.account_id}:role/{arn.role_name}"):
        raise errors.NoPermission()

    role = _find_role(ctx.emulator, arn)
    if role is None:
        raise errors.EntityNotExistRole()
    if not models.trust_allows(role.assume_role_policy_document, ctx.principal, external_id=external_id):
        raise errors.NotTrusted()
    duration = models.parse_duration(ctx.get("DurationSeconds"), role.max_session_duration)

    session = ctx.emulator.issue_sts_session(
        account_id=arn.account_id,
        role_name=role.role_name,
        role_id=role.role_id,
        session_name=session_name,
        duration_seconds=duration,
        session_policy=session_policy,
    )
    body: dict[str, Any] = {
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "AccessKeySecret": session.access_key_secret,
            "SecurityToken": session.security_token,
            "Expiration": iso(session.expires_at),
        },
        "AssumedRoleUser": {
            "Arn": session.assumed_role_user_arn,
            "AssumedRoleId": f"{session.role_id}:{session.session_name}",
        },
    }
    if source_identity is not None:
        body["SourceIdentity"] = source_identity
    return body


def _find_role(emulator: Emulator, arn: models.RoleArn) -> Role | None:
    """The role the ARN names, in whichever emulated account owns it; None when there is none."""
    account = emulator.accounts.get(arn.account_id)
    if account is None:
        return None
    return account.ram.role_by_arn(f"acs:ram::{arn.account_id}:role/{arn.role_name}")
