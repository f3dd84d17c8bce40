"""Constrained field types shared by the event models.

Every check raises ValueError with a reason that describes the rule and never repeats the input:
reasons travel back to callers and into the audit trail, and input may be huge or hostile.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator

from shared.sealing import check_public_key

AccessMode = Literal["console", "programmatic"]
PolicyType = Literal["System", "Custom"]

# Characters that can hide or reorder text in a console or a log line ("Trojan source").
_CONTROL_OR_BIDI = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

RESERVED_TAG_KEYS = frozenset({"managed-by", "ticket", "owner"})
RESERVED_TAG_PREFIXES = ("acs:", "aliyun")
RAM_TAGS_PER_USER = 20
MAX_TAGS = RAM_TAGS_PER_USER - len(RESERVED_TAG_KEYS)  # ramflow sets the reserved three itself


def _pattern(regex: str, rule: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {rule}")
        return value

    return check


def _text(max_length: int):
    def check(value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if _CONTROL_OR_BIDI.search(value):
            raise ValueError("must not contain control or bidirectional-override characters")
        return value

    return check


_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _email(value: str) -> str:
    """A practical subset of RFC 5322 (what corporate directories issue), normalised to lower case."""
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address such as 'alice@example.com'")
    return value.lower()


def _tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise ValueError(
            f"at most {MAX_TAGS} tags (RAM keeps {RAM_TAGS_PER_USER}; ramflow sets three itself)"
        )
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 128:
            raise ValueError("tag keys are 1 to 128 characters and values at most 128")
        if _CONTROL_OR_BIDI.search(key) or _CONTROL_OR_BIDI.search(value):
            raise ValueError("tags must not contain control or bidirectional-override characters")
        if "http://" in key.lower() or "https://" in key.lower():
            raise ValueError("tag keys must not contain 'http://' or 'https://'")
        if key.lower() in RESERVED_TAG_KEYS:
            raise ValueError(f"tag key '{key.lower()}' is set by ramflow itself")
        if key.lower().startswith(RESERVED_TAG_PREFIXES):
            raise ValueError("tag keys must not start with 'acs:' or 'aliyun' (reserved by Alibaba Cloud)")
    return tags


def _public_key(value: str) -> str:
    check_public_key(value)
    return value


def _one_access_mode(value: object) -> object:
    """Name the rule when someone asks for both modes, instead of a bare 'invalid literal'."""
    if value in ("console", "programmatic"):
        return value
    raise ValueError("must be exactly one of 'console' or 'programmatic' (one access mode per user)")


AccessKeyId = Annotated[str, AfterValidator(_pattern(r"[A-Za-z0-9]{1,128}", "1 to 128 of A-Z a-z 0-9"))]
LogonName = Annotated[str, AfterValidator(_pattern(r"[A-Za-z0-9._-]{1,64}", "1 to 64 of A-Z a-z 0-9 . _ -"))]
DisplayName = Annotated[str, AfterValidator(_text(128))]
FreeText = Annotated[str, AfterValidator(_text(1024))]
Email = Annotated[str, AfterValidator(_email)]
TicketId = Annotated[
    str, AfterValidator(_pattern(r"[A-Za-z0-9._:-]{1,64}", "1 to 64 of A-Z a-z 0-9 . _ : -"))
]
HrEventId = TicketId
JobId = Annotated[str, AfterValidator(_pattern(r"job-[0-9a-f]{12}", "job- and 12 hex digits"))]
ResourceGroupId = Annotated[
    str, AfterValidator(_pattern(r"rg-[A-Za-z0-9]{1,64}", "a resource group id such as 'rg-aek2xl5qw'"))
]
PolicyName = Annotated[str, AfterValidator(_pattern(r"[A-Za-z0-9-]{1,128}", "1 to 128 of A-Z a-z 0-9 -"))]
TemplateName = Annotated[
    str, AfterValidator(_pattern(r"[a-z0-9][a-z0-9-]{0,62}", "1 to 63 of a-z 0-9 - (lower case)"))
]
ParamName = Annotated[str, AfterValidator(_pattern(r"[a-z][a-z0-9_]{0,63}", "1 to 64 of a-z 0-9 _"))]
UserTags = Annotated[dict[str, str], AfterValidator(_tags)]
DeliveryPublicKey = Annotated[str, AfterValidator(_public_key)]
OneAccessMode = Annotated[AccessMode, BeforeValidator(_one_access_mode)]
