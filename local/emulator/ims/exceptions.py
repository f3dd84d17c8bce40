"""IMS's error codes for user tags (TagResources, UntagResources, ListTagResources): one class per
code. A user that does not exist answers RAM's `EntityNotExist.User` (local.emulator.ram.exceptions)."""

from __future__ import annotations

from local.emulator.errors import DeclaredError
from local.emulator.errors import DuplicateTagKey as DuplicateTagKey  # TagResources' rules are shared
from local.emulator.errors import InvalidTagKey as InvalidTagKey
from local.emulator.errors import InvalidTagValue as InvalidTagValue


class MissingResourceType(DeclaredError):
    code_template = "MissingParameter.ResourceType"
    message_template = "You must specify ResourceType."


class InvalidResourceType(DeclaredError):
    code_template = "InvalidParameter.ResourceType"
    message_template = "The ResourceType parameter is invalid."


class MissingResourceIds(DeclaredError):
    code_template = "MissingParameter.ResourceIds"
    message_template = "You must specify ResourceIds."


class MissingQueryTarget(DeclaredError):
    """ListTagResources names neither users nor tags."""

    code_template = "MissingParameter"
    message_template = "You must specify ResourceId.N, ResourcePrincipalName.N or Tag.N.Key to query tags."


class BothResourceIdAndName(DeclaredError):
    code_template = "InvalidParameter"
    message_template = (
        "You must specify only one of the following parameters: ResourceId and ResourcePrincipalName."
    )


class InvalidNextToken(DeclaredError):
    code_template = "InvalidParameter.NextToken"
    message_template = "The specified NextToken is invalid."


class TooManyTagsInRequest(DeclaredError):
    code_template = "NumberExceed.Tags"
    message_template = "The maximum number of Tags is exceeded. The maximum is {maximum}."

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum=maximum)


class TooManyTagsOnResource(DeclaredError):
    code_template = "NumberExceed.Tags"
    message_template = "The maximum number of tags on a resource is exceeded. The maximum is {maximum}."

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum=maximum)


class TooManyTagKeys(DeclaredError):
    code_template = "NumberExceed.TagKeys"
    message_template = "The maximum number of TagKeys is exceeded."


class TooManyResourceIds(DeclaredError):
    code_template = "NumberExceed.ResourceIds"
    message_template = "The maximum number of ResourceIds is exceeded."
