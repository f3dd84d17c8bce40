"""RAM 2015-05-01: request parsing and response shapes. State and rules live in `models.py`.

Every reply carries the keys the official SDK's response models read (`from_map`), so the SDK
returns fully populated models. Dates are `YYYY-MM-DDTHH:MM:SSZ`; empty optional strings are left
out, as the cloud does.

Emulated operations and error codes (all: `MissingParameter` for a required parameter; 404 for
`EntityNotExist.*`, 409 for `EntityAlreadyExists.*` / `DeleteConflict.*` / `LimitExceeded.*`, 400
for the rest):

- Users: CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers — `InvalidParameter.UserName|NewUserName
  .InvalidChars|.Length`, `InvalidParameter.[New]DisplayName.Length`, `InvalidParameter.[New]Email.Format`,
  `InvalidParameter.[New]MobilePhone.Format`, `InvalidParameter.[New]Comments.Length`,
  `EntityAlreadyExists.User`, `EntityNotExist.User`, `LimitExceeded.User` (5,000), `DeleteConflict.User
  .AccessKey|LoginProfile|Policy|Group|MFADevice` (checked in that order), `InvalidParameter.MaxItems`,
  `InvalidParameter.Marker`.
- Login profiles: CreateLoginProfile, GetLoginProfile, UpdateLoginProfile, DeleteLoginProfile,
  ChangePassword — `InvalidParameter.Password.TooWeak` (with the reasons), `EntityAlreadyExists.User
  .LoginProfile`, `EntityNotExist.User.LoginProfile`; ChangePassword: `NotSupport.Account` for a caller
  that is not a RAM user, `InvalidParameter.OldPassword.Incorrect`, `InvalidParameter.NewPassword
  .TooWeak|.ReusePrevention` (ChangePassword reference, error messages [1]).
- Access keys: CreateAccessKey, UpdateAccessKey, DeleteAccessKey, ListAccessKeys, GetAccessKeyLastUsed
  (UserName defaults to the calling RAM user) — `LimitExceeded.User.AccessKey` (3rd key),
  `EntityNotExist.User.AccessKey`, `InvalidParameter.Status` (by analogy: UpdateAccessKey's reference
  [2] lists only the UserName format and EntityNotExist codes; no source names the answer to a Status
  other than Active/Inactive, so the `InvalidParameter.<Name>` pattern of the documented codes is
  kept). GetAccessKeyLastUsed answers
  `AccessKeyLastUsed.LastUsedDate`, the emulator time of the last call the key signed (left out while
  it never signed one), as the API reference shows it
  (https://www.alibabacloud.com/help/en/resource-access-management/latest/getaccesskeylastused; request
  and reply fields as in the SDK's `GetAccessKeyLastUsedRequest` / `…ResponseBodyAccessKeyLastUsed`).
- Policies: CreatePolicy, GetPolicy, DeletePolicy, ListPolicies, UpdatePolicyDescription,
  CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion,
  DeletePolicyVersion, ListEntitiesForPolicy — `InvalidParameter.PolicyName.InvalidChars|.Length`,
  `InvalidParameter.PolicyDocument.Length` (6,144 chars), `MalformedPolicyDocument`,
  `InvalidParameter.Description.Length`, `InvalidParameter.PolicyType`, `EntityAlreadyExists.Policy`
  (also for a system policy's name), `EntityNotExist.Policy` (also when deleting a system policy),
  `LimitExceeded.Policy`, `DeleteConflict.Policy.User|Group` (DeletePolicy reference [3]) and, for a
  policy attached to a role, `DeleteConflict.Role.Policy` (what the official Terraform provider
  expects from DeletePolicy [4]; the reference lists no role code),
  `DeleteConflict.Policy.Version`, `EntityNotExist.Policy.Version`, `InvalidParameter.VersionId.Format`,
  `LimitExceeded.Policy.Version`, `DeleteConflict.Policy.Version.Default`.
- Attachments, for User, Group and Role alike: AttachPolicyTo*, DetachPolicyFrom*, ListPoliciesFor* —
  `EntityAlreadyExists.<Kind>.Policy`, `EntityNotExist.<Kind>.Policy`, `LimitExceeded.<Kind>.Policy`
  (20 System + 10 Custom each; the Role codes: `LimitExceeded.Role.Policy` in RAM's error-code list
  [5], `EntityAlreadyExists.Role.Policy` / `EntityNotExist.Role.Policy` as the official Terraform
  provider and SDK users handle them from AttachPolicyToRole / DetachPolicyFromRole [6]).
  ResourceGroupId scopes an attachment;
  ListPoliciesFor* lists account-scope attachments.
- Groups: CreateGroup, GetGroup, UpdateGroup, DeleteGroup, ListGroups, AddUserToGroup,
  RemoveUserFromGroup, ListGroupsForUser, ListUsersForGroup — `InvalidParameter.[New]GroupName
  .InvalidChars|.Length`, `EntityAlreadyExists.Group`, `EntityNotExist.Group`, `LimitExceeded.Group`,
  `DeleteConflict.Group.User|Policy`, `EntityAlreadyExists.User.Group`, `EntityNotExist.User.Group`,
  `LimitExceeded.User.Group` (10).
- Roles: CreateRole, GetRole, UpdateRole, DeleteRole, ListRoles — `InvalidParameter.RoleName
  .InvalidChars|.Length` (GetRole / UpdateRole references [7]), `MalformedPolicyDocument` for the trust
  policy,
  `InvalidParameter.[New]MaxSessionDuration` (3600–43200), `EntityAlreadyExists.Role`,
  `EntityNotExist.Role`, `LimitExceeded.Role`, `DeleteConflict.Role.Policy`.
- Virtual MFA: CreateVirtualMFADevice, ListVirtualMFADevices, DeleteVirtualMFADevice, BindMFADevice,
  UnbindMFADevice, GetUserMFAInfo — `InvalidParameter.VirtualMFADeviceName.InvalidChars|.Length`,
  `EntityAlreadyExists.VirtualMFADevice`, `EntityNotExist.VirtualMFADevice`,
  `DeleteConflict.VirtualMFADevice.User`, `InvalidParameter.AuthenticationCode.Format` (any two 6-digit
  codes are accepted), `EntityAlreadyExists.User.MFADevice`, `EntityAlreadyExists.VirtualMFADevice.User`,
  `EntityNotExist.User.MFADevice`, `LimitExceeded.VirtualMFADevice`.
- Account: GetPasswordPolicy, SetPasswordPolicy (unspecified settings return to their defaults) —
  `InvalidParameter.MinimumPasswordLength|MaxPasswordAge|PasswordReusePrevention|MaxLoginAttemps.Range`;
  GetAccountAlias, SetAccountAlias, ClearAccountAlias — `InvalidParameter.AccountAlias.Format|.Length`,
  `EntityAlreadyExists.AccountAlias`. The default domain (`<alias>.onaliyun.com`) is an IMS operation
  in this SDK generation: `RamBackend.default_domain` serves it.

Sources of the codes above that the current per-operation pages do not spell out:
[1] ChangePassword: https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-changepassword
    (https://www.alibabacloud.com/help/doc-detail/43766.htm); its error messages: NotSupport.Account
    "This method can be only invoked by sub user.", InvalidParameter.OldPassword.Incorrect,
    InvalidParameter.NewPassword.TooWeak, InvalidParameter.NewPassword.ReusePrevention (all 400).
[2] UpdateAccessKey: https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-updateaccesskey
[3] DeletePolicy: https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-deletepolicy
[4] github.com/aliyun/terraform-provider-alicloud alicloud/resource_alicloud_ram_policy.go (DeletePolicy
    retried on DeleteConflict.Policy.Group|Policy.User|Policy.Version|Role.Policy).
[5] RAM API reference, "Error messages" (one list for the whole API): LimitExceeded.Role.Policy, 409,
    "The count of policies attached to the role beyond the current limits."; it also lists
    DeleteConflict.Policy.User|Group|Version|Version.Default and DeleteConflict.Role.Policy, and no
    DeleteConflict.Policy.Role. Error center: https://api.alibabacloud.com/document/Ram/2015-05-01/errorCode
[6] github.com/aliyun/terraform-provider-alicloud alicloud/resource_alicloud_ram_role_policy_attachment.go
    (DetachPolicyFromRole: EntityNotExist.Role.Policy); github.com/goto/guardian
    plugins/providers/alicloudiam/client.go (AttachPolicyToRole: EntityAlreadyExists.Role.Policy,
    DetachPolicyFromRole: EntityNotExist.Role.Policy).
[7] RAM API reference, GetRole's error messages: InvalidParameter.RoleName.InvalidChars ('The parameter -
    "RoleName" contains invalid chars.') and InvalidParameter.RoleName.Length ('The parameter -
    "RoleName" beyond the length limit.'), 400; UpdateRole (ResourceManager 2020-03-31, same codes):
    https://api.alibabacloud.com/api/ResourceManager/2020-03-31/UpdateRole


Not emulated: Get/SetSecurityPreference, TagResources / UntagResources /
ListTagResources (RAM-side tags on roles and policies are kept from Create*), service-linked roles,
DecodeDiagnosticMessage.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from local.emulator.core import CallContext, Service
from local.emulator.errors import InvalidParameter
from local.emulator.ram import exceptions as errors
from local.emulator.ram.models import (
    AccessKey,
    Attachment,
    Group,
    HolderKind,
    LoginProfile,
    PasswordPolicy,
    Policy,
    PolicyVersion,
    RamBackend,
    Role,
    User,
    VirtualMFADevice,
)

service = Service("ram", "2015-05-01", "ram.aliyuncs.com")

T = TypeVar("T")
Reply = dict[str, Any]


# --- parsing helpers -----------------------------------------------------------------------------
def _ram(ctx: CallContext) -> RamBackend:
    return ctx.account.ram


def _optional_bool(ctx: CallContext, name: str) -> bool | None:
    return None if ctx.get(name) is None else ctx.boolean(name)


def _optional_int(ctx: CallContext, name: str) -> int | None:
    return None if ctx.get(name) is None else ctx.integer(name, 0)


def _tags(ctx: CallContext) -> dict[str, str]:
    """`Tag` arrives as one JSON array (the SDK's "shrink" style) or as flat `Tag.N.Key` pairs."""
    raw = ctx.get("Tag")
    if raw is None:
        items: Any = ctx.indexed_maps("Tag")
    else:
        try:
            items = json.loads(raw)
        except ValueError:
            raise InvalidParameter("Tag", "must be a JSON array of {Key, Value}") from None
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise InvalidParameter("Tag", "must be a list of {Key, Value}")
    return {str(t["Key"]): str(t.get("Value", "")) for t in items if t.get("Key")}


def _user_name_or_caller(ctx: CallContext) -> str:
    """Key operations default to the calling RAM user's own keys."""
    name = ctx.get("UserName")
    if name is None and ctx.principal.kind == "user" and ctx.principal.user_name:
        return ctx.principal.user_name
    return name if name is not None else ctx.require("UserName")


def _encode_marker(seq: int) -> str:
    return base64.urlsafe_b64encode(f"ramflow:{seq}".encode()).decode()


def _decode_marker(marker: str) -> int:
    try:
        prefix, _, seq = base64.urlsafe_b64decode(marker.encode()).decode().partition(":")
        if prefix == "ramflow":
            return int(seq)
    except ValueError:
        pass
    raise InvalidParameter("Marker", "the marker is not one this API returned")


def _page(
    ctx: CallContext,
    items: Sequence[T],
    key: Callable[[T], int],
    list_key: str,
    item_key: str,
    shape: Callable[[T], Reply],
) -> Reply:
    """Marker/MaxItems paging in a stable order; the marker names the first item of the next page."""
    max_items = ctx.integer("MaxItems", 100, low=1, high=1000)
    ordered = sorted(items, key=key)
    marker = ctx.get("Marker")
    if marker is not None:
        start = _decode_marker(marker)
        ordered = [i for i in ordered if key(i) >= start]
    page = ordered[:max_items]
    reply: Reply = {list_key: {item_key: [shape(i) for i in page]}, "IsTruncated": len(ordered) > max_items}
    if reply["IsTruncated"]:
        reply["Marker"] = _encode_marker(key(ordered[max_items]))
    return reply


def _compact(d: Reply) -> Reply:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def _without(shape: Reply, *keys: str) -> Reply:
    """A shape as a reply that carries fewer fields than Get* (Create*, Update*, List*)."""
    return {k: v for k, v in shape.items() if k not in keys}


def _with_tags(shape: Reply, tags: dict[str, str]) -> Reply:
    """List* replies carry `Tags` only for an entity that has some."""
    return {**shape, "Tags": _tag_list(tags)} if tags else shape


# --- shapes --------------------------------------------------------------------------------------
def _user(u: User) -> Reply:
    return _compact(
        {
            "UserName": u.user_name,
            "UserId": u.user_id,
            "DisplayName": u.display_name,
            "Email": u.email,
            "MobilePhone": u.mobile_phone,
            "Comments": u.comments,
            "CreateDate": u.create_date,
            "UpdateDate": u.update_date,
        }
    )


def _login_profile(user_name: str, p: LoginProfile) -> Reply:
    return {
        "UserName": user_name,
        "PasswordResetRequired": p.password_reset_required,
        "MFABindRequired": p.mfa_bind_required,
        "CreateDate": p.create_date,
    }


def _key(k: AccessKey) -> Reply:
    """Never the secret: only CreateAccessKey shows it, once."""
    return {"AccessKeyId": k.access_key_id, "Status": k.status, "CreateDate": k.create_date}


def _tag_list(tags: dict[str, str]) -> Reply:
    return {"Tag": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]}


def _policy(p: Policy) -> Reply:
    return _compact(
        {
            "PolicyName": p.policy_name,
            "PolicyType": p.policy_type,
            "Description": p.description,
            "DefaultVersion": p.default_version,
            "AttachmentCount": p.attachment_count,
            "CreateDate": p.create_date,
            "UpdateDate": p.update_date,
        }
    )


def _version(v: PolicyVersion, p: Policy) -> Reply:
    return {
        "VersionId": v.version_id,
        "IsDefaultVersion": v.version_id == p.default_version,
        "PolicyDocument": v.document,
        "CreateDate": v.create_date,
    }


def _attached(a: Attachment, p: Policy) -> Reply:
    return _compact(
        {
            "PolicyName": p.policy_name,
            "PolicyType": p.policy_type,
            "Description": p.description,
            "DefaultVersion": p.default_version,
            "AttachDate": a.attach_date,
        }
    )


def _group(g: Group) -> Reply:
    return _compact(
        {
            "GroupName": g.group_name,
            "GroupId": g.group_id,
            "Comments": g.comments,
            "CreateDate": g.create_date,
            "UpdateDate": g.update_date,
        }
    )


def _role(r: Role) -> Reply:
    return _compact(
        {
            "RoleName": r.role_name,
            "RoleId": r.role_id,
            "Arn": r.arn,
            "Description": r.description,
            "AssumeRolePolicyDocument": r.assume_role_policy_document,
            "MaxSessionDuration": r.max_session_duration,
            "AllowConsoleLogin": r.allow_console_login,
            "CreateDate": r.create_date,
            "UpdateDate": r.update_date,
        }
    )


def _qr_png(text: str) -> str:
    """A small valid PNG carrying the otpauth URI (as a text chunk), base64 like the cloud's QRCodePNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    png += chunk(b"tEXt", b"otpauth\x00" + text.encode()) + chunk(b"IDAT", zlib.compress(b"\x00\xff"))
    return base64.b64encode(png + chunk(b"IEND", b"")).decode()


def _mfa(d: VirtualMFADevice, ram: RamBackend) -> Reply:
    reply: Reply = {"SerialNumber": d.serial_number}
    if d.user_name is not None:
        user = ram.users[d.user_name]
        reply["ActivateDate"] = d.activate_date
        reply["User"] = {"UserName": user.user_name, "UserId": user.user_id, "DisplayName": user.display_name}
    return reply


# --- users ---------------------------------------------------------------------------------------
@service.action("CreateUser")
def create_user(ctx: CallContext) -> Reply:
    user = _ram(ctx).create_user(
        ctx.require("UserName"),
        display_name=ctx.get("DisplayName"),
        email=ctx.get("Email"),
        mobile_phone=ctx.get("MobilePhone"),
        comments=ctx.get("Comments"),
    )
    return {"User": _user(user)}


@service.action("GetUser")
def get_user(ctx: CallContext) -> Reply:
    user = _ram(ctx).get_user(ctx.require("UserName"))
    return {"User": _compact({**_user(user), "LastLoginDate": user.last_login_date})}


@service.action("UpdateUser")
def update_user(ctx: CallContext) -> Reply:
    user = _ram(ctx).update_user(
        ctx.require("UserName"),
        new_user_name=ctx.get("NewUserName"),
        new_display_name=ctx.get("NewDisplayName"),
        new_email=ctx.get("NewEmail"),
        new_mobile_phone=ctx.get("NewMobilePhone"),
        new_comments=ctx.get("NewComments"),
    )
    return {"User": _user(user)}


@service.action("DeleteUser")
def delete_user(ctx: CallContext) -> Reply:
    _ram(ctx).delete_user(ctx.require("UserName"))
    return {}


@service.action("ListUsers")
def list_users(ctx: CallContext) -> Reply:
    return _page(ctx, _ram(ctx).list_users(), lambda u: u.seq, "Users", "User", _user)


# --- login profiles ------------------------------------------------------------------------------
@service.action("CreateLoginProfile")
def create_login_profile(ctx: CallContext) -> Reply:
    user_name = ctx.require("UserName")
    profile = _ram(ctx).create_login_profile(
        user_name,
        ctx.require("Password"),
        password_reset_required=ctx.boolean("PasswordResetRequired"),
        mfa_bind_required=ctx.boolean("MFABindRequired"),
    )
    return {"LoginProfile": _login_profile(user_name, profile)}


@service.action("GetLoginProfile")
def get_login_profile(ctx: CallContext) -> Reply:
    user_name = ctx.require("UserName")
    return {"LoginProfile": _login_profile(user_name, _ram(ctx).get_login_profile(user_name))}


@service.action("UpdateLoginProfile")
def update_login_profile(ctx: CallContext) -> Reply:
    _ram(ctx).update_login_profile(
        ctx.require("UserName"),
        password=ctx.get("Password"),
        password_reset_required=_optional_bool(ctx, "PasswordResetRequired"),
        mfa_bind_required=_optional_bool(ctx, "MFABindRequired"),
    )
    return {}


@service.action("DeleteLoginProfile")
def delete_login_profile(ctx: CallContext) -> Reply:
    _ram(ctx).delete_login_profile(ctx.require("UserName"))
    return {}


@service.action("ChangePassword")
def change_password(ctx: CallContext) -> Reply:
    """Codes and messages from ChangePassword's reference (see the module docstring)."""
    old, new = ctx.require("OldPassword"), ctx.require("NewPassword")
    if ctx.principal.kind != "user" or ctx.principal.user_name is None:
        raise errors.NotSupportAccount()
    ram = _ram(ctx)
    if not ram.get_login_profile(ctx.principal.user_name).verify_password(old):
        raise errors.OldPasswordIncorrect()
    try:
        ram.update_login_profile(ctx.principal.user_name, password=new, password_reset_required=False)
    except errors.PasswordTooWeak as weak:
        reused = len(weak.problems) == 1 and "cannot be reused" in weak.problems[0]
        raise (errors.NewPasswordReusePrevention if reused else errors.NewPasswordTooWeak)(
            weak.problems
        ) from None
    return {}


# --- access keys ---------------------------------------------------------------------------------
@service.action("CreateAccessKey")
def create_access_key(ctx: CallContext) -> Reply:
    key = _ram(ctx).create_access_key(_user_name_or_caller(ctx))
    return {"AccessKey": {**_key(key), "AccessKeySecret": key.secret}}


@service.action("UpdateAccessKey")
def update_access_key(ctx: CallContext) -> Reply:
    key_id, status = ctx.require("UserAccessKeyId"), ctx.require("Status")
    _ram(ctx).update_access_key(_user_name_or_caller(ctx), key_id, status)
    return {}


@service.action("DeleteAccessKey")
def delete_access_key(ctx: CallContext) -> Reply:
    key_id = ctx.require("UserAccessKeyId")
    _ram(ctx).delete_access_key(_user_name_or_caller(ctx), key_id)
    return {}


@service.action("GetAccessKeyLastUsed")
def get_access_key_last_used(ctx: CallContext) -> Reply:
    key_id = ctx.require("UserAccessKeyId")
    key = _ram(ctx).get_access_key(_user_name_or_caller(ctx), key_id)
    return {"AccessKeyLastUsed": {"LastUsedDate": key.last_used_date} if key.last_used_date else {}}


@service.action("ListAccessKeys")
def list_access_keys(ctx: CallContext) -> Reply:
    keys = _ram(ctx).list_access_keys(_user_name_or_caller(ctx))
    return {"AccessKeys": {"AccessKey": [_key(k) for k in keys]}}


# --- policies ------------------------------------------------------------------------------------
@service.action("CreatePolicy")
def create_policy(ctx: CallContext) -> Reply:
    policy = _ram(ctx).create_policy(
        ctx.require("PolicyName"),
        ctx.require("PolicyDocument"),
        description=ctx.get("Description"),
        tags=_tags(ctx),
    )
    return {"Policy": _without(_policy(policy), "AttachmentCount", "UpdateDate")}


@service.action("GetPolicy")
def get_policy(ctx: CallContext) -> Reply:
    name, policy_type = ctx.require("PolicyName"), ctx.require("PolicyType")
    policy = _ram(ctx).get_policy(policy_type, name)
    return {
        "Policy": {**_policy(policy), "PolicyDocument": policy.default.document},
        "DefaultPolicyVersion": _version(policy.default, policy),
    }


@service.action("DeletePolicy")
def delete_policy(ctx: CallContext) -> Reply:
    _ram(ctx).delete_policy(ctx.require("PolicyName"), cascading=ctx.boolean("CascadingDelete"))
    return {}


@service.action("ListPolicies")
def list_policies(ctx: CallContext) -> Reply:
    policies = _ram(ctx).list_policies(ctx.get("PolicyType"), _tags(ctx))

    def shape(p: Policy) -> Reply:
        return _with_tags(_policy(p), p.tags)

    return _page(ctx, policies, lambda p: p.seq, "Policies", "Policy", shape)


@service.action("UpdatePolicyDescription")
def update_policy_description(ctx: CallContext) -> Reply:
    name = ctx.require("PolicyName")
    policy = _ram(ctx).update_policy_description(name, ctx.get("NewDescription") or "")
    return {"Policy": _without(_policy(policy), "AttachmentCount")}


@service.action("CreatePolicyVersion")
def create_policy_version(ctx: CallContext) -> Reply:
    name, document = ctx.require("PolicyName"), ctx.require("PolicyDocument")
    strategy = ctx.get("RotateStrategy", "None")
    if strategy not in ("None", "DeleteOldestNonDefaultVersionWhenLimitExceeded"):
        raise InvalidParameter(
            "RotateStrategy", "must be None or DeleteOldestNonDefaultVersionWhenLimitExceeded"
        )
    ram = _ram(ctx)
    version = ram.create_policy_version(
        name, document, set_as_default=ctx.boolean("SetAsDefault"), rotate=strategy != "None"
    )
    return {"PolicyVersion": _version(version, ram.get_policy("Custom", name))}


@service.action("GetPolicyVersion")
def get_policy_version(ctx: CallContext) -> Reply:
    name, policy_type, version_id = (
        ctx.require("PolicyName"),
        ctx.require("PolicyType"),
        ctx.require("VersionId"),
    )
    ram = _ram(ctx)
    version = ram.get_policy_version(policy_type, name, version_id)
    return {"PolicyVersion": _version(version, ram.get_policy(policy_type, name))}


@service.action("ListPolicyVersions")
def list_policy_versions(ctx: CallContext) -> Reply:
    name, policy_type = ctx.require("PolicyName"), ctx.require("PolicyType")
    policy = _ram(ctx).get_policy(policy_type, name)
    return {"PolicyVersions": {"PolicyVersion": [_version(v, policy) for v in policy.versions.values()]}}


@service.action("SetDefaultPolicyVersion")
def set_default_policy_version(ctx: CallContext) -> Reply:
    name, version_id = ctx.require("PolicyName"), ctx.require("VersionId")
    _ram(ctx).set_default_policy_version(name, version_id)
    return {}


@service.action("DeletePolicyVersion")
def delete_policy_version(ctx: CallContext) -> Reply:
    name, version_id = ctx.require("PolicyName"), ctx.require("VersionId")
    _ram(ctx).delete_policy_version(name, version_id)
    return {}


@service.action("ListEntitiesForPolicy")
def list_entities_for_policy(ctx: CallContext) -> Reply:
    name, policy_type = ctx.require("PolicyName"), ctx.require("PolicyType")
    found = _ram(ctx).entities_for_policy(policy_type, name)
    users = [
        {
            "UserName": u.user_name,
            "UserId": u.user_id,
            "DisplayName": u.display_name,
            "AttachDate": a.attach_date,
        }
        for u, a in found["User"]
    ]
    groups = [
        _compact({"GroupName": g.group_name, "Comments": g.comments, "AttachDate": a.attach_date})
        for g, a in found["Group"]
    ]
    roles = [
        _compact(
            {
                "RoleName": r.role_name,
                "RoleId": r.role_id,
                "Arn": r.arn,
                "Description": r.description,
                "AttachDate": a.attach_date,
            }
        )
        for r, a in found["Role"]
    ]
    return {"Users": {"User": users}, "Groups": {"Group": groups}, "Roles": {"Role": roles}}


# --- attachments: one family of three actions for each kind of holder -----------------------------
def _register_attachment_actions(kind: HolderKind, name_param: str) -> None:
    def target(ctx: CallContext) -> tuple[str, str, str, str]:
        return (
            ctx.require(name_param),
            ctx.require("PolicyType"),
            ctx.require("PolicyName"),
            ctx.get("ResourceGroupId") or "",
        )

    def attach(ctx: CallContext) -> Reply:
        _ram(ctx).attach_policy(kind, *target(ctx))
        return {}

    def detach(ctx: CallContext) -> Reply:
        _ram(ctx).detach_policy(kind, *target(ctx))
        return {}

    def list_attached(ctx: CallContext) -> Reply:
        attached = _ram(ctx).attached_policies(kind, ctx.require(name_param))
        return {"Policies": {"Policy": [_attached(a, p) for a, p in attached]}}

    service.action(f"AttachPolicyTo{kind}")(attach)
    service.action(f"DetachPolicyFrom{kind}")(detach)
    service.action(f"ListPoliciesFor{kind}")(list_attached)


_register_attachment_actions("User", "UserName")
_register_attachment_actions("Group", "GroupName")
_register_attachment_actions("Role", "RoleName")


# --- groups --------------------------------------------------------------------------------------
@service.action("CreateGroup")
def create_group(ctx: CallContext) -> Reply:
    group = _ram(ctx).create_group(ctx.require("GroupName"), ctx.get("Comments"))
    return {"Group": _without(_group(group), "UpdateDate")}


@service.action("GetGroup")
def get_group(ctx: CallContext) -> Reply:
    return {"Group": _group(_ram(ctx).get_group(ctx.require("GroupName")))}


@service.action("UpdateGroup")
def update_group(ctx: CallContext) -> Reply:
    group = _ram(ctx).update_group(
        ctx.require("GroupName"), new_group_name=ctx.get("NewGroupName"), new_comments=ctx.get("NewComments")
    )
    return {"Group": _group(group)}


@service.action("DeleteGroup")
def delete_group(ctx: CallContext) -> Reply:
    _ram(ctx).delete_group(ctx.require("GroupName"))
    return {}


@service.action("ListGroups")
def list_groups(ctx: CallContext) -> Reply:
    return _page(ctx, _ram(ctx).list_groups(), lambda g: g.seq, "Groups", "Group", _group)


@service.action("AddUserToGroup")
def add_user_to_group(ctx: CallContext) -> Reply:
    user_name, group_name = ctx.require("UserName"), ctx.require("GroupName")
    _ram(ctx).add_user_to_group(user_name, group_name)
    return {}


@service.action("RemoveUserFromGroup")
def remove_user_from_group(ctx: CallContext) -> Reply:
    user_name, group_name = ctx.require("UserName"), ctx.require("GroupName")
    _ram(ctx).remove_user_from_group(user_name, group_name)
    return {}


@service.action("ListGroupsForUser")
def list_groups_for_user(ctx: CallContext) -> Reply:
    joined = _ram(ctx).groups_for_user(ctx.require("UserName"))
    groups = [
        _compact({"GroupName": g.group_name, "GroupId": g.group_id, "Comments": g.comments, "JoinDate": when})
        for g, when in joined
    ]
    return {"Groups": {"Group": groups}}


@service.action("ListUsersForGroup")
def list_users_for_group(ctx: CallContext) -> Reply:
    members = _ram(ctx).users_for_group(ctx.require("GroupName"))

    def shape(member: tuple[User, str]) -> Reply:
        user, joined = member
        return {"UserName": user.user_name, "DisplayName": user.display_name, "JoinDate": joined}

    return _page(ctx, members, lambda m: m[0].seq, "Users", "User", shape)


# --- roles ---------------------------------------------------------------------------------------
@service.action("CreateRole")
def create_role(ctx: CallContext) -> Reply:
    role = _ram(ctx).create_role(
        ctx.require("RoleName"),
        ctx.require("AssumeRolePolicyDocument"),
        description=ctx.get("Description"),
        max_session_duration=_optional_int(ctx, "MaxSessionDuration"),
        allow_console_login=_optional_bool(ctx, "AllowConsoleLogin"),
        tags=_tags(ctx),
    )
    return {"Role": _without(_role(role), "UpdateDate")}


@service.action("GetRole")
def get_role(ctx: CallContext) -> Reply:
    role = _ram(ctx).get_role(ctx.require("RoleName"))
    principal = f"{role.role_name}@role.{ctx.account.account_id}.onaliyunservice.com"
    return {"Role": {**_role(role), "RolePrincipalName": principal, "IsServiceLinkedRole": False}}


@service.action("UpdateRole")
def update_role(ctx: CallContext) -> Reply:
    role = _ram(ctx).update_role(
        ctx.require("RoleName"),
        new_assume_role_policy_document=ctx.get("NewAssumeRolePolicyDocument"),
        new_max_session_duration=_optional_int(ctx, "NewMaxSessionDuration"),
        new_description=ctx.get("NewDescription"),
        new_allow_console_login=_optional_bool(ctx, "NewAllowConsoleLogin"),
    )
    return {"Role": _role(role)}


@service.action("DeleteRole")
def delete_role(ctx: CallContext) -> Reply:
    _ram(ctx).delete_role(ctx.require("RoleName"))
    return {}


@service.action("ListRoles")
def list_roles(ctx: CallContext) -> Reply:
    def shape(r: Role) -> Reply:
        return _with_tags(_without(_role(r), "AssumeRolePolicyDocument"), r.tags)

    return _page(ctx, _ram(ctx).list_roles(_tags(ctx)), lambda r: r.seq, "Roles", "Role", shape)


# --- virtual MFA devices -------------------------------------------------------------------------
@service.action("CreateVirtualMFADevice")
def create_virtual_mfa_device(ctx: CallContext) -> Reply:
    ram = _ram(ctx)
    device = ram.create_virtual_mfa_device(ctx.require("VirtualMFADeviceName"))
    uri = f"otpauth://totp/{device.name}@{ram.default_domain}?secret={device.base32_seed}"
    return {
        "VirtualMFADevice": {
            "SerialNumber": device.serial_number,
            "Base32StringSeed": device.base32_seed,
            "QRCodePNG": _qr_png(uri),
        }
    }


@service.action("ListVirtualMFADevices")
def list_virtual_mfa_devices(ctx: CallContext) -> Reply:
    ram = _ram(ctx)
    return {"VirtualMFADevices": {"VirtualMFADevice": [_mfa(d, ram) for d in ram.list_virtual_mfa_devices()]}}


@service.action("DeleteVirtualMFADevice")
def delete_virtual_mfa_device(ctx: CallContext) -> Reply:
    _ram(ctx).delete_virtual_mfa_device(ctx.require("SerialNumber"))
    return {}


@service.action("BindMFADevice")
def bind_mfa_device(ctx: CallContext) -> Reply:
    user_name, serial = ctx.require("UserName"), ctx.require("SerialNumber")
    code1, code2 = ctx.require("AuthenticationCode1"), ctx.require("AuthenticationCode2")
    _ram(ctx).bind_mfa_device(user_name, serial, code1, code2)
    return {}


@service.action("UnbindMFADevice")
def unbind_mfa_device(ctx: CallContext) -> Reply:
    device = _ram(ctx).unbind_mfa_device(ctx.require("UserName"))
    return {"MFADevice": {"SerialNumber": device.serial_number}}


@service.action("GetUserMFAInfo")
def get_user_mfa_info(ctx: CallContext) -> Reply:
    device = _ram(ctx).user_mfa_device(ctx.require("UserName"))
    return {"MFADevice": {"SerialNumber": device.serial_number, "Type": "VMFA"}}


# --- account settings ----------------------------------------------------------------------------
_PASSWORD_POLICY_FIELDS = {
    "MinimumPasswordLength": "minimum_password_length",
    "RequireLowercaseCharacters": "require_lowercase_characters",
    "RequireUppercaseCharacters": "require_uppercase_characters",
    "RequireNumbers": "require_numbers",
    "RequireSymbols": "require_symbols",
    "HardExpiry": "hard_expiry",
    "MaxPasswordAge": "max_password_age",
    "PasswordReusePrevention": "password_reuse_prevention",
    "MaxLoginAttemps": "max_login_attemps",
}


def _password_policy(policy: PasswordPolicy) -> Reply:
    return {
        "PasswordPolicy": {param: getattr(policy, attr) for param, attr in _PASSWORD_POLICY_FIELDS.items()}
    }


@service.action("GetPasswordPolicy")
def get_password_policy(ctx: CallContext) -> Reply:
    return _password_policy(_ram(ctx).password_policy)


@service.action("SetPasswordPolicy")
def set_password_policy(ctx: CallContext) -> Reply:
    defaults = PasswordPolicy()
    values: dict[str, Any] = {}
    for param, attr in _PASSWORD_POLICY_FIELDS.items():
        default = getattr(defaults, attr)
        values[attr] = (
            ctx.boolean(param, default) if isinstance(default, bool) else ctx.integer(param, default)
        )
    return _password_policy(_ram(ctx).set_password_policy(PasswordPolicy(**values)))


@service.action("GetAccountAlias")
def get_account_alias(ctx: CallContext) -> Reply:
    return {"AccountAlias": ctx.account.alias}


@service.action("SetAccountAlias")
def set_account_alias(ctx: CallContext) -> Reply:
    taken = {a.alias for a in ctx.emulator.accounts.values() if a is not ctx.account}
    ctx.account.alias = _ram(ctx).set_alias(ctx.require("AccountAlias"), taken)
    return {}


@service.action("ClearAccountAlias")
def clear_account_alias(ctx: CallContext) -> Reply:
    ctx.account.alias = _ram(ctx).alias = ""
    return {}
