"""What a request may ask for: a catalog policy, or a catalog template with parameters."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag

from shared.models.fields import ParamName, PolicyName, PolicyType, ResourceGroupId, TemplateName

MAX_PARAMS = 20


def _param_value(value: Any) -> str | int | bool:
    """One reason for a bad parameter, instead of one per branch of a union."""
    if isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 256):
        return value
    raise ValueError("must be a string (at most 256 characters), an integer or a boolean")


ParamValue = Annotated[str | int | bool, PlainValidator(_param_value)]


class DataModel(BaseModel):
    """Base of every event payload: unknown fields are errors, parsed values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyGrant(DataModel):
    """An existing policy, by name, at account scope or within one resource group."""

    kind: ClassVar[str] = "policy"
    policy: PolicyName
    type: PolicyType
    resource_group: ResourceGroupId | None = None


class TemplateGrant(DataModel):
    """A custom policy rendered from a catalog template; its name is derived from its content."""

    kind: ClassVar[str] = "template"
    template: TemplateName
    params: Annotated[dict[ParamName, ParamValue], Field(max_length=MAX_PARAMS)] = Field(default_factory=dict)
    resource_group: ResourceGroupId | None = None


def _grant_kind(value: Any) -> str | None:
    if isinstance(value, PolicyGrant | TemplateGrant):
        return f"<{value.kind}>"
    if isinstance(value, dict) and (("policy" in value) != ("template" in value)):
        return "<policy>" if "policy" in value else "<template>"
    return None  # neither or both: pydantic reports the custom error below


Grant = Annotated[
    Annotated[PolicyGrant, Tag("<policy>")] | Annotated[TemplateGrant, Tag("<template>")],
    Discriminator(
        _grant_kind,
        custom_error_type="grant_kind",
        custom_error_message="a grant is an object naming exactly one of 'policy' or 'template'",
    ),
]
