"""STS's error codes for AssumeRole (https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerole,
https://www.alibabacloud.com/help/doc-detail/28763.html): one class per code; the three refusals
that share `NoPermission` are subclasses of it, each with the cloud's message."""

from __future__ import annotations

from local.emulator.errors import DeclaredError


class WronglyFormed(DeclaredError):
    """`InvalidParameter.<RoleArn|RoleSessionName|ExternalId|SourceIdentity>`."""

    code_template = "InvalidParameter.{name}"
    message_template = "The parameter {name} is wrongly formed."

    def __init__(self, name: str) -> None:
        super().__init__(name=name)


class InvalidDurationSeconds(DeclaredError):
    code_template = "InvalidParameter.DurationSeconds"
    message_template = "The Min/Max value of DurationSeconds is 15min/{maximum}."

    def __init__(self, maximum: str) -> None:
        super().__init__(maximum=maximum)


class PolicySize(DeclaredError):
    code_template = "InvalidParameter.PolicySize"
    message_template = "The size of Policy must be smaller than {maximum} bytes."

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum=maximum)


class PolicyGrammar(DeclaredError):
    code_template = "InvalidParameter.PolicyGrammar"
    message_template = "The parameter Policy has not passed grammar check."


class EntityNotExistRole(DeclaredError):
    code_template = "EntityNotExist.Role"
    message_template = "The specified Role not exists."
    http_status = 404


class NoPermission(DeclaredError):
    """The caller's policies do not allow `sts:AssumeRole` on the role: 403 NoPermission."""

    code_template = "NoPermission"
    message_template = "You are not authorized to do this action. You should be authorized by RAM."
    http_status = 403


class NotTrusted(NoPermission):
    message_template = (
        "You are not authorized to do this action. You should be authorized by RAM. "
        "The role's trust policy does not allow this caller."
    )


class RootRefused(NoPermission):
    message_template = "Roles may not be assumed by root accounts."
