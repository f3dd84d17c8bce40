"""Render catalog templates into RAM custom-policy documents with content-derived names.

The name is a hash of the canonical document, so the same template with the same parameters always
yields the same policy name: a replayed event or a second user reuses the policy instead of creating
a copy, and a changed template yields a new name instead of silently widening an old one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ValidationFailed
from shared.models.validation import join_path
from shared.policy.risk import is_high_risk

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaViolation

__all__ = [
    "MAX_DOCUMENT_CHARS",
    "PolicyDocument",
    "RenderedPolicy",
    "canonical_json",
    "content_name",
    "is_high_risk",
    "placeholders",
    "render",
]

MAX_DOCUMENT_CHARS = 6144  # RAM's limit for a custom policy document
PLACEHOLDER = re.compile(r"\$\{([a-z][a-z0-9_]{0,63})\}")
_POLICY_NAME = re.compile(r"[A-Za-z0-9-]{1,128}")
# Whatever the catalog's schema says, a substituted value can never carry a wildcard, a quote or a
# path separator: it names one instance, topic or group.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class PolicyStatement(BaseModel):
    """One statement of a template: only the elements a reviewer expects to see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Effect: Literal["Allow", "Deny"]
    Action: str | list[str] = Field(min_length=1)
    Resource: str | list[str] = Field(min_length=1)
    Condition: dict[str, dict[str, Any]] | None = None


class PolicyDocument(BaseModel):
    """The RAM policy language, version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: Literal["1"]
    Statement: list[PolicyStatement] = Field(min_length=1)


class TemplateSource(Protocol):
    """What rendering needs from a catalog template entry."""

    @property
    def params_schema(self) -> dict[str, Any]: ...

    @property
    def document(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RenderedPolicy:
    name: str
    document: dict[str, Any]
    canonical: str


def canonical_json(document: Any) -> str:
    """Sorted keys, no spaces: the form that is hashed, measured and sent to RAM."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_name(template_name: str, canonical: str) -> str:
    """`ramflow-<template>-<12 hex of sha256>`: equal content, equal name."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
    name = f"ramflow-{template_name}-{digest}"
    if not _POLICY_NAME.fullmatch(name):
        raise ValueError("template names must make RAM policy names of 1 to 128 of A-Z a-z 0-9 -")
    return name


def placeholders(document: Any) -> set[str]:
    """Every `${name}` in the document's strings."""
    if isinstance(document, str):
        return set(PLACEHOLDER.findall(document))
    if isinstance(document, dict):
        return set().union(*(placeholders(value) for value in document.values()), set())
    if isinstance(document, list):
        return set().union(*(placeholders(value) for value in document), set())
    return set()


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], node)
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, values) for value in node]
    return copy.deepcopy(node)


def _schema_reasons(violation: SchemaViolation, params: Mapping[str, Any]) -> list[dict[str, str]]:
    """Reasons built from the reviewed schema, never from the (untrusted) parameter values."""
    where = join_path("params", list(violation.path))
    # A violation raised by a validator always names its rule, the rule's value and its schema.
    rule, expected = str(violation.validator), violation.validator_value
    if rule == "required":
        return [
            {"field": join_path("params", [name]), "reason": "required"}
            for name in (expected if isinstance(expected, list) else [])
            if name not in params
        ]
    if rule == "additionalProperties":
        known = violation.schema.get("properties", {}) if isinstance(violation.schema, Mapping) else {}
        return [
            {"field": join_path("params", [name]), "reason": "not a parameter of this template"}
            for name in params
            if name not in known
        ]
    reasons = {
        "type": f"must be of type {expected}",
        "pattern": f"must match {expected}",
        "enum": f"must be one of {expected}",
        "const": f"must be {expected!r}",
        "minLength": f"must be at least {expected} characters",
        "maxLength": f"must be at most {expected} characters",
    }
    return [{"field": where, "reason": reasons.get(rule, f"violates the template's '{rule}' rule")}]


def _validated_values(template: TemplateSource, params: Mapping[str, Any]) -> dict[str, str]:
    from jsonschema import Draft202012Validator  # loaded where parameters are checked, not at cold start

    validator = Draft202012Validator(template.params_schema)
    errors = [
        reason
        for violation in validator.iter_errors(dict(params))
        for reason in _schema_reasons(violation, params)
    ]
    if errors:
        raise ValidationFailed(errors)
    values: dict[str, str] = {}
    for name in placeholders(template.document):
        value = params.get(name)
        if not isinstance(value, str) or not _SAFE_VALUE.fullmatch(value):
            errors.append({"field": f"params.{name}", "reason": "must be 1 to 128 of A-Z a-z 0-9 . _ -"})
        else:
            values[name] = value
    if errors:
        raise ValidationFailed(errors)
    return values


def render(template_name: str, template: TemplateSource, params: Mapping[str, Any]) -> RenderedPolicy:
    """The policy a template grants with these parameters; ValidationFailed names `params.*` fields."""
    document = _substitute(template.document, _validated_values(template, params))
    canonical = canonical_json(document)
    if len(canonical) > MAX_DOCUMENT_CHARS:
        raise ValidationFailed(
            [
                {
                    "field": "params",
                    "reason": f"the rendered policy exceeds RAM's {MAX_DOCUMENT_CHARS} characters",
                }
            ]
        )
    return RenderedPolicy(name=content_name(template_name, canonical), document=document, canonical=canonical)
