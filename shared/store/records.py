"""The ledger's records: what ramflow did, for whom, on which ticket — enough to undo it.

Times are timezone-aware and normalised to UTC. Secrets appear only as sealed ciphertext, in
fields named `sealed_*`: the credential models admit nothing else, and the backends refuse
any other secret-sounding string field (see shared/store/base.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("must be timezone-aware")
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
AccessMode = Literal["console", "programmatic"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def grant_id(
    ticket_id: str, user_name: str, policy_type: str, policy_name: str, resource_group_id: str | None = None
) -> str:
    """The same grant of the same ticket always gets the same id, so replays find what they did."""
    return f"{ticket_id}/{user_name}/{policy_type}/{policy_name}@{resource_group_id or 'account'}"


class GrantRecord(_Record):
    grant_id: str
    ticket_id: str
    user_name: str
    policy_name: str
    policy_type: Literal["System", "Custom"]
    scope: Literal["account", "resource_group"]
    resource_group_id: str | None = None
    created_by_ramflow: bool = False
    expires_at: UtcDatetime | None = None
    status: Literal["planned", "active", "revoked"] = "planned"

    @model_validator(mode="after")
    def _group_matches_scope(self) -> GrantRecord:
        if (self.scope == "resource_group") != (self.resource_group_id is not None):
            raise ValueError("resource_group_id is set exactly when scope is resource_group")
        return self

    @classmethod
    def plan(
        cls,
        *,
        ticket_id: str,
        user_name: str,
        policy_name: str,
        policy_type: Literal["System", "Custom"],
        resource_group_id: str | None = None,
        created_by_ramflow: bool = False,
        expires_at: datetime | None = None,
    ) -> GrantRecord:
        """A planned grant with its deterministic id and the scope its resource group implies."""
        return cls(
            grant_id=grant_id(ticket_id, user_name, policy_type, policy_name, resource_group_id),
            ticket_id=ticket_id,
            user_name=user_name,
            policy_name=policy_name,
            policy_type=policy_type,
            scope="resource_group" if resource_group_id else "account",
            resource_group_id=resource_group_id,
            created_by_ramflow=created_by_ramflow,
            expires_at=expires_at,
        )


class TicketRecord(_Record):
    ticket_id: str
    status: Literal["pending_approval", "approved", "completed", "rejected", "revoked"] = "pending_approval"
    requester: str
    user_name: str
    owner: str
    access_mode: AccessMode
    request: dict[str, Any] = Field(description="the validated request, as JSON")
    approvers: list[str] = Field(default_factory=list)
    approved_at: UtcDatetime | None = Field(
        None, description="when the approval was recorded (access reviews)"
    )
    break_glass: bool = False
    grants: list[GrantRecord] = Field(default_factory=list)
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    expires_at: UtcDatetime | None = None


class AccessKeyRecord(_Record):
    """The stored AccessKey: its id and the sealed secret, kept until the ticket's reply delivers it,
    and who holds it: the public key its secret was sealed to and the holder of the private key. A
    rotation seals the next secret to the same holder and carries both forward."""

    kind: Literal["access_key"] = "access_key"
    access_key_id: str
    sealed_secret: str
    ticket_id: str | None = Field(None, description="the ticket whose reply delivers it (None: a rotation)")
    delivery_public_key: str | None = Field(None, description="the X25519 public key the secret is sealed to")
    recipient: str | None = Field(None, description="who holds that key's private half")


class LoginProfileRecord(_Record):
    """The stored console login: the sealed first password, kept until the ticket's reply delivers it."""

    kind: Literal["login_profile"] = "login_profile"
    sealed_password: str
    ticket_id: str | None = Field(None, description="the ticket whose reply delivers it")


CredentialRecord = Annotated[AccessKeyRecord | LoginProfileRecord, Field(discriminator="kind")]


class UserRecord(_Record):
    user_name: str
    owner: str
    access_mode: AccessMode
    tickets: list[str] = Field(default_factory=list)
    status: Literal["active", "disabled", "deleted"] = "active"
    delete_after: UtcDatetime | None = None
    credential: CredentialRecord | None = None
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)


class Intent(_Record):
    """Written before a cloud call that is not idempotent (CreateAccessKey, CreateLoginProfile).

    On replay, a `started` intent means the call may have happened: any AccessKey not in
    `known_key_ids` and not recorded was created by it, its secret is lost, and it must go.
    """

    key: str = Field(description="what the call creates, e.g. access_key/<user> or password/<user>")
    ticket_id: str
    state: Literal["started", "done"] = "started"
    known_key_ids: list[str] = Field(default_factory=list)
    result: dict[str, Any] | None = Field(None, description="the call's outcome, ciphertext only")
    created_at: UtcDatetime = Field(default_factory=utc_now)


class ScheduledDeletion(_Record):
    user_name: str
    due_at: UtcDatetime


class LeaverRecord(_Record):
    """An owner who has left: a fact, not an event. Requests and approvals for them are refused
    until a `user.rehired` event removes the record."""

    owner: str
    left_at: UtcDatetime
    hr_event_id: str
    source: str = ""


class EarlyApproval(_Record):
    """An `access.approved` that arrived before its ticket's request: kept, and applied (with every
    check an approval gets) when the request arrives."""

    ticket_id: str
    approval: dict[str, Any] = Field(description="the validated approval, as JSON")
    received_at: UtcDatetime = Field(default_factory=utc_now)
    source: str = ""


class EarlyRevocation(_Record):
    """An `access.revoked` that arrived before its ticket's request (the request was parked and
    replayed after it): kept for good, so the request, when it comes, records its ticket revoked
    and no approval carries it out."""

    ticket_id: str
    revocation: dict[str, Any] = Field(description="the validated revocation, as JSON")
    received_at: UtcDatetime = Field(default_factory=utc_now)
    source: str = ""


RotationState = Literal["creating", "delivered", "deactivated", "held", "completed", "cancelled"]


class RotationRecord(_Record):
    """One AccessKey rotation of one user (`rotation/<user>`), advanced step by step (shared/flows/keys.py).

    `creating`: the intent to create the new key is written (`known_key_ids` are the keys that
    existed before CreateAccessKey); `delivered`: the new key exists, its secret sealed to the owner;
    `deactivated`: the old key is Inactive; `completed`: the old key is deleted; `held`: the old key
    was still in use, or something needs a person, and nothing more happens without one;
    `cancelled`: the user was disabled or its owner left, so no key may be made for it (closed for good).
    """

    user_name: str
    old_key_id: str
    new_key_id: str | None = None
    state: RotationState = "creating"
    reason: Literal["age", "requested"] = "age"
    requested_by: str = "reconcile"
    known_key_ids: list[str] = Field(default_factory=list)
    delivery_public_key: str = Field(description="the owner's X25519 public key the secret is sealed to")
    recipient: str | None = Field(
        None, description="who holds the private key (credential-pickup hands the secret to them only)"
    )
    sealed_secret: str | None = Field(None, description="the new key's secret, sealed to the owner")
    delivered_at: UtcDatetime | None = None
    deactivate_after: UtcDatetime | None = None
    deactivated_at: UtcDatetime | None = None
    delete_after: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    hold_reason: str | None = None
    held_at: RotationState | None = Field(None, description="the step a held rotation stopped at")
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)

    @property
    def open(self) -> bool:
        """Still under way (or held): the old key is the rotation's to deal with, not drift."""
        return self.state not in ("completed", "cancelled")


class KeyFindingsRecord(_Record):
    """The AccessKey rules' outcome for one user at the last reconcile pass (`key-findings/<user>`),
    so that `ramflow users` and the access review show them without calling the cloud."""

    user_name: str
    evaluated_at: UtcDatetime
    findings: list[dict[str, str]] = Field(default_factory=list, description="rule, access_key_id, detail")
    rotation_state: str | None = None
    hold_reason: str | None = None
