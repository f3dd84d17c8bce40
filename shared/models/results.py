"""The one reply shape every function returns, for events and HTTP alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from shared.errors import ValidationFailed
from shared.sealing import looks_sealed

Status = Literal[
    "completed", "pending_approval", "pending_request", "rejected", "in_progress", "partial", "failed"
]


class FieldError(BaseModel):
    """One reason for refusing input, with the JSON path of the field it concerns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    reason: str


def _must_be_sealed(value: str) -> str:
    if not looks_sealed(value):
        raise ValueError("must be a sealed-box ciphertext (base64); plain secrets never leave a function")
    return value


SealedText = Annotated[str, AfterValidator(_must_be_sealed)]


class AccessKeyReply(BaseModel):
    """A new AccessKey in a reply: the id in clear, the secret sealed to the requester."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["access_key"] = "access_key"
    access_key_id: Annotated[str, Field(min_length=1, max_length=128)]
    sealed_secret: SealedText


class LoginProfileReply(BaseModel):
    """A console login in a reply: the principal in clear, the first password sealed; both resets are forced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["login_profile"] = "login_profile"
    logon_principal: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9.-]+\.onaliyun\.com$")]
    sealed_password: SealedText
    password_reset_required: Literal[True] = True
    mfa_bind_required: Literal[True] = True


Credential = Annotated[AccessKeyReply | LoginProfileReply, Field(discriminator="kind")]


def _plan_as_json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


class Result(BaseModel):
    """What a function did with one event or request; `to_json()` is the reply body."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    ticket_id: str | None = None
    user_name: str | None = None
    event_id: str | None = None
    actions: Sequence[str | dict[str, Any]] = Field(default_factory=list)
    plan: Annotated[dict[str, Any] | None, BeforeValidator(_plan_as_json)] = None
    errors: list[FieldError] = Field(default_factory=list)
    needs_human: Sequence[str | dict[str, Any]] = Field(default_factory=list)
    credential: Credential | None = None

    @classmethod
    def rejected(
        cls,
        errors: list[dict[str, str]] | ValidationFailed,
        *,
        ticket_id: str | None = None,
        user_name: str | None = None,
        event_id: str | None = None,
    ) -> Result:
        """Bad input: nothing was done, and `errors` says which field is wrong and why."""
        if isinstance(errors, ValidationFailed):
            errors = errors.errors
        return cls(
            status="rejected",
            errors=[FieldError.model_validate(error) for error in errors],
            ticket_id=ticket_id,
            user_name=user_name,
            event_id=event_id,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
