"""One RAM role per function: what each may do, rendered into `deploy/<role>-policy.json` and
`deploy/<role>-trust.json` from the catalog, the managed-user prefix and the calls its code makes.

`ROLES` is the table reviewers read: function → role name → duties. Adding a function's role is one
entry (a new function names the duties it needs; a new duty is one builder in `DUTIES`). Run
`.venv/bin/python -m local.build --write-policy` after a change; a test fails while a committed file
differs from its rendering.

What RAM's policy language can express, and where this relies on it (the ARN formats and which
actions take which resource are RAM's own tables, https://www.alibabacloud.com/help/doc-detail/187392.htm
"RAM authorization" of IMS/RAM: `acs:ram:*:<account-id>:user/<user-name>`, `ram:CreateUser` and
`ram:ListUsers` only on `user/*`; STS: https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-ram):

- user-level writes name the user's ARN, and RAM matches `*` inside it: every write on a user is
  scoped to `user/<managed prefix>*`. RAM publishes no condition key on a RAM user's tags (its
  tables list none for user actions, and RAM users are not among the resource types with
  "Tag Ram Support", https://www.alibabacloud.com/help/doc-detail/172061.htm): `managed-by=ramflow`
  cannot be a condition, so the name is the boundary;
- `ram:CreateUser` is authorized on `user/*` whatever the name: policy cannot refuse a name outside
  the prefix, the code does (`shared.policy.guard`), and an alert fires;
- `ram:CreatePolicy` is checked against the new policy's ARN, never its document: creating, granting
  and deleting custom policies is limited to the catalog templates' rendered names
  (`ramflow-<template>-*`); the content is the code's job (only catalog templates are rendered) and
  an alert fires on every creation;
- `eventbridge:PutEvents` is authorized on the event bus, `acs:eventbridge:<region>:<account>:eventbus/<name>`
  (EventBridge's RAM reference and custom-policy examples, `acs:eventbridge:*:*:eventbus/<bus-name>`,
  https://help.aliyun.com/en/eventbridge/custom-permission-policy-reference): the functions that deliver
  results may put events only on the buses RAMFLOW_DESTINATIONS names, never on the `default` bus
  whose rules trigger the lifecycle functions (a result could otherwise pose as a request).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO / "deploy"

ROLE_PREFIX = "ramflow-fn-"
"""Every function's role is `ramflow-fn-<function>`; no vended role may be named so."""
VENDED_ROLE_PATTERN = "acs:ram::*:role/ramflow-*"
FUNCTION_ROLE_PATTERN = f"acs:ram::*:role/{ROLE_PREFIX}*"
CUSTOM_POLICY_PREFIX = "ramflow-"  # shared.policy.templates names rendered policies ramflow-<template>-<hash>
DEFAULT_MANAGED_USER_PREFIX = "rf-"
"""The prefix the committed documents are rendered with; s.yaml's default for RAMFLOW_MANAGED_USER_PREFIX."""
DEFAULT_RESULT_BUSES = ("ramflow-results",)
"""The result buses the committed documents are rendered with (README "Results, pickup and notices");
a deployment whose RAMFLOW_DESTINATIONS names others renders its own documents."""

# The platform policy every function role also holds: what FC does with the role on the function's
# behalf (ship logs to s.yaml's Logstore, park failed async events in the MNS queue).
PLATFORM_POLICY = "ramflow-platform"

Statement = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """What the documents are rendered for."""

    managed_user_prefix: str = DEFAULT_MANAGED_USER_PREFIX
    catalog_path: Path | None = None
    result_buses: tuple[str, ...] = DEFAULT_RESULT_BUSES

    @property
    def users(self) -> str:
        """Users ramflow may change. An empty prefix means every user (the unscoped mode)."""
        return f"acs:ram:*:*:user/{self.managed_user_prefix}*"

    @property
    def buses(self) -> list[str]:
        """The ARNs of the event buses results are delivered to."""
        return [f"acs:eventbridge:*:*:eventbus/{name}" for name in self.result_buses]


def result_buses(destinations_path: Path | None) -> tuple[str, ...]:
    """The EventBridge buses a destinations file routes results to (sorted, each once)."""
    from shared.delivery.config import Destinations

    routes = Destinations.load(destinations_path).routes  # refuses the lifecycle bus (ConfigError)
    return tuple(sorted({r.eventbridge.bus for r in routes if r.eventbridge is not None}))


ALL_USERS = "acs:ram:*:*:user/*"
RESOURCE_GROUPS = "acs:resourcemanager::*:resourcegroup/*"
ANY_POLICY = "acs:ram:*:*:policy/*"

# --- reads every lifecycle function makes (reporting unmanaged users needs them on any user) ----------
READ_USERS = ["ram:GetUser", "ram:ListUsers", "ram:ListTagResources"]
SYSTEM_POLICIES = "acs:ram:*:system:policy/*"


def _catalog(scope: Scope) -> Any:
    """The catalog the documents are rendered from, read once per version of the file: one role's
    policy asks for it several times, and seeding renders every role's."""
    from shared.config import DEFAULT_CATALOG
    from shared.policy.catalog import Catalog

    path = str(scope.catalog_path or DEFAULT_CATALOG)
    try:
        stat = os.stat(path)
    except OSError:
        return Catalog.load(path)  # says why the file cannot be read
    return _load_catalog(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_catalog(path: str, mtime_ns: int, size: int) -> Any:
    """`Catalog.load`, keyed by the file's path, modification time and size (a changed file is read again)."""
    from shared.policy.catalog import Catalog

    return Catalog.load(path)


def _grantable(scope: Scope, at: str) -> list[str]:
    """The catalog's policies and ramflow's rendered ones that may be granted at scope `at`
    (`account` or `resource_group`): all a grant may name there."""
    catalog = _catalog(scope)
    policies = sorted(
        f"acs:ram:*:{'system' if entry.type == 'System' else '*'}:policy/{name}"
        for name, entry in catalog.policies.items()
        if at in entry.scopes
    )
    templates = [
        f"acs:ram:*:*:policy/{CUSTOM_POLICY_PREFIX}{name}-*"
        for name, entry in sorted(catalog.templates.items())
        if at in entry.scopes
    ]
    return [*templates, *policies]


def _grantable_system(scope: Scope) -> list[str]:
    catalog = _catalog(scope)
    return sorted(
        f"acs:ram:*:{'system' if entry.type == 'System' else '*'}:policy/{name}"
        for name, entry in catalog.policies.items()
    )


def _template_names(scope: Scope) -> list[str]:
    return [
        f"acs:ram:*:*:policy/{CUSTOM_POLICY_PREFIX}{name}-*" for name in sorted(_catalog(scope).templates)
    ]


def _read(scope: Scope) -> list[Statement]:
    return [{"Effect": "Allow", "Action": READ_USERS, "Resource": ALL_USERS}]


def _provision(scope: Scope) -> list[Statement]:
    users = scope.users
    return [
        {"Effect": "Allow", "Action": "ram:CreateUser", "Resource": ALL_USERS},
        {
            "Effect": "Allow",
            "Action": [
                "ram:TagResources",
                "ram:CreateLoginProfile",
                "ram:GetLoginProfile",
                "ram:UpdateLoginProfile",
                "ram:CreateAccessKey",
                "ram:ListAccessKeys",
                "ram:UpdateAccessKey",
                "ram:DeleteAccessKey",
            ],
            "Resource": users,
        },
        {"Effect": "Allow", "Action": "ram:CreatePolicy", "Resource": _template_names(scope)},
        {"Effect": "Allow", "Action": "ram:GetPolicy", "Resource": _template_names(scope)},
        # references are checked before the first write: the catalog's policies and the group exist
        {"Effect": "Allow", "Action": "ram:GetPolicy", "Resource": _grantable_system(scope)},
        {"Effect": "Allow", "Action": "resourcemanager:GetResourceGroup", "Resource": RESOURCE_GROUPS},
        # RAM checks both the user and the policy; ResourceManager checks the group and the policy but
        # not the principal, so the code refuses a principal outside the prefix there (shared.scope).
        {
            "Effect": "Allow",
            "Action": "ram:AttachPolicyToUser",
            "Resource": [users, *_grantable(scope, "account")],
        },
        {
            "Effect": "Allow",
            "Action": "resourcemanager:AttachPolicy",
            "Resource": [RESOURCE_GROUPS, *_grantable(scope, "resource_group")],
        },
        {"Effect": "Allow", "Action": ["ram:GetAccountAlias", "ram:GetPasswordPolicy"], "Resource": "*"},
    ]


def _rotate_keys(scope: Scope) -> list[Statement]:
    """Rotate a managed user's AccessKey (shared/flows/keys.py): the AccessKey actions, nothing else."""
    return [
        {
            "Effect": "Allow",
            "Action": [
                "ram:ListAccessKeys",
                "ram:CreateAccessKey",
                "ram:GetAccessKeyLastUsed",
                "ram:UpdateAccessKey",
                "ram:DeleteAccessKey",
            ],
            "Resource": scope.users,
        }
    ]


def _take_away(scope: Scope) -> list[Statement]:
    """Remove grants and disable access, on managed users only; delete rendered policies nobody uses."""
    users = scope.users
    return [
        {
            "Effect": "Allow",
            "Action": [
                "ram:ListPoliciesForUser",
                "ram:ListAccessKeys",
                "ram:GetAccessKeyLastUsed",
                "ram:UpdateAccessKey",
                "ram:GetLoginProfile",
                "ram:DeleteLoginProfile",
            ],
            "Resource": users,
        },
        {
            "Effect": "Allow",
            "Action": ["ram:DetachPolicyFromUser", "resourcemanager:DetachPolicy"],
            "Resource": [users, RESOURCE_GROUPS, ANY_POLICY],
        },
        {"Effect": "Allow", "Action": "resourcemanager:ListPolicyAttachments", "Resource": RESOURCE_GROUPS},
        # resource-group grants name the principal `<user>@<alias>.onaliyun.com`
        {"Effect": "Allow", "Action": "ram:GetAccountAlias", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["ram:ListEntitiesForPolicy", "ram:DeletePolicy"],
            "Resource": _template_names(scope),
        },
    ]


def _delete_users(scope: Scope) -> list[Statement]:
    users = scope.users
    return [
        {
            "Effect": "Allow",
            "Action": [
                "ram:DeleteAccessKey",
                "ram:ListGroupsForUser",
                "ram:GetUserMFAInfo",
                "ram:UnbindMFADevice",
                "ram:DeleteUser",
                "ram:TagResources",
            ],
            "Resource": users,
        },
        {
            "Effect": "Allow",
            "Action": "ram:RemoveUserFromGroup",
            "Resource": [users, "acs:ram:*:*:group/*"],
        },
        {"Effect": "Allow", "Action": "ram:DeleteVirtualMFADevice", "Resource": "acs:ram:*:*:mfa/*"},
    ]


def _publish(scope: Scope) -> list[Statement]:
    """Deliver results (shared.delivery): the outbox's EventBridge sender puts them on the result buses.
    The functions that answer events send their own results at once; reconcile retries everyone's."""
    if not scope.result_buses:
        return []
    return [{"Effect": "Allow", "Action": "eventbridge:PutEvents", "Resource": scope.buses}]


def _vend(scope: Scope) -> list[Statement]:
    return [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": VENDED_ROLE_PATTERN},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": FUNCTION_ROLE_PATTERN},
    ]


DUTIES: dict[str, Callable[[Scope], list[Statement]]] = {
    "read": _read,
    "provision": _provision,
    "rotate-keys": _rotate_keys,
    "take-away": _take_away,
    "delete-users": _delete_users,
    "publish": _publish,
    "vend": _vend,
}


@dataclass(frozen=True)
class FunctionRole:
    """A function's role: its duties, and the functions it hands events to (fc:InvokeFunction)."""

    function: str
    duties: tuple[str, ...] = ()
    invokes: tuple[str, ...] = ()
    summary: str = ""

    @property
    def role(self) -> str:
        return f"{ROLE_PREFIX}{self.function}"


ROLES: dict[str, FunctionRole] = {
    r.function: r
    for r in (
        # user-requested carries out an auto-approved ticket at once: it provisions like access-approved.
        # Every function that answers lifecycle events delivers its own result ("publish"); reconcile's
        # timer retries the deliveries that failed. The ingress does not: the function it invokes does.
        FunctionRole(
            "user-requested",
            ("read", "provision", "publish"),
            summary="record and plan; provision auto-approved",
        ),
        FunctionRole(
            "access-approved",
            ("read", "provision", "publish"),
            summary="create users, grant, enable access",
        ),
        # Rotation has its own function so that reconcile, which hands aged keys to it, can reach no
        # function that provisions: an age request names a user and a key, nothing else.
        FunctionRole(
            "key-rotation",
            ("rotate-keys", "publish"),
            summary="rotate managed users' AccessKeys (on request, or aged keys from reconcile)",
        ),
        FunctionRole(
            "access-revoked", ("read", "take-away", "publish"), summary="remove one ticket's grants"
        ),
        # A large offboarding is a job of per-user units that user-offboarded hands to itself
        # (shared/flows/fanout.py); reconcile runs a stalled job's units itself, invoking nothing for it.
        FunctionRole(
            "user-offboarded",
            ("read", "take-away", "delete-users", "publish"),
            invokes=("user-offboarded",),
            summary="disable and delete leavers; hand a large job's units to itself",
        ),
        # Reconcile may not create keys: a key past its age is handed to key-rotation (async invoke),
        # the only function it may invoke.
        FunctionRole(
            "reconcile",
            ("read", "take-away", "delete-users", "publish"),
            invokes=("key-rotation",),
            summary="expire grants, finish deletions, retry deliveries, hand aged keys on, finish stalled jobs",
        ),
        FunctionRole("token-vendor", ("vend",), summary="STS sessions of the vended roles"),
        FunctionRole(
            "webhook-ingress",
            invokes=(
                "user-requested",
                "access-approved",
                "access-revoked",
                "user-offboarded",
                "key-rotation",
            ),
            summary="verify, then invoke the owning function",
        ),
        # Reads the state store only: no cloud permission at all.
        FunctionRole("credential-pickup", summary="hand a requester its sealed secret"),
    )
}


def _merge(statements: Sequence[Statement]) -> list[Statement]:
    """Statements with the same effect and resources become one; actions keep their first order."""
    merged: dict[str, Statement] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        key = json.dumps([statement["Effect"], statement["Resource"]])
        if key in merged:
            known = merged[key]["Action"]
            known += [a for a in actions if a not in known]
        else:
            merged[key] = {
                "Effect": statement["Effect"],
                "Action": list(actions),
                "Resource": statement["Resource"],
            }
    for statement in merged.values():
        if len(statement["Action"]) == 1:
            statement["Action"] = statement["Action"][0]
    return list(merged.values())


def role_policy(function: str, scope: Scope | None = None) -> dict[str, Any]:
    """The permissions policy of a function's role."""
    scope = scope or Scope()
    entry = ROLES[function]
    statements: list[Statement] = []
    for duty in entry.duties:
        statements += DUTIES[duty](scope)
    if entry.invokes:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "fc:InvokeFunction",
                "Resource": [f"acs:fc:*:*:functions/{name}" for name in entry.invokes],
            }
        )
    if not statements:  # a function that calls no cloud API holds nothing
        statements = [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
    return {"Version": "1", "Statement": _merge(statements)}


def trust_policy() -> dict[str, Any]:
    """Only Function Compute may assume a function's role."""
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["fc.aliyuncs.com"]}}
        ],
    }


def platform_policy() -> dict[str, Any]:
    """FC's own use of every function role: s.yaml's Logstore and the failed-events queue."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "log:PostLogStoreLogs",
                "Resource": "acs:log:*:*:project/ramflow-logs/logstore/functions",
            },
            {
                "Effect": "Allow",
                "Action": "mns:SendMessage",
                "Resource": "acs:mns:*:*:/queues/ramflow-failed-events/messages",
            },
        ],
    }


def text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def documents(scope: Scope | None = None) -> dict[Path, str]:
    """Every deploy/ file this module renders, by path."""
    found = {DEPLOY_DIR / f"{PLATFORM_POLICY}-policy.json": text(platform_policy())}
    for function, entry in ROLES.items():
        found[DEPLOY_DIR / f"{entry.role}-policy.json"] = text(role_policy(function, scope))
        found[DEPLOY_DIR / f"{entry.role}-trust.json"] = text(trust_policy())
    return found


def scope_from_env() -> Scope:
    """RAMFLOW_MANAGED_USER_PREFIX and the buses of RAMFLOW_DESTINATIONS, or the committed defaults."""
    prefix = os.environ.get("RAMFLOW_MANAGED_USER_PREFIX")
    destinations = os.environ.get("RAMFLOW_DESTINATIONS")
    return Scope(
        managed_user_prefix=DEFAULT_MANAGED_USER_PREFIX if prefix is None else prefix,
        result_buses=result_buses(Path(destinations)) if destinations else DEFAULT_RESULT_BUSES,
    )


def write(scope: Scope | None = None) -> list[Path]:
    written = []
    for path, content in documents(scope or scope_from_env()).items():
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
