"""Typed shapes of what ramflow reads (CloudEvents and their payloads) and replies (results)."""

from shared.models.events import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    USER_OFFBOARDED,
    USER_REQUESTED,
    AccessApproved,
    AccessRevoked,
    CloudEvent,
    EventData,
    UserOffboarded,
    UserRequested,
    UserSpec,
    parse_data,
    parse_events,
)
from shared.models.grants import Grant, PolicyGrant, TemplateGrant
from shared.models.results import AccessKeyReply, FieldError, LoginProfileReply, Result

__all__ = [
    "ACCESS_APPROVED",
    "ACCESS_REVOKED",
    "USER_OFFBOARDED",
    "USER_REQUESTED",
    "AccessApproved",
    "AccessKeyReply",
    "AccessRevoked",
    "CloudEvent",
    "EventData",
    "FieldError",
    "Grant",
    "LoginProfileReply",
    "PolicyGrant",
    "Result",
    "TemplateGrant",
    "UserOffboarded",
    "UserRequested",
    "UserSpec",
    "parse_data",
    "parse_events",
]
