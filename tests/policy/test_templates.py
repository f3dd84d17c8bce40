"""Rendering: parameters checked, names derived from content, RAM's size limit enforced."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.config import DEFAULT_CATALOG
from shared.errors import ValidationFailed
from shared.policy import Catalog
from shared.policy.templates import MAX_DOCUMENT_CHARS, canonical_json, content_name, placeholders, render

CATALOG = Catalog.load(DEFAULT_CATALOG)
OPERATOR = CATALOG.template("kafka-instance-operator")
INSTANCE = "alikafka_post-cn-7mz2"


@dataclass
class LaxTemplate:
    """A template whose schema accepts any string: the renderer must still refuse unsafe values."""

    document: dict[str, Any]
    params_schema: dict[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "additionalProperties": False,
            "required": ["instance_id"],
            "properties": {"instance_id": {"type": "string"}},
        }
    )


def refused(template, params, name="kafka-instance-operator") -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        render(name, template, params)
    return caught.value.errors


class TestRender:
    def test_substitutes_the_instance(self):
        rendered = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE})
        [statement] = rendered.document["Statement"]
        assert statement["Resource"] == [f"acs:alikafka:*:*:{INSTANCE}", f"acs:alikafka:*:*:{INSTANCE}/*"]
        assert "alikafka:CreateTopic" in statement["Action"]
        assert rendered.document["Version"] == "1"

    def test_canonical_form(self):
        rendered = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE})
        assert rendered.canonical == json.dumps(rendered.document, sort_keys=True, separators=(",", ":"))
        assert " " not in rendered.canonical

    def test_the_template_is_not_modified(self):
        before = json.dumps(OPERATOR.document, sort_keys=True)
        render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE})
        assert json.dumps(OPERATOR.document, sort_keys=True) == before
        assert "${instance_id}" in before


class TestNames:
    def test_same_content_same_name(self):
        first = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE})
        second = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE})
        assert first.name == second.name

    def test_name_shape(self):
        name = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE}).name
        assert re.fullmatch(r"ramflow-kafka-instance-operator-[0-9a-f]{12}", name)
        assert re.fullmatch(r"[A-Za-z0-9-]{1,128}", name)

    def test_different_instance_different_name(self):
        one = render("kafka-instance-operator", OPERATOR, {"instance_id": INSTANCE}).name
        two = render("kafka-instance-operator", OPERATOR, {"instance_id": "alikafka_pre-cn-4xl3"}).name
        assert one != two

    def test_changed_document_changes_the_name(self):
        narrower = LaxTemplate(
            document={**OPERATOR.document, "Statement": OPERATOR.document["Statement"][:1]}
        )
        wider = LaxTemplate(
            document={
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "alikafka:*", "Resource": "acs:alikafka:*:*:${instance_id}"}
                ],
            }
        )
        assert (
            render("t", narrower, {"instance_id": INSTANCE}).name
            != render("t", wider, {"instance_id": INSTANCE}).name
        )

    def test_key_order_does_not_change_the_name(self):
        document: dict[str, Any] = {
            "Statement": [
                {
                    "Resource": "acs:alikafka:*:*:${instance_id}",
                    "Action": "alikafka:ListTopic",
                    "Effect": "Allow",
                }
            ],
            "Version": "1",
        }
        reordered = {"Version": "1", "Statement": [dict(reversed(list(document["Statement"][0].items())))]}
        params = {"instance_id": INSTANCE}
        assert (
            render("t", LaxTemplate(document), params).name
            == render("t", LaxTemplate(reordered), params).name
        )

    def test_content_name_is_the_hash_of_the_canonical_text(self):
        assert content_name("t", "{}") == "ramflow-t-44136fa355b3"

    def test_template_names_that_make_bad_policy_names(self):
        with pytest.raises(ValueError):
            content_name("x" * 120, "{}")


class TestParameters:
    @pytest.mark.parametrize(
        "instance",
        ["alikafka_post-cn-7mz2*", "*", "alikafka_post-cn-7mz2/topic/*", "ALIKAFKA_POST-CN-1", "cn-7mz2", ""],
    )
    def test_schema_pattern(self, instance):
        errors = refused(OPERATOR, {"instance_id": instance})
        assert errors == [
            {"field": "params.instance_id", "reason": "must match ^alikafka_[a-z]+-[a-z0-9-]+$"}
        ]

    def test_missing_parameter(self):
        assert refused(OPERATOR, {}) == [{"field": "params.instance_id", "reason": "required"}]

    def test_unknown_parameter(self):
        errors = refused(OPERATOR, {"instance_id": INSTANCE, "topic": "orders"})
        assert errors == [{"field": "params.topic", "reason": "not a parameter of this template"}]

    def test_wrong_type(self):
        assert refused(OPERATOR, {"instance_id": 7}) == [
            {"field": "params.instance_id", "reason": "must be of type string"}
        ]

    def test_too_long(self):
        errors = refused(OPERATOR, {"instance_id": "alikafka_post-" + "a" * 60})
        assert {"field": "params.instance_id", "reason": "must be at most 64 characters"} in errors

    @pytest.mark.parametrize(
        "value", ["*", "a/b", 'x"]}', "acs:ram::*", "${instance_id}", "é", "a" * 129, " x"]
    )
    def test_unsafe_values_are_refused_even_under_a_lax_schema(self, value):
        template = LaxTemplate(document=OPERATOR.document)
        assert refused(template, {"instance_id": value}) == [
            {"field": "params.instance_id", "reason": "must be 1 to 128 of A-Z a-z 0-9 . _ -"}
        ]

    def test_reasons_never_echo_the_value(self):
        secret = "alikafka_post-cn-SECRETVALUE*"
        assert "SECRETVALUE" not in json.dumps(refused(OPERATOR, {"instance_id": secret}))


class TestSize:
    def test_rendered_documents_over_the_ram_limit_are_refused(self):
        actions = [f"alikafka:Action{index:04d}" for index in range(400)]
        template = LaxTemplate(
            document={
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "${instance_id}"}],
            }
        )
        assert len(canonical_json(template.document)) > MAX_DOCUMENT_CHARS
        assert refused(template, {"instance_id": INSTANCE}) == [
            {
                "field": "params",
                "reason": f"the rendered policy exceeds RAM's {MAX_DOCUMENT_CHARS} characters",
            }
        ]

    def test_a_document_at_the_limit_is_accepted(self):
        base: dict[str, Any] = {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "", "Resource": "${instance_id}"}],
        }
        padding = MAX_DOCUMENT_CHARS - len(canonical_json(base)) - (len(INSTANCE) - len("${instance_id}"))
        base["Statement"][0]["Action"] = "a" * padding
        rendered = render("t", LaxTemplate(base), {"instance_id": INSTANCE})
        assert len(rendered.canonical) == MAX_DOCUMENT_CHARS


def test_placeholders():
    assert placeholders(OPERATOR.document) == {"instance_id"}
    assert placeholders({"a": ["${x}", {"b": "${y_1}-${x}"}], "c": 1, "d": "$x {z}"}) == {"x", "y_1"}
