"""STS rules: parameter formats, session policies and role trust policies.

Pure functions over plain values, so the handlers stay thin and the rules can be read in one place.
The limits follow the AssumeRole reference (2015-04-01).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from local.emulator.core import Principal
from local.emulator.sts import exceptions as errors

DEFAULT_DURATION_SECONDS = 3600
MIN_DURATION_SECONDS = 900
DEFAULT_MAX_SESSION_DURATION = 3600
MAX_POLICY_LENGTH = 2048

_ROLE_ARN = re.compile(r"acs:ram::(?P<account>\d+):role/(?P<role>[^/\s]+)")
_SESSION_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:/-]{2,1224}")
_SOURCE_IDENTITY = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
_RESERVED_SOURCE_PREFIXES = ("acs:", "aliyun:", "alibabacloud:")
_ASSUME_ACTIONS = {"sts:assumerole", "sts:*", "*"}


@dataclass(frozen=True)
class RoleArn:
    account_id: str
    role_name: str


def parse_role_arn(raw: str) -> RoleArn:
    match = _ROLE_ARN.fullmatch(raw.strip())
    if match is None:
        raise errors.WronglyFormed("RoleArn")
    return RoleArn(match["account"], match["role"])


def check_session_name(name: str) -> str:
    if not _SESSION_NAME.fullmatch(name):
        raise errors.WronglyFormed("RoleSessionName")
    return name


def check_external_id(value: str | None) -> str | None:
    if value is not None and not _EXTERNAL_ID.fullmatch(value):
        raise errors.WronglyFormed("ExternalId")
    return value


def check_source_identity(value: str | None) -> str | None:
    if value is None:
        return None
    if not _SOURCE_IDENTITY.fullmatch(value) or value.lower().startswith(_RESERVED_SOURCE_PREFIXES):
        raise errors.WronglyFormed("SourceIdentity")
    return value


def parse_duration(raw: str | None, max_session_duration: int) -> int:
    """900 s up to the role's MaxSessionDuration; 3600 s when not given."""
    upper = max_session_duration or DEFAULT_MAX_SESSION_DURATION
    if raw is None or raw == "":
        return min(DEFAULT_DURATION_SECONDS, upper)
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidDurationSeconds(_hours(upper)) from None
    if not MIN_DURATION_SECONDS <= value <= upper:
        raise errors.InvalidDurationSeconds(_hours(upper))
    return value


def _hours(seconds: int) -> str:
    hours = seconds / 3600
    return f"{hours:g}hr" if hours != 1 else "1hr"


def parse_session_policy(raw: str | None) -> dict[str, Any] | None:
    """A session policy: at most 2,048 characters of a grammatical policy document."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_POLICY_LENGTH:
        raise errors.PolicySize(MAX_POLICY_LENGTH)
    try:
        document = json.loads(raw)
    except ValueError:
        raise errors.PolicyGrammar() from None
    if not isinstance(document, dict) or str(document.get("Version", "")) != "1":
        raise errors.PolicyGrammar()
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise errors.PolicyGrammar()
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") not in {"Allow", "Deny"}:
            raise errors.PolicyGrammar()
        if not _string_or_strings(statement.get("Action")) or not _string_or_strings(
            statement.get("Resource")
        ):
            raise errors.PolicyGrammar()
    return document


def _string_or_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return []


# --- trust policies -----------------------------------------------------------------------------
def trust_allows(document: str, caller: Principal, *, external_id: str | None) -> bool:
    """Does the role's AssumeRolePolicyDocument let `caller` assume it?

    An explicit Deny wins; otherwise one matching Allow is enough. `RAM` principals name an account
    (`acs:ram::<id>:root` or the bare id: every RAM user and role of that account), a user
    (`acs:ram::<id>:user/<name>`) or a role (`acs:ram::<id>:role/<name>`). `Service` and
    `Federated` principals never match a signed API caller.
    """
    try:
        policy = json.loads(document)
    except ValueError:
        return False
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return False
    context = {"sts:externalid": external_id}
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict) or not _applies(statement, caller, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _applies(statement: dict[str, Any], caller: Principal, context: dict[str, str | None]) -> bool:
    actions = [a.lower() for a in _string_or_strings(statement.get("Action"))]
    if not _ASSUME_ACTIONS.intersection(actions):
        return False
    return _principal_matches(statement.get("Principal"), caller) and _conditions_hold(
        statement.get("Condition"), context
    )


def _principal_matches(principal: Any, caller: Principal) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(_ram_entry_matches(entry, caller) for entry in _string_or_strings(principal.get("RAM")))


def _ram_entry_matches(entry: str, caller: Principal) -> bool:
    entry = entry.strip()
    account = caller.account_id
    if entry in {account, f"acs:ram::{account}:root", "*"}:
        return True
    prefix = f"acs:ram::{account}:"
    if not entry.startswith(prefix):
        return False
    kind, _, name = entry[len(prefix) :].partition("/")
    if kind == "user" and caller.kind == "user" and caller.user_name:
        return name.lower() == caller.user_name.lower()
    if kind == "role" and caller.kind == "assumed-role" and caller.role_name:
        return name.lower() == caller.role_name.lower()
    return False


def _conditions_hold(conditions: Any, context: dict[str, str | None]) -> bool:
    """The condition operators a trust policy uses for ExternalId; anything else fails closed."""
    if conditions is None:
        return True
    if not isinstance(conditions, dict):
        return False
    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            if not _condition_holds(operator, context.get(key.lower()), _string_or_strings(expected)):
                return False
    return True


def _condition_holds(operator: str, actual: str | None, expected: list[str]) -> bool:
    op = operator.lower()
    if op == "stringequals":
        return actual is not None and actual in expected
    if op == "stringnotequals":
        return actual is None or actual not in expected
    if op == "stringequalsignorecase":
        return actual is not None and actual.lower() in {e.lower() for e in expected}
    if op == "stringnotequalsignorecase":
        return actual is None or actual.lower() not in {e.lower() for e in expected}
    if op == "stringlike":
        return actual is not None and any(_wildcard(e).fullmatch(actual) for e in expected)
    if op == "stringnotlike":
        return actual is None or not any(_wildcard(e).fullmatch(actual) for e in expected)
    return False


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Policy wildcards: `*` any run of characters, `?` one character, nothing else special."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)
