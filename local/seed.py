"""Seed an (emulated) account with what the development configuration names, over the real RAM API.

- the roles applications get through the token vendor (trusting the account, system policies attached);
- one role per function (`ramflow-fn-<function>`, `local/roles.py`), each holding the document
  `deploy/` deploys, rendered for the local managed-user prefix, so what runs locally is what deploys;
  a vended role the token vendor's document does not let it assume is added by name;
- `ramflow-local-fc`, a RAM user standing in for the Function Compute service: the functions' roles
  trust it and the local runtime assumes each function's role with its AccessKey (the root key never
  reaches a function, and the cloud refuses AssumeRole by a root key anyway).

Every step is idempotent, so seeding an account twice changes nothing but the runtime's AccessKey.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from alibabacloud_ram20150501 import models as ram_models
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from local.emulator.core import Emulator
from local.emulator.enforcement import NamedPolicy, RequestContext, evaluate
from local.emulator.resourcemanager.models import for_account
from local.roles import FUNCTION_ROLE_PATTERN, ROLES, Scope, role_policy
from shared.cloud import Cloud
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.entitlements import Entitlements
from shared.errors import ConfigError, EntityAlreadyExists

T = TypeVar("T")

DEV_DIR = Path(__file__).resolve().parent / "dev"
GROUP_READY_WAIT_SECONDS = 30.0  # a group answers Creating for a while after CreateResourceGroup
DEV_CONFIG = DEV_DIR / "ramflow-dev.yaml"


class SeedAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^\d{1,32}$")
    alias: str


class SeedRole(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    policies: list[str] = Field(default_factory=list)
    max_session_duration: int = Field(3600, ge=3600, le=43200)
    external_id: str | None = None


class SeedResourceGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    display_name: str = ""


class DevConfig(BaseModel):
    """local/dev/ramflow-dev.yaml: the account, roles and settings a local session starts with."""

    model_config = ConfigDict(extra="forbid")

    account: SeedAccount
    entitlements: Path
    fc_identity: str = "ramflow-local-fc"
    roles: dict[str, SeedRole] = Field(default_factory=dict)
    resource_groups: dict[str, SeedResourceGroup] = Field(default_factory=dict)  # id → group
    environment: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = DEV_CONFIG) -> DevConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            config = cls.model_validate(raw)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"local config {path}: cannot be read ({type(exc).__name__})") from None
        except ValidationError as exc:
            raise ConfigError(
                f"local config {path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from None
        if not config.entitlements.is_absolute():
            config.entitlements = (path.parent / config.entitlements).resolve()
        return config

    def role_arn(self, name: str) -> str:
        return f"acs:ram::{self.account.id}:role/{name}"

    def environment_for(self, workdir: Path) -> dict[str, str]:
        return {k: v.replace("{workdir}", str(workdir)) for k, v in self.environment.items()}


@dataclass(frozen=True)
class SeedResult:
    account_id: str
    function_roles: dict[str, str]  # function → its role's ARN
    fc_identity: CloudCredentials = field(repr=False)
    roles: dict[str, str]  # role name → ARN


def _trust(principals: dict[str, list[str]], external_id: str | None = None) -> str:
    statement: dict[str, Any] = {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": principals}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Statement": [statement], "Version": "1"}, separators=(",", ":"))


class _Seeder:
    def __init__(self, clients: CloudClients):
        self.cloud = Cloud(clients)
        self.sdk = clients.ram

    def call(self, action: str, fn: Callable[[], T]) -> T | None:
        """Run one RAM call; 'already exists' means the step is done."""
        try:
            return self.cloud.runner.call(action, fn)
        except EntityAlreadyExists:
            return None

    def role(self, name: str, trust: str, description: str, max_session: int) -> None:
        created = self.call(
            "CreateRole",
            lambda: self.sdk.create_role(
                ram_models.CreateRoleRequest(
                    role_name=name,
                    assume_role_policy_document=trust,
                    description=description,
                    max_session_duration=max_session,
                )
            ),
        )
        if created is None:
            self.cloud.runner.call(
                "UpdateRole",
                lambda: self.sdk.update_role(
                    ram_models.UpdateRoleRequest(
                        role_name=name,
                        new_assume_role_policy_document=trust,
                        new_max_session_duration=max_session,
                    )
                ),
            )

    def attach_to_role(self, role: str, policy: str, policy_type: str) -> None:
        self.call(
            "AttachPolicyToRole",
            lambda: self.sdk.attach_policy_to_role(
                ram_models.AttachPolicyToRoleRequest(
                    policy_type=policy_type, policy_name=policy, role_name=role
                )
            ),
        )

    def custom_policy(self, name: str, document: dict[str, Any], description: str) -> None:
        text = json.dumps(document, separators=(",", ":"))
        created = self.call(
            "CreatePolicy",
            lambda: self.sdk.create_policy(
                ram_models.CreatePolicyRequest(
                    policy_name=name, policy_document=text, description=description
                )
            ),
        )
        if created is None:  # exists: make this document the default version
            versions = self.cloud.runner.call(
                "ListPolicyVersions",
                lambda: self.sdk.list_policy_versions(
                    ram_models.ListPolicyVersionsRequest(policy_name=name, policy_type="Custom")
                ),
            ).body.policy_versions.policy_version
            if len(versions) >= 5:
                oldest = next(v for v in versions if not v.is_default_version)
                self.cloud.runner.call(
                    "DeletePolicyVersion",
                    lambda: self.sdk.delete_policy_version(
                        ram_models.DeletePolicyVersionRequest(policy_name=name, version_id=oldest.version_id)
                    ),
                )
            self.cloud.runner.call(
                "CreatePolicyVersion",
                lambda: self.sdk.create_policy_version(
                    ram_models.CreatePolicyVersionRequest(
                        policy_name=name, policy_document=text, set_as_default=True
                    )
                ),
            )

    def fresh_access_key(self, user: str) -> CloudCredentials:
        """A new AccessKey for `user`, deleting older ones: only this runtime uses it."""
        for key in self.cloud.ram.list_access_keys(user):
            self.cloud.ram.delete_access_key(user, key.access_key_id)
        created = self.cloud.ram.create_access_key(user)
        return CloudCredentials(created.access_key_id, created.secret.get_secret_value())


def vendor_policy_document(vended: list[str], scope: Scope | None = None) -> dict[str, Any]:
    """The token vendor's deployed document; a vended role it does not let the vendor assume (deployed,
    every vended role is named `ramflow-…`) gets one more statement naming exactly those roles."""
    document = role_policy("token-vendor", scope)
    policy = [NamedPolicy("token-vendor", document)]
    request = RequestContext("sts:AssumeRole", {}, time.time())
    missing = [arn for arn in vended if evaluate(policy, "sts:AssumeRole", arn, request)[0] != "Allow"]
    if missing:
        extra = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": missing}
        document["Statement"] = [*document["Statement"], extra]
    return document


def seed_resource_groups(
    config: DevConfig,
    *,
    emulator: Emulator | None = None,
    root: CloudClients | None = None,
    ready_wait_seconds: float = GROUP_READY_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """The resource groups the sample events name, so they complete as written; returns the ids still
    missing. The API cannot choose a group's id, so only an emulator in this process gets them created
    (already `OK`: they stand for groups the account has); another endpoint is only checked
    (GetResourceGroup), and a group still `Creating` there is waited for, up to `ready_wait_seconds`,
    since the events use it at once."""
    missing = []
    for group_id, group in config.resource_groups.items():
        if emulator is not None and config.account.id in emulator.accounts:
            backend = for_account(emulator.accounts[config.account.id])
            with emulator.lock:
                if group_id not in backend.resource_groups:
                    backend.create_resource_group(
                        group.name,
                        group.display_name or group.name,
                        emulator.clock(),
                        group_id=group_id,
                        ready_after=0.0,
                    )
            continue
        if root is None:
            missing.append(group_id)
            continue
        rm = Cloud(root).rm
        waited, delay = 0.0, 0.5
        while True:
            found = rm.get_resource_group(group_id)
            if found is None or found.status != "Creating" or waited + delay > ready_wait_seconds:
                break
            sleep(delay)
            waited, delay = waited + delay, min(delay * 2, 4.0)
        if found is None or found.status != "OK":
            missing.append(group_id)  # absent, still Creating, or being deleted: the events would fail
    return missing


def seed(
    root: CloudClients,
    config: DevConfig,
    entitlements: Entitlements | None = None,
    *,
    scope: Scope | None = None,
) -> SeedResult:
    """Create (or bring up to date) the development account's roles, policies and runtime identity."""
    if entitlements is None:
        entitlements = Entitlements.load(config.entitlements)
    account = config.account.id
    s = _Seeder(root)

    arns: dict[str, str] = {}
    for name, role in config.roles.items():
        s.role(
            name,
            _trust({"RAM": [f"acs:ram::{account}:root"]}, role.external_id),
            role.description,
            role.max_session_duration,
        )
        for policy in role.policies:
            s.attach_to_role(name, policy, "System")
        arns[name] = config.role_arn(name)

    vended = sorted({grant.role_arn for grant in entitlements.roles.values()})
    fc_user = config.fc_identity
    trust = _trust({"RAM": [f"acs:ram::{account}:user/{fc_user}"], "Service": ["fc.aliyuncs.com"]})
    function_roles: dict[str, str] = {}
    for function, entry in ROLES.items():
        document = (
            vendor_policy_document(vended, scope)
            if function == "token-vendor"
            else role_policy(function, scope)
        )
        local_policy = f"{entry.role}-local"  # the deployed name stays free for deploy/'s steps
        s.custom_policy(local_policy, document, f"deploy/{entry.role}-policy.json, as deployed (local)")
        s.role(entry.role, trust, f"The role of the ramflow function {function}", 3600)
        s.attach_to_role(entry.role, local_policy, "Custom")
        function_roles[function] = arns[entry.role] = config.role_arn(entry.role)

    s.call(
        "CreateUser",
        lambda: s.sdk.create_user(
            ram_models.CreateUserRequest(
                user_name=fc_user, display_name="Local FC runtime", comments="Stands in for Function Compute"
            )
        ),
    )
    assume_policy = f"{fc_user}-assume"
    s.custom_policy(
        assume_policy,
        {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": FUNCTION_ROLE_PATTERN}],
        },
        "The local FC runtime may assume the functions' roles, nothing else",
    )
    s.call(
        "AttachPolicyToUser",
        lambda: s.sdk.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type="Custom", policy_name=assume_policy, user_name=fc_user
            )
        ),
    )
    return SeedResult(account, function_roles, s.fresh_access_key(fc_user), arns)
