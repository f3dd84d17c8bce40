"""Typed shapes of what ramflow reads (CloudEvents and their payloads) and replies (results).

Names are loaded on first access (PEP 562): importing one module of the package does not load the
others, so a function pays at cold start only for the models it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
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

_MODULE_OF = {
    "ACCESS_APPROVED": "events",
    "ACCESS_REVOKED": "events",
    "USER_OFFBOARDED": "events",
    "USER_REQUESTED": "events",
    "AccessApproved": "events",
    "AccessRevoked": "events",
    "CloudEvent": "events",
    "EventData": "events",
    "UserOffboarded": "events",
    "UserRequested": "events",
    "UserSpec": "events",
    "parse_data": "events",
    "parse_events": "events",
    "Grant": "grants",
    "PolicyGrant": "grants",
    "TemplateGrant": "grants",
    "AccessKeyReply": "results",
    "FieldError": "results",
    "LoginProfileReply": "results",
    "Result": "results",
}

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


__getattr__ = lazy_attributes(__name__, _MODULE_OF, globals())
