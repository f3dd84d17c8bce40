"""CloudEvents 1.0 (structured JSON) and the four ramflow event payloads.

`parse_events` reads what Function Compute hands a handler (bytes, one event or an EventBridge
list); `parse_data` turns an event's `data` into the payload model its `type` names. Both raise
ValidationFailed with field paths, before anything else happens.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from shared.durations import IsoDuration, PositiveDuration
from shared.errors import ValidationFailed
from shared.models.fields import (
    AccessKeyId,
    DeliveryPublicKey,
    DisplayName,
    Email,
    FreeText,
    HrEventId,
    JobId,
    LogonName,
    OneAccessMode,
    TicketId,
    UserTags,
)
from shared.models.grants import DataModel, Grant
from shared.models.types import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    KEY_ROTATION_DUE,
    KEY_ROTATION_REQUESTED,
    OFFBOARD_UNIT,
    USER_OFFBOARDED,
    USER_REHIRED,
    USER_REQUESTED,
)
from shared.models.validation import validate

MAX_EVENT_BYTES = 256 * 1024
MAX_EVENTS_PER_DELIVERY = 100
MAX_GRANTS = 20
MAX_APPROVERS = 10


# CloudEvents: extension names are lower-case letters and digits. EventBridge's own run past the
# spec's recommended 20 characters (`aliyunoriginalaccountid`), so the bound here is looser.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,40}")
_MAX_EXTENSIONS = 32
_NO_SPACE_OR_CONTROL = re.compile(r"[^\x00-\x20\x7f]+")
_JSON_MEDIA_TYPE = re.compile(r"(application|text)/([a-z0-9.+-]*\+)?json\s*(;.*)?", re.IGNORECASE)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; `data` stays raw JSON until `parse_data` reads it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Annotated[str, Field(pattern=r"^1\.0$")]
    id: Annotated[str, Field(min_length=1, max_length=256)]
    source: Annotated[str, Field(min_length=1, max_length=512)]
    type: Annotated[str, Field(min_length=1, max_length=256)]
    time: AwareDatetime | None = None
    datacontenttype: Annotated[str, Field(max_length=128)] | None = None
    dataschema: Annotated[str, Field(max_length=512)] | None = None
    subject: Annotated[str, Field(max_length=512)] | None = None
    data: Any = None

    @field_validator("specversion", mode="before")
    @classmethod
    def _is_one_dot_zero(cls, value: object) -> object:
        if value != "1.0":
            raise ValueError("must be '1.0' (CloudEvents 1.0)")
        return value

    @field_validator("id", "type")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("source")
    @classmethod
    def _is_uri_reference(cls, value: str) -> str:
        if not _NO_SPACE_OR_CONTROL.fullmatch(value):
            raise ValueError("must be a URI-reference (no spaces or control characters)")
        return value

    @field_validator("datacontenttype")
    @classmethod
    def _is_json(cls, value: str | None) -> str | None:
        if value is not None and not _JSON_MEDIA_TYPE.fullmatch(value):
            raise ValueError("ramflow events carry JSON data (application/json)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _extensions_are_well_formed(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        if "data_base64" in raw:
            raise ValueError("binary data (data_base64) is not accepted; ramflow events carry JSON data")
        extensions = [name for name in raw if name not in cls.model_fields]
        if len(extensions) > _MAX_EXTENSIONS:
            raise ValueError(f"at most {_MAX_EXTENSIONS} extension attributes")
        for name in extensions:
            if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
                raise ValueError("extension attribute names are 1 to 40 lower-case letters and digits")
            value = raw[name]
            if not (value is None or isinstance(value, str | bool | int)) or (
                isinstance(value, str) and len(value) > 1024
            ):
                raise ValueError(
                    "extension attribute values are strings (at most 1024), integers or booleans"
                )
        return raw

    @property
    def idempotency_key(self) -> str:
        """`source` and `id` identify an event (CloudEvents §3.1). A source has no spaces, so
        the space separates the two unambiguously."""
        return f"{self.source} {self.id}"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of what the event asks for (`type`, `subject`, `datacontenttype`, `data`): tells a
        redelivery from a different event reusing a key. `source` and `id` are the key; `time` and
        extension attributes (EventBridge's `aliyunpublishtime`, …) change when a producer or the
        transport republishes the same event, so they are left out."""
        asked = self.model_dump(
            mode="json", include={"type", "subject", "datacontenttype", "data"}, exclude_none=True
        )
        canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class UserSpec(DataModel):
    """The RAM user to create (or to grant more to)."""

    logon_name: LogonName
    display_name: DisplayName | None = None
    email: Email | None = None
    owner: Email
    tags: UserTags = Field(default_factory=dict)


class UserRequested(DataModel):
    """`ramflow.user.requested`: a joiner, or more access for a managed user."""

    ticket_id: TicketId
    requester: Email
    user: UserSpec
    access_mode: OneAccessMode
    grants: Annotated[list[Grant], Field(min_length=1, max_length=MAX_GRANTS)]
    duration: PositiveDuration | None = None
    justification: FreeText | None = None
    delivery_public_key: DeliveryPublicKey

    @field_validator("grants")
    @classmethod
    def _no_duplicates(cls, grants: list[Any]) -> list[Any]:
        seen = [grant.model_dump(mode="json") for grant in grants]
        if any(entry in seen[:index] for index, entry in enumerate(seen)):
            raise ValueError("the same grant is listed twice")
        return grants


class AccessApproved(DataModel):
    """`ramflow.access.approved`: who approved a waiting ticket."""

    ticket_id: TicketId
    approvers: Annotated[list[Email], Field(min_length=1, max_length=MAX_APPROVERS)]
    break_glass: StrictBool = False

    @field_validator("approvers")
    @classmethod
    def _distinct(cls, approvers: list[str]) -> list[str]:
        if len(set(approvers)) != len(approvers):
            raise ValueError("each approver may be listed once")
        return approvers


class AccessRevoked(DataModel):
    """`ramflow.access.revoked`: remove what one ticket granted, and nothing else."""

    ticket_id: TicketId
    reason: FreeText


class UserOffboarded(DataModel):
    """`ramflow.user.offboarded`: disable at once, delete after `grace`, for an owner or one user."""

    owner: Email | None = None
    user_name: LogonName | None = None
    hr_event_id: HrEventId
    grace: IsoDuration = timedelta(0)

    @model_validator(mode="after")
    def _one_target(self) -> UserOffboarded:
        if (self.owner is None) == (self.user_name is None):
            raise ValueError("give exactly one of 'owner' or 'user_name'")
        return self


class UserRehired(DataModel):
    """`ramflow.user.rehired`: an owner recorded as a leaver works here again; requests and
    approvals for them are accepted again (nothing is restored: access is requested afresh)."""

    owner: Email
    hr_event_id: HrEventId


class KeyRotationRequested(DataModel):
    """`ramflow.key.rotation_requested`: rotate one managed user's AccessKey now, with an overlap.

    The new secret is sealed to `delivery_public_key`, or else to the key the current credential's
    secret was sealed to (recorded with it: its holder's)."""

    user_name: LogonName
    requested_by: Email
    reason: FreeText | None = None
    delivery_public_key: DeliveryPublicKey | None = None
    cause: Literal["requested", "age"] = Field(
        "requested",
        description="'age': reconcile found the key past its age (accepted from source ramflow.reconcile "
        "only, and never with a delivery_public_key)",
    )


class KeyRotationDue(DataModel):
    """`ramflow.key.rotation_due` (internal, from reconcile only): the user's key `old_key_id` is past
    its age. Deliberately no delivery key and no requester: key-rotation takes both from the ledger."""

    user_name: LogonName
    old_key_id: AccessKeyId


class OffboardUnit(DataModel):
    """`ramflow.offboard.unit`: one user's part of a job; the job record (not the event) says who may
    be offboarded, so a unit naming anyone else is refused."""

    job_id: JobId
    user_name: LogonName
    wave: Literal["close", "disable", "delete"]


EventData = (
    UserRequested
    | AccessApproved
    | AccessRevoked
    | UserOffboarded
    | UserRehired
    | KeyRotationRequested
    | KeyRotationDue
    | OffboardUnit
)

DATA_MODELS: dict[str, type[EventData]] = {
    USER_REQUESTED: UserRequested,
    ACCESS_APPROVED: AccessApproved,
    ACCESS_REVOKED: AccessRevoked,
    USER_OFFBOARDED: UserOffboarded,
    USER_REHIRED: UserRehired,
    KEY_ROTATION_REQUESTED: KeyRotationRequested,
    KEY_ROTATION_DUE: KeyRotationDue,
    OFFBOARD_UNIT: OffboardUnit,
}


def _reject(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "reason": reason}])


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Two `type` keys in one object must not let a reader pick the one it likes."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key in a JSON object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _check_size(size: int) -> None:
    if size > MAX_EVENT_BYTES:
        raise _reject("event", f"larger than {MAX_EVENT_BYTES} bytes")


def _load_json(raw: bytes | str) -> Any:
    _check_size(len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass")))
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise _reject("event", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _reject("event", f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise _reject("event", "JSON nested too deeply") from None
    except ValueError as exc:
        raise _reject("event", f"not valid JSON: {exc}") from None


def _check_parsed_size(document: Any) -> None:
    """Already-parsed input (a dict from a test or a local runtime) meets the same size bound."""
    try:
        _check_size(len(json.dumps(document, default=str).encode("utf-8", "surrogatepass")))
    except (RecursionError, ValueError, TypeError):
        raise _reject("event", "not representable as JSON") from None


def parse_events(raw: bytes | str | dict[str, Any] | list[Any]) -> list[CloudEvent]:
    """One event or a list of events (as EventBridge may deliver), validated envelope by envelope."""
    if isinstance(raw, bytes | str):
        document = _load_json(raw)
    else:
        _check_parsed_size(raw)
        document = raw
    if isinstance(document, dict):
        return [validate(CloudEvent, document)]
    if not isinstance(document, list):
        raise _reject("event", "must be a JSON object (one event) or a list of events")
    if not document:
        raise _reject("event", "the list holds no events")
    if len(document) > MAX_EVENTS_PER_DELIVERY:
        raise _reject("event", f"at most {MAX_EVENTS_PER_DELIVERY} events per delivery")
    events, errors = [], []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            errors.append({"field": f"[{index}]", "reason": "an event is a JSON object"})
            continue
        try:
            events.append(validate(CloudEvent, item, prefix=f"[{index}]"))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return events


def parse_data(event: CloudEvent) -> EventData:
    """The payload model for the event's `type`; unknown types are refused (deny by default)."""
    model = DATA_MODELS.get(event.type)
    if model is None:
        raise _reject("type", "not a ramflow event type: expected one of " + ", ".join(DATA_MODELS))
    if not isinstance(event.data, dict):
        raise _reject("data", "must be a JSON object" if event.data is not None else "required")
    return validate(model, event.data, prefix="data")
