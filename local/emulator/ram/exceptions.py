"""RAM's error codes (see responses.py's docstring for the sources): one class per code.

A few codes carry the parameter or the holder kind in their name (`InvalidParameter.<Param>.Length`,
`EntityAlreadyExists.<User|Group|Role>.Policy`): one class stands for the family.
"""

from __future__ import annotations

from local.emulator.errors import DeclaredError

# --- parameters ----------------------------------------------------------------------------------


class ParameterTooLong(DeclaredError):
    code_template = "InvalidParameter.{param}.Length"
    message_template = 'The parameter - "{param}" beyond the length limit.'

    def __init__(self, param: str) -> None:
        super().__init__(param=param)


class ParameterInvalidChars(DeclaredError):
    code_template = "InvalidParameter.{param}.InvalidChars"
    message_template = 'The parameter - "{param}" contains invalid chars.'

    def __init__(self, param: str) -> None:
        super().__init__(param=param)


class ParameterFormat(DeclaredError):
    code_template = "InvalidParameter.{param}.Format"
    message_template = 'The format of the parameter - "{param}" is incorrect.'

    def __init__(self, param: str) -> None:
        super().__init__(param=param)


class ParameterRange(DeclaredError):
    code_template = "InvalidParameter.{param}.Range"
    message_template = 'The parameter - "{param}" MUST be in the range of {low} and {high}.'

    def __init__(self, param: str, low: int, high: int) -> None:
        super().__init__(param=param, low=low, high=high)


class AccountAliasLength(DeclaredError):
    code_template = "InvalidParameter.AccountAlias.Length"
    message_template = 'The parameter - "AccountAlias" MUST be in the range of 3 and 32.'


class AuthenticationCodeFormat(DeclaredError):
    code_template = "InvalidParameter.AuthenticationCode.Format"
    message_template = 'The parameter - "AuthenticationCode" MUST be 6 numbers.'


class InvalidPolicyType(DeclaredError):
    code_template = "InvalidParameter.PolicyType"
    message_template = 'The parameter - "PolicyType" is incorrect.'


class MalformedPolicyDocument(DeclaredError):
    code_template = "MalformedPolicyDocument"
    message_template = "The policy document is malformed: {reason}"

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


# --- passwords -----------------------------------------------------------------------------------


class PasswordTooWeak(DeclaredError):
    code_template = "InvalidParameter.Password.TooWeak"
    message_template = 'The parameter - "Password" is not compliant with the password policy: {problems}.'

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems="; ".join(problems))
        self.problems = problems


class NewPasswordTooWeak(DeclaredError):
    code_template = "InvalidParameter.NewPassword.TooWeak"
    message_template = 'The parameter - "NewPassword" is not compliant with the password policy: {problems}.'

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems="; ".join(problems))


class NewPasswordReusePrevention(NewPasswordTooWeak):
    """Reuse is the only problem of the new password."""

    code_template = "InvalidParameter.NewPassword.ReusePrevention"


class OldPasswordIncorrect(DeclaredError):
    code_template = "InvalidParameter.OldPassword.Incorrect"
    message_template = 'The parameter - "OldPassword" is incorrect.'


class NotSupportAccount(DeclaredError):
    code_template = "NotSupport.Account"
    message_template = "This method can be only invoked by sub user."


# --- entities that do not exist (404) ------------------------------------------------------------


class _NotExist(DeclaredError):
    http_status = 404


class EntityNotExistUser(_NotExist):
    code_template = "EntityNotExist.User"
    message_template = "The user does not exist: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityNotExistPolicy(_NotExist):
    code_template = "EntityNotExist.Policy"
    message_template = "The policy does not exist: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityNotExistGroup(_NotExist):
    code_template = "EntityNotExist.Group"
    message_template = "The group does not exist: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityNotExistRole(_NotExist):
    code_template = "EntityNotExist.Role"
    message_template = "The role does not exist: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityNotExistLoginProfile(_NotExist):
    code_template = "EntityNotExist.User.LoginProfile"
    message_template = "The user login profile does not exist: {user_name}."

    def __init__(self, user_name: str) -> None:
        super().__init__(user_name=user_name)


class EntityNotExistAccessKey(_NotExist):
    code_template = "EntityNotExist.User.AccessKey"
    message_template = "The user access key does not exist: {key_id}."

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id=key_id)


class EntityNotExistPolicyVersion(_NotExist):
    code_template = "EntityNotExist.Policy.Version"
    message_template = "The policy version does not exist: {version_id}."

    def __init__(self, version_id: str) -> None:
        super().__init__(version_id=version_id)


class EntityNotExistAttachment(_NotExist):
    """`EntityNotExist.<User|Group|Role>.Policy`: the policy is not attached to that holder."""

    code_template = "EntityNotExist.{kind}.Policy"
    message_template = "The policy {policy_name} is not attached to the {holder} {name}."

    def __init__(self, kind: str, policy_name: str, name: str) -> None:
        super().__init__(kind=kind, holder=kind.lower(), policy_name=policy_name, name=name)


class EntityNotExistMembership(_NotExist):
    code_template = "EntityNotExist.User.Group"
    message_template = "The user {user_name} has not joined the group {group_name}."

    def __init__(self, user_name: str, group_name: str) -> None:
        super().__init__(user_name=user_name, group_name=group_name)


class EntityNotExistVirtualMFADevice(_NotExist):
    code_template = "EntityNotExist.VirtualMFADevice"
    message_template = "The virtual mfa device does not exist: {serial_number}."

    def __init__(self, serial_number: str) -> None:
        super().__init__(serial_number=serial_number)


class EntityNotExistUserMFADevice(_NotExist):
    code_template = "EntityNotExist.User.MFADevice"
    message_template = "The user has not bound any MFA device: {user_name}."

    def __init__(self, user_name: str) -> None:
        super().__init__(user_name=user_name)


# --- entities that exist already (409) -----------------------------------------------------------


class _AlreadyExists(DeclaredError):
    http_status = 409


class EntityAlreadyExistsUser(_AlreadyExists):
    code_template = "EntityAlreadyExists.User"
    message_template = "The user already exists: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityAlreadyExistsPolicy(_AlreadyExists):
    code_template = "EntityAlreadyExists.Policy"
    message_template = "The policy already exists: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityAlreadyExistsGroup(_AlreadyExists):
    code_template = "EntityAlreadyExists.Group"
    message_template = "The group already exists: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityAlreadyExistsRole(_AlreadyExists):
    code_template = "EntityAlreadyExists.Role"
    message_template = "The role already exists: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityAlreadyExistsLoginProfile(_AlreadyExists):
    code_template = "EntityAlreadyExists.User.LoginProfile"
    message_template = "The user login profile does already exist: {user_name}."

    def __init__(self, user_name: str) -> None:
        super().__init__(user_name=user_name)


class EntityAlreadyExistsAttachment(_AlreadyExists):
    """`EntityAlreadyExists.<User|Group|Role>.Policy`: the policy is attached to that holder already."""

    code_template = "EntityAlreadyExists.{kind}.Policy"
    message_template = "The {holder} has already been attached this policy: {policy_name}."

    def __init__(self, kind: str, policy_name: str) -> None:
        super().__init__(kind=kind, holder=kind.lower(), policy_name=policy_name)


class EntityAlreadyExistsMembership(_AlreadyExists):
    code_template = "EntityAlreadyExists.User.Group"
    message_template = "The user {user_name} has already joined the group {group_name}."

    def __init__(self, user_name: str, group_name: str) -> None:
        super().__init__(user_name=user_name, group_name=group_name)


class EntityAlreadyExistsVirtualMFADevice(_AlreadyExists):
    code_template = "EntityAlreadyExists.VirtualMFADevice"
    message_template = "The virtual mfa device does already exist: {name}."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class EntityAlreadyExistsUserMFADevice(_AlreadyExists):
    code_template = "EntityAlreadyExists.User.MFADevice"
    message_template = "The user has already bound a MFA device: {user_name}."

    def __init__(self, user_name: str) -> None:
        super().__init__(user_name=user_name)


class EntityAlreadyExistsVirtualMFADeviceUser(_AlreadyExists):
    code_template = "EntityAlreadyExists.VirtualMFADevice.User"
    message_template = "The virtual mfa device is already bound to a user: {serial_number}."

    def __init__(self, serial_number: str) -> None:
        super().__init__(serial_number=serial_number)


class EntityAlreadyExistsAccountAlias(_AlreadyExists):
    code_template = "EntityAlreadyExists.AccountAlias"
    message_template = "The account alias does already exist: {alias}."

    def __init__(self, alias: str) -> None:
        super().__init__(alias=alias)


# --- deletes refused while something remains (409) -----------------------------------------------


class _DeleteConflict(DeclaredError):
    http_status = 409


class DeleteConflictUserAccessKey(_DeleteConflict):
    code_template = "DeleteConflict.User.AccessKey"
    message_template = "The user CAN NOT has any access key while deleting the user."


class DeleteConflictUserLoginProfile(_DeleteConflict):
    code_template = "DeleteConflict.User.LoginProfile"
    message_template = "The user CAN NOT has any login profile while deleting the user."


class DeleteConflictUserPolicy(_DeleteConflict):
    code_template = "DeleteConflict.User.Policy"
    message_template = "The user CAN NOT has any attached policy while deleting the user."


class DeleteConflictUserGroup(_DeleteConflict):
    code_template = "DeleteConflict.User.Group"
    message_template = "The user CAN NOT be in any group while deleting the user."


class DeleteConflictUserMFADevice(_DeleteConflict):
    code_template = "DeleteConflict.User.MFADevice"
    message_template = "The user CAN NOT has any mfa device while deleting the user."


class DeleteConflictPolicyAttached(_DeleteConflict):
    """DeletePolicy of a policy still attached: `DeleteConflict.Policy.User|Group`, and for roles
    `DeleteConflict.Role.Policy`, not `.Policy.Role` (see responses.py's docstring)."""

    code_template = "DeleteConflict.{entity}.{leftover}"
    message_template = "The policy CAN NOT been attached to any {holder} while deleting the policy."

    def __init__(self, kind: str) -> None:
        entity, leftover = ("Role", "Policy") if kind == "Role" else ("Policy", kind)
        super().__init__(entity=entity, leftover=leftover, holder=kind.lower())


class DeleteConflictPolicyVersion(_DeleteConflict):
    code_template = "DeleteConflict.Policy.Version"
    message_template = "The policy CAN NOT has any version except the default version."


class DeleteConflictPolicyVersionDefault(_DeleteConflict):
    code_template = "DeleteConflict.Policy.Version.Default"
    message_template = "The default policy version CAN NOT been deleted directly."


class DeleteConflictGroupUser(_DeleteConflict):
    code_template = "DeleteConflict.Group.User"
    message_template = "The group CAN NOT has any user member while deleting the group."


class DeleteConflictGroupPolicy(_DeleteConflict):
    code_template = "DeleteConflict.Group.Policy"
    message_template = "The entity CAN NOT has any attached policy while deleting the group."


class DeleteConflictRolePolicy(_DeleteConflict):
    code_template = "DeleteConflict.Role.Policy"
    message_template = "The role CAN NOT has any attached policy while deleting the role."


class DeleteConflictVirtualMFADeviceUser(_DeleteConflict):
    code_template = "DeleteConflict.VirtualMFADevice.User"
    message_template = "The virtual mfa device CAN NOT been bound to any user while deleting it."


# --- limits (409) --------------------------------------------------------------------------------


class _LimitExceeded(DeclaredError):
    http_status = 409


class LimitExceededUser(_LimitExceeded):
    code_template = "LimitExceeded.User"
    message_template = "The count of users beyond the current limits."


class LimitExceededUserAccessKey(_LimitExceeded):
    code_template = "LimitExceeded.User.AccessKey"
    message_template = "The access key count of the user access keys beyond the current limits."


class LimitExceededPolicy(_LimitExceeded):
    code_template = "LimitExceeded.Policy"
    message_template = "The count of policy beyond the current limits."


class LimitExceededPolicyVersion(_LimitExceeded):
    code_template = "LimitExceeded.Policy.Version"
    message_template = "The count of policy version beyond the current limits."


class LimitExceededAttachment(_LimitExceeded):
    """`LimitExceeded.<User|Group|Role>.Policy`: the holder has as many policies of that type as allowed."""

    code_template = "LimitExceeded.{kind}.Policy"
    message_template = "The {policy_type} policy count of the {holder} beyond the current limit of {limit}."

    def __init__(self, kind: str, policy_type: str, limit: int) -> None:
        super().__init__(kind=kind, holder=kind.lower(), policy_type=policy_type.lower(), limit=limit)


class LimitExceededGroup(_LimitExceeded):
    code_template = "LimitExceeded.Group"
    message_template = "The count of groups beyond the current limits."


class LimitExceededUserGroup(_LimitExceeded):
    code_template = "LimitExceeded.User.Group"
    message_template = "The count of groups the target user joined beyond the current limits."


class LimitExceededRole(_LimitExceeded):
    code_template = "LimitExceeded.Role"
    message_template = "The count of roles beyond the current limits."


class LimitExceededVirtualMFADevice(_LimitExceeded):
    code_template = "LimitExceeded.VirtualMFADevice"
    message_template = "The count of virtual mfa devices beyond the current limits."
