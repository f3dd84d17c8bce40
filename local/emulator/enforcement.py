"""Policy enforcement: the emulator answers `NoPermission` (403) unless the caller's policies allow.

Off by default; `enforce(emulator)` switches it on through `Emulator.authorizer`. Evaluation follows
RAM's rules as documented for policy language version 1:

- the root account is always allowed; RAM users get the policies attached to them and to their
  groups; an assumed-role session gets its role's policies, intersected with the session policy
  passed to AssumeRole (both must allow; a Deny in either wins);
- an explicit Deny beats any Allow, and no matching Allow is an implicit deny;
- `Action` / `NotAction` and `Resource` / `NotResource` accept `*` and `?` wildcards, compared
  without regard to case (RAM names are case-insensitive);
- a call that names several resources (e.g. AttachPolicyToUser: the user and the policy) needs all
  of them allowed;
- `Condition` supports the String*, Bool, Numeric*, Date* and IpAddress operators over the keys
  `acs:CurrentTime`, `acs:SourceIp`, `acs:SecureTransport`, `acs:MFAPresent` and request
  parameters as `<service>:<Parameter>`. An operator it does not know makes an Allow statement not
  apply and a Deny statement apply: unknown means refused, never granted.

Action names use each API's RAM code, as the cloud does: RAM and IMS (user tags) are `ram:`, STS is
`sts:`, ResourceManager is `resourcemanager:`, EventBridge `eventbridge:`. Resources use the published ARN formats
(`acs:ram:*:<account>:user/<name>`, `…:policy/<name>` — `acs:ram:*:system:policy/<name>` for system
policies —, `…:role/<name>`, `…:group/<name>`, `acs:resourcemanager::<account>:resourcegroup/<id>`;
STS AssumeRole: the role ARN; CreatePolicy: the ARN of the policy it creates; EventBridge PutEvents:
the bus, `acs:eventbridge:<region>:<account>:eventbus/<name>`, as in EventBridge's RAM reference,
https://help.aliyun.com/en/eventbridge/custom-permission-policy-reference). Account-wide actions
(password policy, alias) have no resource-level permission: only `Resource: "*"` grants them.
`sts:GetCallerIdentity` needs no permission.

Every decision is kept in `decisions`, with the policy statements that allowed it, so a test can
ask which parts of a policy document a run actually needed.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from local.emulator import errors

if TYPE_CHECKING:
    from local.emulator.core import CallContext, Emulator

RAM_CODE = {
    "ram": "ram",
    "ims": "ram",
    "sts": "sts",
    "resourcemanager": "resourcemanager",
    "eventbridge": "eventbridge",
}
EXEMPT = frozenset({"sts:getcalleridentity"})

Effect = Literal["Allow", "Deny"]


@dataclass(frozen=True)
class Grant:
    """One statement that allowed (part of) a call: which policy, which statement, which patterns."""

    policy: str
    statement: int
    action: str
    resource: str


@dataclass(frozen=True)
class Decision:
    caller: str
    action: str
    resources: tuple[str, ...]
    allowed: bool
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    document: dict[str, Any]


@dataclass
class RequestContext:
    """What conditions may test: the standard `acs:` keys and the request's parameters."""

    action: str
    params: dict[str, str]
    now: float
    source_ip: str = "127.0.0.1"
    secure_transport: bool = False
    mfa_present: bool = False

    def value(self, key: str) -> str | None:
        lowered = key.lower()
        if lowered == "acs:currenttime":
            return datetime.fromtimestamp(self.now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if lowered == "acs:sourceip":
            return self.source_ip
        if lowered == "acs:securetransport":
            return str(self.secure_transport).lower()
        if lowered == "acs:mfapresent":
            return str(self.mfa_present).lower()
        service, _, name = lowered.partition(":")
        if service == self.action.partition(":")[0] and name:
            return next((v for k, v in self.params.items() if k.lower() == name), None)
        return None


# --- pattern matching -------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = True) -> bool:
    """RAM wildcards: `*` any run of characters, `?` one character; case-insensitive by default."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


def _first_match(statement: dict[str, Any], key: str, not_key: str, value: str) -> str | None:
    """The pattern under `key` matching `value`; for `not_key`, the statement text when none matches."""
    if key in statement:
        return next((p for p in _strings(statement[key]) if matches(p, value)), None)
    if not_key in statement:
        if any(matches(p, value) for p in _strings(statement[not_key])):
            return None
        return f"{not_key}!" + ",".join(_strings(statement[not_key]))
    return None


# --- conditions -------------------------------------------------------------------------------------
class _Unsupported(Exception):
    """A condition operator this emulator does not evaluate."""


def _as_number(text: str) -> float:
    return float(text)


def _as_time(text: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _in_network(address: str, network: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "stringequals": lambda a, b: a == b,
    "stringequalsignorecase": lambda a, b: a.lower() == b.lower(),
    "stringlike": lambda a, b: matches(b, a, ignore_case=False),
    "numericequals": lambda a, b: _as_number(a) == _as_number(b),
    "numericlessthan": lambda a, b: _as_number(a) < _as_number(b),
    "numericlessthanequals": lambda a, b: _as_number(a) <= _as_number(b),
    "numericgreaterthan": lambda a, b: _as_number(a) > _as_number(b),
    "numericgreaterthanequals": lambda a, b: _as_number(a) >= _as_number(b),
    "dateequals": lambda a, b: _as_time(a) == _as_time(b),
    "datelessthan": lambda a, b: _as_time(a) < _as_time(b),
    "datelessthanequals": lambda a, b: _as_time(a) <= _as_time(b),
    "dategreaterthan": lambda a, b: _as_time(a) > _as_time(b),
    "dategreaterthanequals": lambda a, b: _as_time(a) >= _as_time(b),
    "bool": lambda a, b: a.lower() == b.lower(),
    "ipaddress": _in_network,
}
_NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "numericnotequals": "numericequals",
    "datenotequals": "dateequals",
    "notipaddress": "ipaddress",
}


def _condition_holds(condition: dict[str, Any], request: RequestContext) -> bool:
    """Every operator and every key must hold; any listed value satisfies a key (OR)."""
    for operator, keys in condition.items():
        op = operator.lower()
        negated = op in _NEGATED
        compare = _COMPARE.get(_NEGATED.get(op, op))
        if compare is None or not isinstance(keys, dict):
            raise _Unsupported(operator)
        for key, expected in keys.items():
            actual = request.value(key)
            if actual is None:
                if not negated:
                    return False  # a missing key satisfies only negated operators
                continue
            try:
                hit = any(compare(actual, v) for v in _strings(expected))
            except ValueError:
                hit = False
            if hit == negated:
                return False
    return True


# --- evaluation -------------------------------------------------------------------------------------
def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def evaluate(
    policies: Sequence[NamedPolicy], action: str, resource: str, request: RequestContext
) -> tuple[Effect | None, list[Grant]]:
    """Deny if a Deny statement matches; Allow (with the statements that allow) if an Allow does."""
    grants: list[Grant] = []
    for policy in policies:
        for index, statement in enumerate(_statements(policy.document)):
            effect = statement.get("Effect")
            action_hit = _first_match(statement, "Action", "NotAction", action)
            resource_hit = _first_match(statement, "Resource", "NotResource", resource)
            if action_hit is None or resource_hit is None:
                continue
            try:
                holds = _condition_holds(statement.get("Condition") or {}, request)
            except _Unsupported:
                holds = effect == "Deny"  # fail closed either way
            if not holds:
                continue
            if effect == "Deny":
                return "Deny", []
            if effect == "Allow":
                grants.append(Grant(policy.name, index, action_hit, resource_hit))
    return ("Allow", grants) if grants else (None, [])


# --- what a call is, in RAM's terms --------------------------------------------------------------
def action_name(ctx: CallContext) -> str:
    return f"{RAM_CODE.get(ctx.service.name, ctx.service.name)}:{ctx.action}"


def _policy_arn(account: str, policy_type: str | None, name: str) -> str:
    owner = "system" if (policy_type or "").lower() == "system" else account
    return f"acs:ram:*:{owner}:policy/{name}"


# Creating or listing is authorized on the whole collection, whatever name the request carries.
# CreatePolicy is not: RAM checks it against the new policy's ARN, so a grant can name a prefix.
_COLLECTION = {
    "CreateUser": "user/*",
    "ListUsers": "user/*",
    "CreateGroup": "group/*",
    "ListGroups": "group/*",
    "CreateRole": "role/*",
    "ListRoles": "role/*",
    "ListPolicies": "policy/*",
    "CreateVirtualMFADevice": "mfa/*",
    "ListVirtualMFADevices": "mfa/*",
}


def resources_of(ctx: CallContext) -> list[str]:
    """The ARNs a call acts on (see the module docstring for the formats)."""
    account = ctx.account.account_id
    p = ctx.params
    ram = f"acs:ram:*:{account}"
    name = ctx.action
    service = ctx.service.name

    if service == "sts":
        return [p.get("RoleArn") or "*"] if name == "AssumeRole" else ["*"]
    if service == "resourcemanager":
        found = [f"acs:resourcemanager::{account}:resourcegroup/{p.get('ResourceGroupId') or '*'}"]
        if name in {"AttachPolicy", "DetachPolicy"} and p.get("PolicyName"):
            found.append(_policy_arn(account, p.get("PolicyType"), p["PolicyName"]))
        return found
    if service == "ims":
        return [f"{ram}:user/{u}" for u in _tagged_users(ctx)] or [f"{ram}:user/*"]
    if service == "eventbridge":
        region = ctx.service.host.split(".")[1]  # eventbridge-console.<region>.aliyuncs.com
        return [f"acs:eventbridge:{region}:{account}:eventbus/{p.get('EventBusName') or '*'}"]
    if name in _COLLECTION:
        return [f"{ram}:{_COLLECTION[name]}"]

    found = []
    if p.get("UserName"):
        found.append(f"{ram}:user/{p['UserName']}")
    elif name == "ListAccessKeys" and ctx.principal.user_name:
        found.append(f"{ram}:user/{ctx.principal.user_name}")  # UserName defaults to the caller
    if p.get("GroupName"):
        found.append(f"{ram}:group/{p['GroupName']}")
    if p.get("RoleName"):
        found.append(f"{ram}:role/{p['RoleName']}")
    if p.get("PolicyName"):
        found.append(_policy_arn(account, p.get("PolicyType"), p["PolicyName"]))
    if p.get("SerialNumber"):
        found.append(p["SerialNumber"])
    return found or ["*"]  # account-wide actions (alias, password policy): only `*` grants them


def _tagged_users(ctx: CallContext) -> list[str]:
    names = [n.split("@", 1)[0] for n in ctx.indexed("ResourcePrincipalName")]
    by_id = {u.user_id: u.user_name for u in ctx.account.ram.users.values()}
    names += [by_id.get(i, i) for i in ctx.indexed("ResourceId")]
    return names


# --- who is asking ------------------------------------------------------------------------------------
def _attached(ram: Any, kind: str, name: str) -> list[NamedPolicy]:
    return [
        NamedPolicy(f"{policy.policy_type}:{policy.policy_name}", json.loads(policy.default.document))
        for _, policy in ram.attached_policies(kind, name)
    ]


def identity_policies(ctx: CallContext) -> list[NamedPolicy]:
    """Account-scope policies of a RAM user (with its groups') or of an assumed role."""
    return policies_of(ctx.account, ctx.principal)


def policies_of(account: Any, principal: Any) -> list[NamedPolicy]:
    """`identity_policies` for a caller authenticated elsewhere (the local FC runtime's invocations)."""
    ram = account.ram
    if principal.kind == "user" and principal.user_name:
        found = _attached(ram, "User", principal.user_name)
        for group, _ in ram.groups_for_user(principal.user_name):
            found += _attached(ram, "Group", group.group_name)
        return found
    if principal.kind == "assumed-role" and principal.role_name:
        return _attached(ram, "Role", principal.role_name)
    return []


def caller_allowed(ctx: CallContext, action: str, resource: str) -> bool:
    """Do the caller's policies allow `action` on `resource`? For a service's own checks that hold
    whether or not enforcement is on (STS AssumeRole's `sts:AssumeRole` on the role). Root: yes."""
    if ctx.principal.kind == "root":
        return True
    request = RequestContext(action, dict(ctx.params), ctx.now())
    effect, _ = evaluate(identity_policies(ctx), action, resource, request)
    session = ctx.principal.session_policy
    if effect == "Allow" and session is not None:
        effect, _ = evaluate([NamedPolicy("session-policy", session)], action, resource, request)
    return effect == "Allow"


@dataclass
class PolicyEnforcer:
    """The emulator's authorizer: raises `NoPermission` for a call the caller's policies do not allow."""

    exempt: frozenset[str] = EXEMPT
    decisions: list[Decision] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, ctx: CallContext) -> None:
        action = action_name(ctx)
        if ctx.principal.kind == "root" or action.lower() in self.exempt:
            return
        self.authorize(ctx.account, ctx.principal, action, resources_of(ctx), dict(ctx.params), ctx.now())

    def authorize(
        self,
        account: Any,
        principal: Any,
        action: str,
        resources: list[str],
        params: dict[str, str],
        now: float,
    ) -> None:
        """Raise `NoPermission` unless the principal's policies allow `action` on every resource."""
        if principal.kind == "root":
            return
        request = RequestContext(action, params, now)
        identity = policies_of(account, principal)
        session = principal.session_policy
        grants: list[Grant] = []
        for resource in resources:
            effect, allowed_by = evaluate(identity, action, resource, request)
            if effect == "Allow" and session is not None:
                session_effect, session_grants = evaluate(
                    [NamedPolicy("session-policy", session)], action, resource, request
                )
                effect = "Allow" if session_effect == "Allow" else None
                allowed_by += session_grants
            if effect != "Allow":
                self._record(Decision(principal.arn, action, tuple(resources), False))
                raise errors.NoPermission(action, resource)
            grants += allowed_by
        self._record(Decision(principal.arn, action, tuple(resources), True, tuple(grants)))

    def _record(self, decision: Decision) -> None:
        with self._lock:
            self.decisions.append(decision)

    def allowed(self, caller_prefix: str = "") -> list[Decision]:
        return [d for d in self.decisions if d.allowed and d.caller.startswith(caller_prefix)]

    def denied(self, caller_prefix: str = "") -> list[Decision]:
        return [d for d in self.decisions if not d.allowed and d.caller.startswith(caller_prefix)]

    def grants_used(self, policy: str, caller_prefix: str = "") -> set[tuple[int, str, str]]:
        """(statement, action pattern, resource pattern) of `policy` that allowed at least one call."""
        return {
            (g.statement, g.action, g.resource)
            for d in self.allowed(caller_prefix)
            for g in d.grants
            if g.policy == policy
        }


def enforce(emulator: Emulator, *, exempt: Iterable[str] = EXEMPT) -> PolicyEnforcer:
    """Switch enforcement on for every later call; returns the enforcer (its decisions, for tests)."""
    enforcer = PolicyEnforcer(frozenset(a.lower() for a in exempt))
    emulator.authorizer = enforcer
    return enforcer
