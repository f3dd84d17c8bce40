"""The reviewed policy catalog: the only grants ramflow will ever make (deny by default).

The YAML file is loaded strictly: an unknown field, a duplicate key, an unsafe combination (a
high-risk entry that could be auto-approved, a template whose example renders a high-risk document
it does not declare) stops the function with ConfigError instead of running with a lax catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from shared.durations import PositiveDuration
from shared.errors import ConfigError, ValidationFailed
from shared.models.fields import PolicyName, PolicyType, TemplateName
from shared.models.validation import field_errors
from shared.policy.risk import KNOWN_HIGH_RISK_POLICIES, is_high_risk
from shared.policy.templates import PolicyDocument, placeholders, render

Scope = Literal["account", "resource_group"]
MAX_HIGH_RISK_DURATION_HOURS = 24
MAX_KEY_ROTATION_DAYS = 90
"""Cloud Config's ram-user-ak-create-date-expired-check default and the CIS benchmark's rotation period:
a catalog entry may ask for rotation more often, never less."""


class Entitlement(BaseModel):
    """The rules for granting one catalog entry: who must approve, for how long, at which scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Annotated[str, Field(min_length=1, max_length=512)]
    approvers: Annotated[StrictInt, Field(ge=0, le=5)]
    auto_approve: StrictBool
    high_risk: StrictBool = False
    max_duration: PositiveDuration
    scopes: Annotated[list[Scope], Field(min_length=1)]
    key_rotation_days: Annotated[StrictInt, Field(ge=1, le=MAX_KEY_ROTATION_DAYS)] | None = Field(
        None,
        description="programmatic users holding this grant get their AccessKey rotated automatically once "
        "it is this many days old, whatever RAMFLOW_KEY_ROTATION says",
    )

    @model_validator(mode="after")
    def _rules_are_consistent(self) -> Entitlement:
        if len(set(self.scopes)) != len(self.scopes):
            raise ValueError("scopes are listed once each")
        if self.auto_approve != (self.approvers == 0):
            raise ValueError("auto_approve: true goes with approvers: 0, and only with it")
        if self.high_risk:
            if self.auto_approve or self.approvers < 2:
                raise ValueError("high-risk entries need at least 2 approvers and no auto-approval")
            if self.max_duration.total_seconds() > MAX_HIGH_RISK_DURATION_HOURS * 3600:
                raise ValueError(f"high-risk entries last at most {MAX_HIGH_RISK_DURATION_HOURS} hours")
        return self


class PolicyEntry(Entitlement):
    """An existing policy (usually a System policy) that may be attached by name."""

    type: PolicyType = "System"


class TemplateEntry(Entitlement):
    """A custom-policy template; `example` is rendered at load time to prove the template works."""

    params_schema: dict[str, Any]
    document: dict[str, Any]
    example: dict[str, Any]

    @model_validator(mode="after")
    def _template_is_sound(self) -> TemplateEntry:
        try:
            PolicyDocument.model_validate(self.document)
        except ValidationError as exc:
            problems = "; ".join(f"{e['field']}: {e['reason']}" for e in field_errors(exc, prefix="document"))
            raise ValueError(problems) from None
        from jsonschema import Draft202012Validator  # loaded with the catalog, not at cold start
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(self.params_schema)
        except SchemaError as exc:
            raise ValueError(f"params_schema is not a valid JSON schema: {exc.message[:120]}") from None
        if (
            self.params_schema.get("type") != "object"
            or self.params_schema.get("additionalProperties") is not False
        ):
            raise ValueError("params_schema must be an object schema with additionalProperties: false")
        unrequired = placeholders(self.document) - set(self.params_schema.get("required", []))
        if unrequired:
            raise ValueError(f"placeholders not required by params_schema: {sorted(unrequired)}")
        try:
            rendered = render("example", self, self.example)
        except ValidationFailed as exc:
            raise ValueError(f"example does not render: {exc}") from None
        if is_high_risk(rendered.document) and not self.high_risk:
            raise ValueError(
                "the document is high-risk (*, ram:*, or sts:AssumeRole on *): mark it high_risk"
            )
        return self


class Catalog(BaseModel):
    """Every grant ramflow may make, keyed by policy name or template name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[StrictInt, Field(ge=1)]
    policies: dict[PolicyName, PolicyEntry]
    templates: dict[TemplateName, TemplateEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_high_risk_policies_are_marked(self) -> Catalog:
        unmarked = sorted(
            name
            for name in KNOWN_HIGH_RISK_POLICIES & self.policies.keys()
            if not self.policies[name].high_risk
        )
        if unmarked:
            raise ValueError(f"these policies are high-risk by definition and must say so: {unmarked}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        """Read and validate the catalog file; anything wrong → ConfigError naming what and where."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"policy catalog {path}: cannot be read ({exc.strerror})") from None
        return cls.from_yaml(text, origin=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, origin: str = "<text>") -> Catalog:
        try:
            data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(f"policy catalog {origin}: not valid YAML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{e['field']}: {e['reason']}" for e in field_errors(exc))
            raise ConfigError(f"policy catalog {origin}: {problems}") from None

    def policy(self, name: str) -> PolicyEntry | None:
        return self.policies.get(name)

    def template(self, name: str) -> TemplateEntry | None:
        return self.templates.get(name)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: a second entry must not silently replace a reviewed one."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
