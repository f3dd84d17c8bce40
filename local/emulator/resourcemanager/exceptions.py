"""ResourceManager's error codes (resource groups, scoped policy attachments): one class per code."""

from __future__ import annotations

from local.emulator.errors import DeclaredError
from local.emulator.errors import DuplicateTagKey as DuplicateTagKey  # TagResources' rules are shared
from local.emulator.errors import InvalidTagKey as InvalidTagKey
from local.emulator.errors import InvalidTagValue as InvalidTagValue

# --- parameters ----------------------------------------------------------------------------------


class MissingName(DeclaredError):
    code_template = "MissingParameter.Name"
    message_template = "You must specify Name."


class NameLength(DeclaredError):
    code_template = "InvalidParameter.Name.Length"
    message_template = "The maximum length of Name is exceeded."


class NameInvalidChars(DeclaredError):
    code_template = "InvalidParameter.Name.InvalidChars"
    message_template = "The Name is invalid."


class MissingDisplayName(DeclaredError):
    code_template = "MissingParameter.DisplayName"
    message_template = "You must specify DisplayName."


class DisplayNameLength(DeclaredError):
    code_template = "InvalidParameter.DisplayName.Length"
    message_template = "The maximum length of DisplayName is exceeded."


class InvalidResourceGroupId(DeclaredError):
    code_template = "InvalidParameter.ResourceGroupId"
    message_template = "The ResourceGroupId is invalid."


class InvalidPolicyType(DeclaredError):
    code_template = "InvalidParameter.PolicyType"
    message_template = "The specified policy type is invalid."


class InvalidPrincipalType(DeclaredError):
    code_template = "InvalidParameter.PrincipalType"
    message_template = "The specified principal type is invalid."


class TooManyTags(DeclaredError):
    code_template = "NumberExceed.Tags"
    message_template = "The maximum number of Tags is exceeded. The maximum is {maximum}."

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum=maximum)


# --- resource groups -----------------------------------------------------------------------------


class EntityNotExistsResourceGroup(DeclaredError):
    code_template = "EntityNotExists.ResourceGroup"
    message_template = "The specified resource group does not exist. You must first create a resource group."
    http_status = 404


class ResourceGroupBusy(DeclaredError):
    code_template = "Invalid.ResourceGroup.Status"
    message_template = "You cannot perform an operation on a resource group that is being created or deleted."
    http_status = 409


class ResourceGroupNameExists(DeclaredError):
    code_template = "EntityAlreadyExists.ResourceGroup"
    message_template = "The resource group name already exists: {name}."
    http_status = 409

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class ResourceGroupIdExists(DeclaredError):
    """Only local seeding fixes an id: the API never takes one."""

    code_template = "EntityAlreadyExists.ResourceGroup"
    message_template = "The resource group exists: {group_id}."
    http_status = 409

    def __init__(self, group_id: str) -> None:
        super().__init__(group_id=group_id)


class LimitExceededResourceGroup(DeclaredError):
    code_template = "LimitExceeded.ResourceGroup"
    message_template = "The maximum number of resource groups ({maximum}) is exceeded."
    http_status = 409

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum=maximum)


class DeleteConflictResourceGroupDefault(DeclaredError):
    code_template = "DeleteConflict.ResourceGroup.Default"
    message_template = "The default resource group cannot be deleted."
    http_status = 409


class DeleteConflictResourceGroupResource(DeclaredError):
    code_template = "DeleteConflict.ResourceGroup.Resource"
    message_template = (
        "Failed to delete the resource group because one or more cloud resources exist in the "
        "resource group. Try again later after you release the cloud resources."
    )
    http_status = 409


# --- policy attachments --------------------------------------------------------------------------


class EntityNotExistPolicy(DeclaredError):
    """DetachPolicy of a policy the principal does not hold in that scope."""

    code_template = "EntityNotExist.Policy"
    message_template = "The policy does not exist."
    http_status = 404
