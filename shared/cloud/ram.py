"""RAM (2015-05-01): users, login profiles, AccessKeys, policies, groups and MFA devices."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, NamedTuple

from alibabacloud_ram20150501 import models as ram
from pydantic import SecretStr

from shared.cloud.base import CloudModel, SdkGateway, Timestamp, by_marker, nested
from shared.policy.templates import canonical_json
from shared.scope import UserScope

PolicyType = Literal["System", "Custom"]
KeyStatus = Literal["Active", "Inactive"]


class RamUser(CloudModel):
    name: str
    user_id: str
    display_name: str = ""
    email: str = ""
    comments: str = ""
    create_date: Timestamp = None
    update_date: Timestamp = None

    @classmethod
    def from_sdk(cls, user: Any) -> RamUser:
        return cls(
            name=user.user_name,
            user_id=user.user_id,
            display_name=user.display_name or "",
            email=user.email or "",
            comments=user.comments or "",
            create_date=user.create_date,
            update_date=getattr(user, "update_date", None),
        )


class PasswordPolicy(CloudModel):
    """The account's rules that a generated console password must satisfy."""

    minimum_length: int = 8
    require_lowercase: bool = False
    require_uppercase: bool = False
    require_numbers: bool = False
    require_symbols: bool = False
    password_reuse_prevention: int = 0
    max_password_age: int = 0
    max_login_attempts: int = 0
    hard_expiry: bool = False


class LoginProfile(CloudModel):
    user_name: str
    password_reset_required: bool = False
    mfa_bind_required: bool = False
    create_date: Timestamp = None


class NewAccessKey(CloudModel):
    """A freshly created AccessKey: the only time the cloud ever shows its secret."""

    access_key_id: str
    secret: SecretStr
    status: str = "Active"
    create_date: Timestamp = None


class _LastUsed(CloudModel):
    value: Timestamp = None


class AccessKeyInfo(CloudModel):
    access_key_id: str
    status: str
    create_date: Timestamp = None


class Policy(CloudModel):
    name: str
    type: str
    document: dict[str, Any]
    attachment_count: int = 0
    description: str = ""
    default_version: str = ""
    create_date: Timestamp = None
    update_date: Timestamp = None


class PolicyRef(NamedTuple):
    """A policy as attachments name it."""

    name: str
    type: PolicyType


class PolicyEntities(CloudModel):
    """Who a policy is attached to, at account scope."""

    users: list[str] = []
    groups: list[str] = []
    roles: list[str] = []


class RamGateway(SdkGateway):
    """Typed RAM calls. `get_*` answer None where the cloud says the thing does not exist."""

    page_size = 1000
    scope: UserScope = UserScope()  # Cloud sets the configured one: writes outside it are refused

    # --- account ---------------------------------------------------------------------------------
    def get_account_alias(self) -> str:
        return str(self._call(self._sdk.get_account_alias, action="GetAccountAlias").account_alias)

    def get_password_policy(self) -> PasswordPolicy:
        body = self._call(self._sdk.get_password_policy, action="GetPasswordPolicy")
        p = body.password_policy
        if p is None:
            return PasswordPolicy()
        return PasswordPolicy(
            minimum_length=p.minimum_password_length or 8,
            require_lowercase=bool(p.require_lowercase_characters),
            require_uppercase=bool(p.require_uppercase_characters),
            require_numbers=bool(p.require_numbers),
            require_symbols=bool(p.require_symbols),
            password_reuse_prevention=p.password_reuse_prevention or 0,
            max_password_age=p.max_password_age or 0,
            max_login_attempts=p.max_login_attemps or 0,
            hard_expiry=bool(p.hard_expiry),
        )

    # --- users -----------------------------------------------------------------------------------
    def get_user(self, name: str) -> RamUser | None:
        body = self._find(self._sdk.get_user, ram.GetUserRequest(user_name=name))
        return None if body is None else RamUser.from_sdk(body.user)

    def create_user(
        self,
        name: str,
        display_name: str | None = None,
        email: str | None = None,
        comments: str | None = None,
    ) -> RamUser:
        self.scope.check(name, "CreateUser")
        request = ram.CreateUserRequest(
            user_name=name, display_name=display_name, email=email, comments=comments
        )
        return RamUser.from_sdk(self._call(self._sdk.create_user, request).user)

    def update_user(
        self,
        name: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        comments: str | None = None,
        new_name: str | None = None,
    ) -> RamUser:
        self.scope.check(name, "UpdateUser")
        request = ram.UpdateUserRequest(
            user_name=name,
            new_display_name=display_name,
            new_email=email,
            new_comments=comments,
            new_user_name=new_name,
        )
        return RamUser.from_sdk(self._call(self._sdk.update_user, request).user)

    def delete_user(self, name: str) -> None:
        self.scope.check(name, "DeleteUser")
        self._call(self._sdk.delete_user, ram.DeleteUserRequest(user_name=name))

    def list_users(self) -> list[RamUser]:
        return self._pages(
            self._sdk.list_users,
            ram.ListUsersRequest(max_items=self.page_size),
            lambda body: (RamUser.from_sdk(u) for u in nested(body.users, "user")),
            by_marker,
        )

    # --- console access --------------------------------------------------------------------------
    def create_login_profile(
        self,
        name: str,
        password: SecretStr | str,
        password_reset_required: bool = True,
        mfa_bind_required: bool = True,
    ) -> LoginProfile:
        self.scope.check(name, "CreateLoginProfile")
        request = ram.CreateLoginProfileRequest(
            user_name=name,
            password=_reveal(password),
            password_reset_required=password_reset_required,
            mfabind_required=mfa_bind_required,
        )
        return _login_profile(self._call(self._sdk.create_login_profile, request).login_profile)

    def get_login_profile(self, name: str) -> LoginProfile | None:
        body = self._find(self._sdk.get_login_profile, ram.GetLoginProfileRequest(user_name=name))
        return None if body is None else _login_profile(body.login_profile)

    def update_login_profile(
        self,
        name: str,
        *,
        password: SecretStr | str | None = None,
        password_reset_required: bool | None = None,
        mfa_bind_required: bool | None = None,
    ) -> None:
        """A new password is not repeated after an ambiguous failure (the reuse rule may refuse it)."""
        self.scope.check(name, "UpdateLoginProfile")
        request = ram.UpdateLoginProfileRequest(
            user_name=name,
            password=_reveal(password) if password is not None else None,
            password_reset_required=password_reset_required,
            mfabind_required=mfa_bind_required,
        )
        self._call(self._sdk.update_login_profile, request, idempotent=password is None)

    def delete_login_profile(self, name: str) -> None:
        self.scope.check(name, "DeleteLoginProfile")
        self._call(self._sdk.delete_login_profile, ram.DeleteLoginProfileRequest(user_name=name))

    # --- programmatic access ---------------------------------------------------------------------
    def create_access_key(self, name: str) -> NewAccessKey:
        self.scope.check(name, "CreateAccessKey")
        key = self._call(self._sdk.create_access_key, ram.CreateAccessKeyRequest(user_name=name)).access_key
        return NewAccessKey(
            access_key_id=key.access_key_id,
            secret=SecretStr(key.access_key_secret),
            status=key.status or "Active",
            create_date=key.create_date,
        )

    def list_access_keys(self, name: str) -> list[AccessKeyInfo]:
        body = self._call(self._sdk.list_access_keys, ram.ListAccessKeysRequest(user_name=name))
        return [
            AccessKeyInfo(access_key_id=k.access_key_id, status=k.status, create_date=k.create_date)
            for k in nested(body.access_keys, "access_key")
        ]

    def get_access_key_last_used(self, name: str, key_id: str) -> datetime | None:
        """When the key last signed a call; None if it never did. RAM 2015-05-01 GetAccessKeyLastUsed
        (https://www.alibabacloud.com/help/en/resource-access-management/latest/getaccesskeylastused)."""
        request = ram.GetAccessKeyLastUsedRequest(user_name=name, user_access_key_id=key_id)
        body = self._call(self._sdk.get_access_key_last_used, request)
        used = body.access_key_last_used.last_used_date if body.access_key_last_used else None
        return _LastUsed(value=used).value

    def update_access_key(self, name: str, key_id: str, status: KeyStatus) -> None:
        self.scope.check(name, "UpdateAccessKey")
        request = ram.UpdateAccessKeyRequest(user_name=name, user_access_key_id=key_id, status=status)
        self._call(self._sdk.update_access_key, request)

    def delete_access_key(self, name: str, key_id: str) -> None:
        self.scope.check(name, "DeleteAccessKey")
        request = ram.DeleteAccessKeyRequest(user_name=name, user_access_key_id=key_id)
        self._call(self._sdk.delete_access_key, request)

    # --- policies --------------------------------------------------------------------------------
    def get_policy(self, name: str, policy_type: PolicyType = "Custom") -> Policy | None:
        request = ram.GetPolicyRequest(policy_name=name, policy_type=policy_type)
        body = self._find(self._sdk.get_policy, request)
        if body is None:
            return None
        p = body.policy
        version = body.default_policy_version
        document = (version.policy_document if version is not None else None) or p.policy_document
        return Policy(
            name=p.policy_name,
            type=p.policy_type or policy_type,
            document=json.loads(document) if document else {},
            attachment_count=p.attachment_count or 0,
            description=p.description or "",
            default_version=p.default_version or "",
            create_date=p.create_date,
            update_date=p.update_date,
        )

    def create_policy(self, name: str, document: dict[str, Any], description: str = "") -> Policy:
        request = ram.CreatePolicyRequest(
            policy_name=name,
            policy_document=canonical_json(document),  # the text the 6,144-character check measured
            description=description or None,
        )
        p = self._call(self._sdk.create_policy, request).policy
        return Policy(
            name=p.policy_name,
            type=p.policy_type or "Custom",
            document=document,
            description=p.description or "",
            default_version=p.default_version or "",
            create_date=p.create_date,
        )

    def delete_policy(self, name: str) -> None:
        self._call(self._sdk.delete_policy, ram.DeletePolicyRequest(policy_name=name))

    def list_policies_for_user(self, name: str) -> list[PolicyRef]:
        body = self._call(self._sdk.list_policies_for_user, ram.ListPoliciesForUserRequest(user_name=name))
        return [PolicyRef(p.policy_name, p.policy_type) for p in nested(body.policies, "policy")]

    def attach_policy_to_user(self, name: str, policy_name: str, policy_type: PolicyType) -> None:
        self.scope.check(name, "AttachPolicyToUser")
        request = ram.AttachPolicyToUserRequest(
            user_name=name, policy_name=policy_name, policy_type=policy_type
        )
        self._call(self._sdk.attach_policy_to_user, request)

    def detach_policy_from_user(self, name: str, policy_name: str, policy_type: PolicyType) -> None:
        self.scope.check(name, "DetachPolicyFromUser")
        request = ram.DetachPolicyFromUserRequest(
            user_name=name, policy_name=policy_name, policy_type=policy_type
        )
        self._call(self._sdk.detach_policy_from_user, request)

    def list_entities_for_policy(self, name: str, policy_type: PolicyType = "Custom") -> PolicyEntities:
        request = ram.ListEntitiesForPolicyRequest(policy_name=name, policy_type=policy_type)
        body = self._call(self._sdk.list_entities_for_policy, request)
        return PolicyEntities(
            users=[u.user_name for u in nested(body.users, "user")],
            groups=[g.group_name for g in nested(body.groups, "group")],
            roles=[r.role_name for r in nested(body.roles, "role")],
        )

    # --- groups and MFA --------------------------------------------------------------------------
    def list_groups_for_user(self, name: str) -> list[str]:
        body = self._call(self._sdk.list_groups_for_user, ram.ListGroupsForUserRequest(user_name=name))
        return [g.group_name for g in nested(body.groups, "group")]

    def remove_user_from_group(self, name: str, group: str) -> None:
        self.scope.check(name, "RemoveUserFromGroup")
        request = ram.RemoveUserFromGroupRequest(user_name=name, group_name=group)
        self._call(self._sdk.remove_user_from_group, request)

    def get_user_mfa_info(self, name: str) -> str | None:
        """The serial number of the user's MFA device, or None when none is bound."""
        body = self._find(self._sdk.get_user_mfainfo, ram.GetUserMFAInfoRequest(user_name=name))
        device = body.mfadevice if body is not None else None
        return device.serial_number if device is not None else None

    def unbind_mfa_device(self, name: str) -> str | None:
        """Unbinds the user's MFA device and returns its serial number (to delete a virtual one)."""
        self.scope.check(name, "UnbindMFADevice")
        body = self._call(self._sdk.unbind_mfadevice, ram.UnbindMFADeviceRequest(user_name=name))
        return body.mfadevice.serial_number if body.mfadevice is not None else None

    def delete_virtual_mfa_device(self, serial_number: str) -> None:
        request = ram.DeleteVirtualMFADeviceRequest(serial_number=serial_number)
        self._call(self._sdk.delete_virtual_mfadevice, request)


def _login_profile(profile: Any) -> LoginProfile:
    return LoginProfile(
        user_name=profile.user_name,
        password_reset_required=bool(profile.password_reset_required),
        mfa_bind_required=bool(profile.mfabind_required),
        create_date=profile.create_date,
    )


def _reveal(secret: SecretStr | str) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret
