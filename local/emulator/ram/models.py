"""RAM state of one account: plain Python objects you can read in a debugger.

Business rules, name formats and limits live here; `responses.py` only parses requests and shapes
replies. Error codes are the ones the RAM API reference documents (`EntityNotExist.User`,
`DeleteConflict.User.AccessKey`, `InvalidParameter.UserName.InvalidChars`, ...). Where the reference
names no code, the closest sibling of a documented one is used and marked "(by analogy)" in
`responses.py`'s list of emulated operations and error codes.

Other parts of the emulator may call: `find_access_key` (authentication), `get_user` / `find_user`
(IMS tags live on `User.tags`), `get_role` / `role_by_arn` (STS AssumeRole), `policies_for_user` /
`policies_for_role` (policy enforcement), `attach_policy` / `detach_policy` / `attached_policies`
(resource-group scoped grants), `default_domain`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import string
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from local.emulator.errors import DeclaredError, InvalidParameter
from local.emulator.ram import exceptions as errors
from local.emulator.ram.policies import SYSTEM_POLICIES, SYSTEM_POLICY_CREATE_DATE

HolderKind = Literal["User", "Group", "Role"]
PolicyType = Literal["System", "Custom"]
POLICY_TYPES: tuple[PolicyType, ...] = ("System", "Custom")
HOLDER_KINDS: tuple[HolderKind, ...] = ("User", "Group", "Role")

_ALNUM = string.ascii_letters + string.digits
_USER_NAME = re.compile(r"[A-Za-z0-9._-]+")
_GROUP_NAME = re.compile(r"[A-Za-z0-9._-]+")
_ROLE_NAME = re.compile(r"[A-Za-z0-9.-]+")
_POLICY_NAME = re.compile(r"[A-Za-z0-9-]+")
_MFA_NAME = re.compile(r"[A-Za-z0-9.-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MOBILE = re.compile(r"\d{1,4}-\d{5,15}")
_ALIAS = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_AUTH_CODE = re.compile(r"\d{6}")
_VERSION_ID = re.compile(r"v([1-9][0-9]*)")
_MAX_PASSWORD_LENGTH = 32


@dataclass
class RamLimits:
    """Quotas of one account. Tests may lower them to reach a limit quickly."""

    users: int = 5000
    groups: int = 300
    roles: int = 1000
    custom_policies: int = 1500
    virtual_mfa_devices: int = 5000
    access_keys_per_user: int = 2
    groups_per_user: int = 10
    system_policies_per_holder: int = 20
    custom_policies_per_holder: int = 10
    versions_per_policy: int = 5
    policy_document_chars: int = 6144
    trust_policy_chars: int = 2048


# --- entities ------------------------------------------------------------------------------------
@dataclass
class AccessKey:
    access_key_id: str
    secret: str = field(repr=False)
    status: str = "Active"
    create_date: str = ""
    last_used_date: str = ""  # moved by every call this key signs (Emulator.authenticate)


@dataclass
class LoginProfile:
    password: str = field(repr=False)
    password_reset_required: bool = False
    mfa_bind_required: bool = False
    create_date: str = ""
    update_date: str = ""
    previous_passwords: list[str] = field(default_factory=list, repr=False)

    def verify_password(self, candidate: str) -> bool:
        return secrets.compare_digest(candidate.encode(), self.password.encode())


@dataclass
class Attachment:
    """One policy granted to a user, group or role, at account scope or for one resource group."""

    policy_type: PolicyType
    policy_name: str
    attach_date: str
    resource_group_id: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.policy_type, self.policy_name, self.resource_group_id


class PolicyHolder(Protocol):
    policies: dict[tuple[str, str, str], Attachment]


@dataclass
class User:
    user_name: str
    user_id: str
    display_name: str = ""
    email: str = ""
    mobile_phone: str = ""
    comments: str = ""
    create_date: str = ""
    update_date: str = ""
    last_login_date: str = ""
    access_keys: dict[str, AccessKey] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    login_profile: LoginProfile | None = None
    mfa_serial_number: str | None = None
    groups: dict[str, str] = field(default_factory=dict)  # group name -> join date
    policies: dict[tuple[str, str, str], Attachment] = field(default_factory=dict)
    seq: int = 0


@dataclass
class Group:
    group_name: str
    group_id: str
    comments: str = ""
    create_date: str = ""
    update_date: str = ""
    members: dict[str, str] = field(default_factory=dict)  # user name -> join date
    policies: dict[tuple[str, str, str], Attachment] = field(default_factory=dict)
    seq: int = 0


@dataclass
class Role:
    role_name: str
    role_id: str
    arn: str
    assume_role_policy_document: str
    max_session_duration: int = 3600
    description: str = ""
    allow_console_login: bool = False
    create_date: str = ""
    update_date: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    policies: dict[tuple[str, str, str], Attachment] = field(default_factory=dict)
    seq: int = 0


@dataclass
class PolicyVersion:
    version_id: str
    document: str
    create_date: str


@dataclass
class Policy:
    policy_name: str
    policy_type: PolicyType
    description: str
    create_date: str
    update_date: str
    versions: dict[str, PolicyVersion] = field(default_factory=dict)
    default_version: str = "v1"
    attachment_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HOLDER_KINDS, 0))
    tags: dict[str, str] = field(default_factory=dict)
    next_version: int = 2
    seq: int = 0

    @property
    def attachment_count(self) -> int:
        return sum(self.attachment_counts.values())

    @property
    def default(self) -> PolicyVersion:
        return self.versions[self.default_version]


@dataclass
class VirtualMFADevice:
    serial_number: str
    name: str
    base32_seed: str = field(repr=False)
    create_date: str = ""
    user_name: str | None = None
    activate_date: str = ""
    seq: int = 0


@dataclass
class PasswordPolicy:
    minimum_password_length: int = 8
    require_lowercase_characters: bool = True
    require_uppercase_characters: bool = True
    require_numbers: bool = True
    require_symbols: bool = False
    hard_expiry: bool = False
    max_password_age: int = 0
    password_reuse_prevention: int = 0
    max_login_attemps: int = 5

    def violations(self, password: str, history: Iterable[str] = ()) -> list[str]:
        """Why a password is refused; never contains the password."""
        found = []
        if len(password) < self.minimum_password_length:
            found.append(f"at least {self.minimum_password_length} characters are required")
        if len(password) > _MAX_PASSWORD_LENGTH:
            found.append(f"at most {_MAX_PASSWORD_LENGTH} characters are allowed")
        checks = (
            (self.require_lowercase_characters, str.islower, "a lowercase letter"),
            (self.require_uppercase_characters, str.isupper, "an uppercase letter"),
            (self.require_numbers, str.isdigit, "a digit"),
            (self.require_symbols, lambda c: not c.isalnum() and c.isprintable(), "a symbol"),
        )
        for required, test, what in checks:
            if required and not any(test(c) for c in password):
                found.append(f"{what} is required")
        recent = list(history)[-self.password_reuse_prevention :] if self.password_reuse_prevention else []
        if any(secrets.compare_digest(password.encode(), old.encode()) for old in recent):
            found.append(f"the last {self.password_reuse_prevention} passwords cannot be reused")
        return found


# --- validation ----------------------------------------------------------------------------------
def _check_name(param: str, value: str, pattern: re.Pattern[str], max_length: int) -> str:
    if not 1 <= len(value) <= max_length:
        raise errors.ParameterTooLong(param)
    if not pattern.fullmatch(value):
        raise errors.ParameterInvalidChars(param)
    return value


def _check_length(param: str, value: str | None, max_length: int) -> str | None:
    if value is not None and len(value) > max_length:
        raise errors.ParameterTooLong(param)
    return value


def _check_format(param: str, value: str | None, pattern: re.Pattern[str]) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise errors.ParameterFormat(param)
    return value


def _strings(value: Any) -> list[str] | None:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and items and all(isinstance(i, str) and i for i in items):
        return items
    return None


def parse_policy_document(text: str, *, param: str, max_chars: int, trust: bool = False) -> dict[str, Any]:
    """A RAM policy (or, with `trust`, a role trust policy) as JSON, or the cloud's refusal."""
    if len(text) > max_chars:
        raise errors.ParameterTooLong(param)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.MalformedPolicyDocument(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(document, dict):
        raise errors.MalformedPolicyDocument("the document must be a JSON object")
    if document.get("Version") != "1":
        raise errors.MalformedPolicyDocument('"Version" must be "1"')
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise errors.MalformedPolicyDocument('"Statement" must be a non-empty list')
    for index, statement in enumerate(statements, 1):
        where = f"statement {index}"
        if not isinstance(statement, dict):
            raise errors.MalformedPolicyDocument(f"{where} must be an object")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise errors.MalformedPolicyDocument(f'{where}: "Effect" must be "Allow" or "Deny"')
        actions = _strings(statement.get("Action", statement.get("NotAction")))
        if actions is None:
            raise errors.MalformedPolicyDocument(f'{where}: "Action" must be a string or a list of strings')
        if any(a != "*" and ":" not in a for a in actions):
            raise errors.MalformedPolicyDocument(
                f'{where}: every action must look like "service:Action" or be "*"'
            )
        if trust:
            if not isinstance(statement.get("Principal"), dict) or not statement["Principal"]:
                raise errors.MalformedPolicyDocument(
                    f'{where}: "Principal" must name RAM, Service or Federated principals'
                )
        elif _strings(statement.get("Resource", statement.get("NotResource"))) is None:
            raise errors.MalformedPolicyDocument(f'{where}: "Resource" must be a string or a list of strings')
        if "Condition" in statement and not isinstance(statement["Condition"], dict):
            raise errors.MalformedPolicyDocument(f'{where}: "Condition" must be an object')
    return document


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _random_digits(length: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (length - 1)) + 10 ** (length - 1))


def _unused_digits(length: int, taken: set[str]) -> str:
    """A random ID of `length` digits that no entity of its kind has yet."""
    found = _random_digits(length)
    while found in taken:
        found = _random_digits(length)
    return found


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the backend ---------------------------------------------------------------------------------
class RamBackend:
    """Users, groups, roles, policies, MFA devices and settings of one account."""

    def __init__(self, account_id: str, alias: str, clock: Callable[[], float] = time.time):
        self.account_id = account_id
        self.alias = alias
        self.limits = RamLimits()
        self.clock = clock  # the emulator's one clock: creation dates move with `Emulator.advance`
        self.password_policy = PasswordPolicy()
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.roles: dict[str, Role] = {}
        self.policies: dict[PolicyType, dict[str, Policy]] = {"System": {}, "Custom": {}}
        self.mfa_devices: dict[str, VirtualMFADevice] = {}
        self._key_owners: dict[str, User] = {}
        self._seq = itertools.count(1)
        for system in SYSTEM_POLICIES:
            self.policies["System"][system.name] = Policy(
                policy_name=system.name,
                policy_type="System",
                description=system.description,
                create_date=SYSTEM_POLICY_CREATE_DATE,
                update_date=system.update_date,
                versions={
                    "v1": PolicyVersion("v1", json.dumps(system.document, indent=2), system.update_date)
                },
                seq=next(self._seq),
            )

    def now(self) -> str:
        return _iso(self.clock())

    @property
    def default_domain(self) -> str:
        return f"{self.alias or self.account_id}.onaliyun.com"

    # --- users -------------------------------------------------------------------------------------
    def find_user(self, user_name: str) -> User | None:
        return self.users.get(user_name)

    def get_user(self, user_name: str) -> User:
        user = self.users.get(user_name)
        if user is None:
            raise errors.EntityNotExistUser(user_name)
        return user

    def list_users(self) -> list[User]:
        return list(self.users.values())

    def create_user(
        self,
        user_name: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        mobile_phone: str | None = None,
        comments: str | None = None,
    ) -> User:
        _check_name("UserName", user_name, _USER_NAME, 64)
        self._check_user_fields("", display_name, email, mobile_phone, comments)
        if user_name in self.users:
            raise errors.EntityAlreadyExistsUser(user_name)
        if len(self.users) >= self.limits.users:
            raise errors.LimitExceededUser()
        user_id = _unused_digits(16, {u.user_id for u in self.users.values()})
        now = self.now()
        user = User(
            user_name=user_name,
            user_id=user_id,
            display_name=display_name or user_name,
            email=email or "",
            mobile_phone=mobile_phone or "",
            comments=comments or "",
            create_date=now,
            update_date=now,
            seq=next(self._seq),
        )
        self.users[user_name] = user
        return user

    @staticmethod
    def _check_user_fields(
        prefix: str, display_name: str | None, email: str | None, mobile: str | None, comments: str | None
    ) -> None:
        if display_name is not None and not 1 <= len(display_name) <= 128:
            raise errors.ParameterTooLong(f"{prefix}DisplayName")
        _check_format(f"{prefix}Email", email, _EMAIL)
        _check_format(f"{prefix}MobilePhone", mobile, _MOBILE)
        _check_length(f"{prefix}Comments", comments, 128)

    def update_user(
        self,
        user_name: str,
        *,
        new_user_name: str | None = None,
        new_display_name: str | None = None,
        new_email: str | None = None,
        new_mobile_phone: str | None = None,
        new_comments: str | None = None,
    ) -> User:
        user = self.get_user(user_name)
        self._check_user_fields("New", new_display_name, new_email, new_mobile_phone, new_comments)
        if new_user_name is not None and new_user_name != user_name:
            _check_name("NewUserName", new_user_name, _USER_NAME, 64)
            if new_user_name in self.users:
                raise errors.EntityAlreadyExistsUser(new_user_name)
            for group_name in user.groups:
                members = self.groups[group_name].members
                members[new_user_name] = members.pop(user_name)
            if user.mfa_serial_number:
                self.mfa_devices[user.mfa_serial_number].user_name = new_user_name
            del self.users[user_name]
            user.user_name = new_user_name
            self.users[new_user_name] = user
        for attr, value in (
            ("display_name", new_display_name),
            ("email", new_email),
            ("mobile_phone", new_mobile_phone),
            ("comments", new_comments),
        ):
            if value is not None:
                setattr(user, attr, value)
        user.update_date = self.now()
        return user

    def delete_user(self, user_name: str) -> None:
        """No force delete: every leftover is refused, in the cloud's order. Tags go with the user."""
        user = self.get_user(user_name)
        leftovers: tuple[tuple[object, type[DeclaredError]], ...] = (
            (user.access_keys, errors.DeleteConflictUserAccessKey),
            (user.login_profile, errors.DeleteConflictUserLoginProfile),
            (user.policies, errors.DeleteConflictUserPolicy),
            (user.groups, errors.DeleteConflictUserGroup),
            (user.mfa_serial_number, errors.DeleteConflictUserMFADevice),
        )
        for leftover, conflict in leftovers:
            if leftover:
                raise conflict()
        del self.users[user_name]

    # --- login profiles ----------------------------------------------------------------------------
    def _check_password(self, password: str, history: Iterable[str] = ()) -> None:
        problems = self.password_policy.violations(password, history)
        if problems:
            raise errors.PasswordTooWeak(problems)

    def create_login_profile(
        self, user_name: str, password: str, *, password_reset_required: bool, mfa_bind_required: bool
    ) -> LoginProfile:
        user = self.get_user(user_name)
        if user.login_profile is not None:
            raise errors.EntityAlreadyExistsLoginProfile(user_name)
        self._check_password(password)
        now = self.now()
        user.login_profile = LoginProfile(password, password_reset_required, mfa_bind_required, now, now)
        return user.login_profile

    def get_login_profile(self, user_name: str) -> LoginProfile:
        profile = self.get_user(user_name).login_profile
        if profile is None:
            raise errors.EntityNotExistLoginProfile(user_name)
        return profile

    def update_login_profile(
        self,
        user_name: str,
        *,
        password: str | None = None,
        password_reset_required: bool | None = None,
        mfa_bind_required: bool | None = None,
    ) -> LoginProfile:
        profile = self.get_login_profile(user_name)
        if password is not None:
            self._check_password(password, [*profile.previous_passwords, profile.password])
            profile.previous_passwords = [*profile.previous_passwords, profile.password][-24:]
            profile.password = password
        if password_reset_required is not None:
            profile.password_reset_required = password_reset_required
        if mfa_bind_required is not None:
            profile.mfa_bind_required = mfa_bind_required
        profile.update_date = self.now()
        return profile

    def delete_login_profile(self, user_name: str) -> None:
        self.get_login_profile(user_name)
        self.users[user_name].login_profile = None

    # --- access keys -------------------------------------------------------------------------------
    def find_access_key(self, key_id: str) -> tuple[User, AccessKey] | None:
        user = self._key_owners.get(key_id)
        return None if user is None else (user, user.access_keys[key_id])

    def create_access_key(self, user_name: str) -> AccessKey:
        user = self.get_user(user_name)
        if len(user.access_keys) >= self.limits.access_keys_per_user:
            raise errors.LimitExceededUserAccessKey()
        key_id = "LTAI5t" + _random(_ALNUM, 18)
        while key_id in self._key_owners:
            key_id = "LTAI5t" + _random(_ALNUM, 18)
        key = AccessKey(key_id, _random(_ALNUM, 30), "Active", self.now())
        user.access_keys[key_id] = key
        self._key_owners[key_id] = user
        return key

    def get_access_key(self, user_name: str, key_id: str) -> AccessKey:
        key = self.get_user(user_name).access_keys.get(key_id)
        if key is None:
            raise errors.EntityNotExistAccessKey(key_id)
        return key

    def update_access_key(self, user_name: str, key_id: str, status: str) -> AccessKey:
        if status not in ("Active", "Inactive"):
            raise InvalidParameter("Status", 'must be "Active" or "Inactive"')
        key = self.get_access_key(user_name, key_id)
        key.status = status
        return key

    def delete_access_key(self, user_name: str, key_id: str) -> None:
        self.get_access_key(user_name, key_id)
        del self.users[user_name].access_keys[key_id]
        del self._key_owners[key_id]

    def list_access_keys(self, user_name: str) -> list[AccessKey]:
        return list(self.get_user(user_name).access_keys.values())

    def access_key_used(self, key_id: str) -> None:
        """A call signed with this key was authenticated: GetAccessKeyLastUsed reports it from now on."""
        found = self.find_access_key(key_id)
        if found is not None:
            found[1].last_used_date = self.now()

    # --- policies ----------------------------------------------------------------------------------
    @staticmethod
    def check_policy_type(policy_type: str) -> PolicyType:
        if policy_type not in POLICY_TYPES:
            raise errors.InvalidPolicyType()
        return policy_type

    def get_policy(self, policy_type: str, policy_name: str) -> Policy:
        policy = self.policies[self.check_policy_type(policy_type)].get(policy_name)
        if policy is None:
            raise errors.EntityNotExistPolicy(policy_name)
        return policy

    def list_policies(
        self, policy_type: str | None = None, tags: dict[str, str] | None = None
    ) -> list[Policy]:
        types = POLICY_TYPES if policy_type is None else (self.check_policy_type(policy_type),)
        found = [p for t in types for p in self.policies[t].values()]
        if tags:
            found = [p for p in found if all(p.tags.get(k) == v for k, v in tags.items())]
        return sorted(found, key=lambda p: p.seq)

    def _policy_document(self, text: str, param: str = "PolicyDocument") -> str:
        parse_policy_document(text, param=param, max_chars=self.limits.policy_document_chars)
        return text

    def create_policy(
        self,
        policy_name: str,
        document: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Policy:
        _check_name("PolicyName", policy_name, _POLICY_NAME, 128)
        _check_length("Description", description, 1024)
        self._policy_document(document)
        if policy_name in self.policies["Custom"] or policy_name in self.policies["System"]:
            raise errors.EntityAlreadyExistsPolicy(policy_name)
        if len(self.policies["Custom"]) >= self.limits.custom_policies:
            raise errors.LimitExceededPolicy()
        now = self.now()
        policy = Policy(
            policy_name=policy_name,
            policy_type="Custom",
            description=description or "",
            create_date=now,
            update_date=now,
            versions={"v1": PolicyVersion("v1", document, now)},
            tags=dict(tags or {}),
            seq=next(self._seq),
        )
        self.policies["Custom"][policy_name] = policy
        return policy

    def _custom_policy(self, policy_name: str) -> Policy:
        """Only custom policies change; a system policy's name is simply not one of them."""
        policy = self.policies["Custom"].get(policy_name)
        if policy is None:
            raise errors.EntityNotExistPolicy(policy_name)
        return policy

    def update_policy_description(self, policy_name: str, description: str) -> Policy:
        policy = self._custom_policy(policy_name)
        policy.description = _check_length("NewDescription", description, 1024) or ""
        policy.update_date = self.now()
        return policy

    def delete_policy(self, policy_name: str, *, cascading: bool = False) -> None:
        policy = self._custom_policy(policy_name)
        for kind in HOLDER_KINDS:
            if policy.attachment_counts[kind]:
                raise errors.DeleteConflictPolicyAttached(kind)
        if len(policy.versions) > 1 and not cascading:
            raise errors.DeleteConflictPolicyVersion()
        del self.policies["Custom"][policy_name]

    def get_policy_version(self, policy_type: str, policy_name: str, version_id: str) -> PolicyVersion:
        policy = self.get_policy(policy_type, policy_name)
        if not _VERSION_ID.fullmatch(version_id):
            raise errors.ParameterFormat("VersionId")
        version = policy.versions.get(version_id)
        if version is None:
            raise errors.EntityNotExistPolicyVersion(version_id)
        return version

    def create_policy_version(
        self, policy_name: str, document: str, *, set_as_default: bool = False, rotate: bool = False
    ) -> PolicyVersion:
        policy = self._custom_policy(policy_name)
        self._policy_document(document)
        if len(policy.versions) >= self.limits.versions_per_policy:
            oldest = next((v for v in policy.versions if v != policy.default_version), None)
            if not rotate or oldest is None:
                raise errors.LimitExceededPolicyVersion()
            del policy.versions[oldest]
        version = PolicyVersion(f"v{policy.next_version}", document, self.now())
        policy.next_version += 1
        policy.versions[version.version_id] = version
        if set_as_default:
            policy.default_version = version.version_id
        policy.update_date = version.create_date
        return version

    def set_default_policy_version(self, policy_name: str, version_id: str) -> None:
        policy = self._custom_policy(policy_name)
        policy.default_version = self.get_policy_version("Custom", policy_name, version_id).version_id
        policy.update_date = self.now()

    def delete_policy_version(self, policy_name: str, version_id: str) -> None:
        policy = self._custom_policy(policy_name)
        self.get_policy_version("Custom", policy_name, version_id)
        if version_id == policy.default_version:
            raise errors.DeleteConflictPolicyVersionDefault()
        del policy.versions[version_id]

    # --- attachments (the same rules for users, groups and roles) ----------------------------------
    def holder(self, kind: HolderKind, name: str) -> User | Group | Role:
        getter: dict[str, Callable[[str], User | Group | Role]] = {
            "User": self.get_user,
            "Group": self.get_group,
            "Role": self.get_role,
        }
        return getter[kind](name)

    def attach_policy(
        self, kind: HolderKind, name: str, policy_type: str, policy_name: str, resource_group_id: str = ""
    ) -> Attachment:
        holder = self.holder(kind, name)
        policy = self.get_policy(policy_type, policy_name)
        attachment = Attachment(policy.policy_type, policy.policy_name, self.now(), resource_group_id)
        if attachment.key in holder.policies:
            raise errors.EntityAlreadyExistsAttachment(kind, policy_name)
        limit = (
            self.limits.system_policies_per_holder
            if policy.policy_type == "System"
            else self.limits.custom_policies_per_holder
        )
        if sum(a.policy_type == policy.policy_type for a in holder.policies.values()) >= limit:
            raise errors.LimitExceededAttachment(kind, policy.policy_type, limit)
        holder.policies[attachment.key] = attachment
        policy.attachment_counts[kind] += 1
        return attachment

    def detach_policy(
        self, kind: HolderKind, name: str, policy_type: str, policy_name: str, resource_group_id: str = ""
    ) -> None:
        holder = self.holder(kind, name)
        policy = self.get_policy(policy_type, policy_name)
        if holder.policies.pop((policy.policy_type, policy_name, resource_group_id), None) is None:
            raise errors.EntityNotExistAttachment(kind, policy_name, name)
        policy.attachment_counts[kind] -= 1

    def attached_policies(
        self, kind: HolderKind, name: str, resource_group_id: str | None = ""
    ) -> list[tuple[Attachment, Policy]]:
        """Attachments in attach order: account scope by default, one resource group, or all (None)."""
        holder = self.holder(kind, name)
        return [
            (a, self.policies[a.policy_type][a.policy_name])
            for a in holder.policies.values()
            if resource_group_id is None or a.resource_group_id == resource_group_id
        ]

    def entities_for_policy(
        self, policy_type: str, policy_name: str
    ) -> dict[HolderKind, list[tuple[Any, Attachment]]]:
        policy = self.get_policy(policy_type, policy_name)
        holders: dict[HolderKind, Iterable[Any]] = {
            "User": self.users.values(),
            "Group": self.groups.values(),
            "Role": self.roles.values(),
        }
        return {
            kind: [
                (h, a)
                for h in entities
                for a in h.policies.values()
                if (a.policy_type, a.policy_name) == (policy.policy_type, policy_name)
            ]
            for kind, entities in holders.items()
        }

    def _documents(
        self, holders: Iterable[PolicyHolder], resource_group_id: str | None
    ) -> list[dict[str, Any]]:
        scopes = {"", resource_group_id} if resource_group_id else {""}
        return [
            json.loads(self.policies[a.policy_type][a.policy_name].default.document)
            for holder in holders
            for a in holder.policies.values()
            if a.resource_group_id in scopes
        ]

    def policies_for_user(self, user_name: str, resource_group_id: str | None = None) -> list[dict[str, Any]]:
        """Default-version documents granted to a user, directly or through groups (account scope,
        plus one resource group's grants when named)."""
        user = self.get_user(user_name)
        return self._documents([user, *(self.groups[g] for g in user.groups)], resource_group_id)

    def policies_for_role(self, role_name: str, resource_group_id: str | None = None) -> list[dict[str, Any]]:
        return self._documents([self.get_role(role_name)], resource_group_id)

    # --- groups ------------------------------------------------------------------------------------
    def get_group(self, group_name: str) -> Group:
        group = self.groups.get(group_name)
        if group is None:
            raise errors.EntityNotExistGroup(group_name)
        return group

    def list_groups(self) -> list[Group]:
        return list(self.groups.values())

    def create_group(self, group_name: str, comments: str | None = None) -> Group:
        _check_name("GroupName", group_name, _GROUP_NAME, 64)
        _check_length("Comments", comments, 128)
        if group_name in self.groups:
            raise errors.EntityAlreadyExistsGroup(group_name)
        if len(self.groups) >= self.limits.groups:
            raise errors.LimitExceededGroup()
        now = self.now()
        group = Group(group_name, "g-" + _random(_ALNUM, 16), comments or "", now, now, seq=next(self._seq))
        self.groups[group_name] = group
        return group

    def update_group(
        self, group_name: str, *, new_group_name: str | None = None, new_comments: str | None = None
    ) -> Group:
        group = self.get_group(group_name)
        _check_length("NewComments", new_comments, 128)
        if new_group_name is not None and new_group_name != group_name:
            _check_name("NewGroupName", new_group_name, _GROUP_NAME, 64)
            if new_group_name in self.groups:
                raise errors.EntityAlreadyExistsGroup(new_group_name)
            for user_name in group.members:
                joined = self.users[user_name].groups
                joined[new_group_name] = joined.pop(group_name)
            del self.groups[group_name]
            group.group_name = new_group_name
            self.groups[new_group_name] = group
        if new_comments is not None:
            group.comments = new_comments
        group.update_date = self.now()
        return group

    def delete_group(self, group_name: str) -> None:
        group = self.get_group(group_name)
        if group.members:
            raise errors.DeleteConflictGroupUser()
        if group.policies:
            raise errors.DeleteConflictGroupPolicy()
        del self.groups[group_name]

    def add_user_to_group(self, user_name: str, group_name: str) -> None:
        user = self.get_user(user_name)
        group = self.get_group(group_name)
        if group_name in user.groups:
            raise errors.EntityAlreadyExistsMembership(user_name, group_name)
        if len(user.groups) >= self.limits.groups_per_user:
            raise errors.LimitExceededUserGroup()
        now = self.now()
        user.groups[group_name] = now
        group.members[user_name] = now

    def remove_user_from_group(self, user_name: str, group_name: str) -> None:
        user = self.get_user(user_name)
        group = self.get_group(group_name)
        if group_name not in user.groups:
            raise errors.EntityNotExistMembership(user_name, group_name)
        del user.groups[group_name]
        del group.members[user_name]

    def groups_for_user(self, user_name: str) -> list[tuple[Group, str]]:
        return [(self.groups[name], joined) for name, joined in self.get_user(user_name).groups.items()]

    def users_for_group(self, group_name: str) -> list[tuple[User, str]]:
        members = self.get_group(group_name).members
        return sorted(((self.users[n], joined) for n, joined in members.items()), key=lambda m: m[0].seq)

    # --- roles -------------------------------------------------------------------------------------
    def get_role(self, role_name: str) -> Role:
        role = self.roles.get(role_name)
        if role is None:
            raise errors.EntityNotExistRole(role_name)
        return role

    def role_by_arn(self, arn: str) -> Role | None:
        """Role names are unique regardless of case, as their (lower-case) ARNs are."""
        return next((r for r in self.roles.values() if r.arn == arn.lower()), None)

    def list_roles(self, tags: dict[str, str] | None = None) -> list[Role]:
        return [r for r in self.roles.values() if all(r.tags.get(k) == v for k, v in (tags or {}).items())]

    def _trust_policy(self, text: str, param: str) -> str:
        parse_policy_document(text, param=param, max_chars=self.limits.trust_policy_chars, trust=True)
        return text

    @staticmethod
    def _check_session_duration(param: str, value: int | None) -> int | None:
        if value is not None and not 3600 <= value <= 43200:
            raise InvalidParameter(param, "must be between 3600 and 43200 seconds")
        return value

    def create_role(
        self,
        role_name: str,
        assume_role_policy_document: str,
        *,
        description: str | None = None,
        max_session_duration: int | None = None,
        allow_console_login: bool | None = None,
        tags: dict[str, str] | None = None,
    ) -> Role:
        _check_name("RoleName", role_name, _ROLE_NAME, 64)
        _check_length("Description", description, 1024)
        self._check_session_duration("MaxSessionDuration", max_session_duration)
        self._trust_policy(assume_role_policy_document, "AssumeRolePolicyDocument")
        arn = f"acs:ram::{self.account_id}:role/{role_name.lower()}"
        if self.role_by_arn(arn) is not None:
            raise errors.EntityAlreadyExistsRole(role_name)
        if len(self.roles) >= self.limits.roles:
            raise errors.LimitExceededRole()
        role_id = _unused_digits(19, {r.role_id for r in self.roles.values()})
        now = self.now()
        role = Role(
            role_name=role_name,
            role_id=role_id,
            arn=arn,
            assume_role_policy_document=assume_role_policy_document,
            max_session_duration=max_session_duration or 3600,
            description=description or "",
            allow_console_login=bool(allow_console_login),
            create_date=now,
            update_date=now,
            tags=dict(tags or {}),
            seq=next(self._seq),
        )
        self.roles[role_name] = role
        return role

    def update_role(
        self,
        role_name: str,
        *,
        new_assume_role_policy_document: str | None = None,
        new_max_session_duration: int | None = None,
        new_description: str | None = None,
        new_allow_console_login: bool | None = None,
    ) -> Role:
        role = self.get_role(role_name)
        _check_length("NewDescription", new_description, 1024)
        self._check_session_duration("NewMaxSessionDuration", new_max_session_duration)
        if new_assume_role_policy_document is not None:
            role.assume_role_policy_document = self._trust_policy(
                new_assume_role_policy_document, "NewAssumeRolePolicyDocument"
            )
        if new_max_session_duration is not None:
            role.max_session_duration = new_max_session_duration
        if new_description is not None:
            role.description = new_description
        if new_allow_console_login is not None:
            role.allow_console_login = new_allow_console_login
        role.update_date = self.now()
        return role

    def delete_role(self, role_name: str) -> None:
        role = self.get_role(role_name)
        if role.policies:
            raise errors.DeleteConflictRolePolicy()
        del self.roles[role_name]

    # --- virtual MFA devices -----------------------------------------------------------------------
    def create_virtual_mfa_device(self, name: str) -> VirtualMFADevice:
        _check_name("VirtualMFADeviceName", name, _MFA_NAME, 64)
        serial = f"acs:ram::{self.account_id}:mfa/{name}"
        if serial in self.mfa_devices:
            raise errors.EntityAlreadyExistsVirtualMFADevice(name)
        if len(self.mfa_devices) >= self.limits.virtual_mfa_devices:
            raise errors.LimitExceededVirtualMFADevice()
        seed = base64.b32encode(secrets.token_bytes(40)).decode()
        device = VirtualMFADevice(serial, name, seed, self.now(), seq=next(self._seq))
        self.mfa_devices[serial] = device
        return device

    def get_virtual_mfa_device(self, serial_number: str) -> VirtualMFADevice:
        device = self.mfa_devices.get(serial_number)
        if device is None:
            raise errors.EntityNotExistVirtualMFADevice(serial_number)
        return device

    def list_virtual_mfa_devices(self) -> list[VirtualMFADevice]:
        return list(self.mfa_devices.values())

    def delete_virtual_mfa_device(self, serial_number: str) -> None:
        device = self.get_virtual_mfa_device(serial_number)
        if device.user_name is not None:
            raise errors.DeleteConflictVirtualMFADeviceUser()
        del self.mfa_devices[serial_number]

    def bind_mfa_device(self, user_name: str, serial_number: str, code1: str, code2: str) -> VirtualMFADevice:
        """Any two 6-digit codes are accepted: the emulator does not run TOTP."""
        for code in (code1, code2):
            if not _AUTH_CODE.fullmatch(code):
                raise errors.AuthenticationCodeFormat()
        user = self.get_user(user_name)
        device = self.get_virtual_mfa_device(serial_number)
        if user.mfa_serial_number is not None:
            raise errors.EntityAlreadyExistsUserMFADevice(user_name)
        if device.user_name is not None:
            raise errors.EntityAlreadyExistsVirtualMFADeviceUser(serial_number)
        device.user_name = user_name
        device.activate_date = self.now()
        user.mfa_serial_number = serial_number
        return device

    def user_mfa_device(self, user_name: str) -> VirtualMFADevice:
        user = self.get_user(user_name)
        if user.mfa_serial_number is None:
            raise errors.EntityNotExistUserMFADevice(user_name)
        return self.mfa_devices[user.mfa_serial_number]

    def unbind_mfa_device(self, user_name: str) -> VirtualMFADevice:
        device = self.user_mfa_device(user_name)
        device.user_name = None
        device.activate_date = ""
        self.users[user_name].mfa_serial_number = None
        return device

    # --- account settings --------------------------------------------------------------------------
    def set_password_policy(self, policy: PasswordPolicy) -> PasswordPolicy:
        ranges = {
            "MinimumPasswordLength": (policy.minimum_password_length, 8, 32),
            "MaxPasswordAge": (policy.max_password_age, 0, 1095),
            "PasswordReusePrevention": (policy.password_reuse_prevention, 0, 24),
            "MaxLoginAttemps": (policy.max_login_attemps, 0, 32),
        }
        for param, (value, low, high) in ranges.items():
            if not low <= value <= high:
                raise errors.ParameterRange(param, low, high)
        self.password_policy = policy
        return policy

    def set_alias(self, alias: str, taken: Collection[str] = ()) -> str:
        """`taken`: aliases of the other accounts, since an alias is unique across the cloud."""
        if not 3 <= len(alias) <= 32:
            raise errors.AccountAliasLength()
        _check_format("AccountAlias", alias, _ALIAS)
        if alias in taken:
            raise errors.EntityAlreadyExistsAccountAlias(alias)
        self.alias = alias
        return alias
