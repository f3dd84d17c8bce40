"""Which policy documents are high-risk: they need break-glass, two approvers and an expiry.

A document is high-risk when one of its Allow statements grants every action (`*`), any RAM action
that hands out power or credentials (`ram:*`, `ram:Attach*`, `ram:CreateAccessKey`, …), or
`sts:AssumeRole` on any role. Wildcards are expanded the way RAM reads them, case-insensitively,
and anything malformed counts as high-risk: the check fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

# System policies that are high-risk by definition; the catalog must mark them so.
KNOWN_HIGH_RISK_POLICIES = frozenset(
    {"AdministratorAccess", "AliyunRAMFullAccess", "AliyunSTSAssumeRoleAccess"}
)

# RAM (and ResourceManager) actions that let a principal widen its own or anyone's access.
ESCALATION_ACTIONS = (
    "ram:AttachPolicyToUser",
    "ram:AttachPolicyToGroup",
    "ram:AttachPolicyToRole",
    "ram:CreatePolicy",
    "ram:CreatePolicyVersion",
    "ram:SetDefaultPolicyVersion",
    "ram:CreateAccessKey",
    "ram:CreateLoginProfile",
    "ram:UpdateLoginProfile",
    "ram:AddUserToGroup",
    "ram:CreateRole",
    "ram:UpdateRole",
    "ram:CreateUser",
    "ram:PassRole",
    "resourcemanager:AttachPolicy",
)
_ANY_SERVICE_ACTION = "zz-no-such-service:ZzNoSuchAction"  # only a service wildcard matches this
_PROBE_ACCOUNT = "0000000000000000"
_ASSUME_ROLE = "sts:AssumeRole"


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """RAM's `*` (any run) and `?` (one character), nothing else special."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _matches(patterns: list[str], name: str) -> bool:
    return any(_wildcard(pattern).fullmatch(name) for pattern in patterns)


def _covers_any_role(resource: str) -> bool:
    """Does the pattern match a role name nobody chose? Probed in the pattern's own account, so
    `acs:ram::123456:role/*` counts as well as `*`."""
    segments = resource.split(":")
    account = segments[3] if len(segments) >= 5 else ""
    if not account or "*" in account or "?" in account:
        account = _PROBE_ACCOUNT
    return bool(_wildcard(resource).fullmatch(f"acs:ram::{account}:role/zz-no-such-role"))


class _Malformed(Exception):
    pass


def _strings(value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise _Malformed
    return values


def _allow_statements(document: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(document, dict):
        raise _Malformed
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list):
        raise _Malformed
    for statement in statements:
        if not isinstance(statement, dict):
            raise _Malformed
        effect = statement.get("Effect")
        if isinstance(effect, str) and effect.strip().lower() == "deny":
            continue  # a Deny never grants anything
        yield statement  # Allow, or an Effect RAM would not accept: judged as Allow (fail closed)


def _statement_is_high_risk(statement: dict[str, Any]) -> bool:
    if "NotAction" in statement:
        return True  # "everything except …" is as broad as it gets
    actions = _strings(statement.get("Action", []))
    if _matches(actions, _ANY_SERVICE_ACTION) or any(_matches(actions, a) for a in ESCALATION_ACTIONS):
        return True
    if _matches(actions, _ASSUME_ROLE):
        if "NotResource" in statement:
            return True
        return any(_covers_any_role(resource) for resource in _strings(statement.get("Resource", "*")))
    return False


def is_high_risk(document: Any) -> bool:
    """True when the document allows `*`, power over RAM, or assuming any role. Malformed → True."""
    try:
        return any(_statement_is_high_risk(statement) for statement in _allow_statements(document))
    except _Malformed:
        return True
