"""Entitlements: which app may have which role, for how long, narrowed by which session policy."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.dev import DEV_ENTITLEMENTS
from shared.entitlements import Entitlements
from shared.errors import BadRequest, ConfigError, NotEntitled


@pytest.fixture
def raw(jwks: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load(DEV_ENTITLEMENTS.read_text())
    data.pop("jwks_file")
    data["jwks"] = jwks
    return data


@pytest.fixture
def ents(raw: dict[str, Any]) -> Entitlements:
    return Entitlements.from_dict(raw)


def test_dev_file_loads_and_renders_the_kafka_template() -> None:
    ents = Entitlements.load(DEV_ENTITLEMENTS)
    reader = ents.roles["kafka-reader"]
    assert reader.role_arn == "acs:ram::5123456789012345:role/ramflow-kafka-reader"
    assert reader.session_policy == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["alikafka:ListInstance", "alikafka:ListTopic", "alikafka:ListGroup"],
                "Resource": ["acs:alikafka:*:*:alikafka_post-cn-7mz2"],
            }
        ],
    }
    assert ents.jwks["keys"][0]["kid"] == "ramflow-dev-1"  # jwks_file is read relative to the file
    assert ents.apps["demo-app"] == ("kafka-reader",)


def test_only_app_role_is_the_default(ents: Entitlements) -> None:
    assert ents.grant_for("demo-app", None).alias == "kafka-reader"
    assert ents.grant_for("demo-app", "kafka-reader").alias == "kafka-reader"


def test_an_app_with_several_roles_must_choose(ents: Entitlements) -> None:
    with pytest.raises(BadRequest, match="'role' is required"):
        ents.grant_for("ops-app", None)
    assert ents.grant_for("ops-app", "kafka-operator").external_id == "ramflow-dev-ops"


@pytest.mark.parametrize(
    ("app", "alias"), [("demo-app", "kafka-operator"), ("demo-app", "nope"), ("nobody", None)]
)
def test_not_entitled(ents: Entitlements, app: str, alias: str | None) -> None:
    with pytest.raises(NotEntitled):
        ents.grant_for(app, alias)


def test_refusal_does_not_echo_odd_input(ents: Entitlements) -> None:
    with pytest.raises(NotEntitled) as caught:
        ents.grant_for("demo-app", "x\n<script>" + "y" * 200)
    assert (
        "\n" not in str(caught.value) and "<" not in str(caught.value) and "y" * 70 not in str(caught.value)
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, 3600), ("", 3600), (900, 900), ("900", 900), (3600, 3600), ("1800", 1800)],
)
def test_duration_accepted(ents: Entitlements, requested: Any, expected: int) -> None:
    assert ents.duration_for(ents.roles["kafka-reader"], requested) == expected


@pytest.mark.parametrize(
    "requested",
    [899, 3601, "0", "-900", "1e3", "900.0", " 900", True, 900.0, "9" * 30, "²", "\u0663\u0666\u0660\u0660"],
)
def test_duration_refused(ents: Entitlements, requested: Any) -> None:
    with pytest.raises(BadRequest, match="duration"):
        ents.duration_for(ents.roles["kafka-reader"], requested)


def test_default_duration_is_capped_by_the_alias_maximum(raw: dict[str, Any]) -> None:
    raw["roles"]["kafka-reader"]["max_duration"] = 1800
    ents = Entitlements.from_dict(raw)
    assert ents.duration_for(ents.roles["kafka-reader"], None) == 1800
    assert ents.duration_for(ents.roles["kafka-operator"], None) == 3600


def _broken(raw: dict[str, Any], change: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    if change == "unknown alias":
        raw["apps"]["demo-app"]["roles"] = ["kafka-admin"]
    elif change == "two jwks":
        raw["jwks_file"] = "jwks.json"
    elif change == "bad arn":
        raw["roles"]["kafka-reader"]["role_arn"] = "acs:ram::*:role/x"
    elif change == "duration too long":
        raw["roles"]["kafka-reader"]["max_duration"] = 50000
    elif change == "unknown template":
        raw["roles"]["kafka-reader"]["session_policy"] = {"template": "no-such", "params": {}}
    elif change == "bad params":
        raw["roles"]["kafka-reader"]["session_policy"]["params"] = {"instance_id": "*"}
    elif change == "template and document":
        raw["roles"]["kafka-reader"]["session_policy"]["document"] = {"Version": "1"}
    elif change == "policy too long":
        big = [f"alikafka:Action{i:04d}" for i in range(120)]
        doc = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": big, "Resource": "*"}]}
        raw["roles"]["kafka-reader"]["session_policy"] = {"document": doc}
    elif change == "unknown field":
        raw["roles"]["kafka-reader"]["maxDuration"] = 3600
    return raw


@pytest.mark.parametrize(
    "change",
    [
        "unknown alias",
        "two jwks",
        "bad arn",
        "duration too long",
        "unknown template",
        "bad params",
        "template and document",
        "policy too long",
        "unknown field",
    ],
)
def test_config_errors_stop_the_function(raw: dict[str, Any], change: str) -> None:
    with pytest.raises(ConfigError):
        Entitlements.from_dict(_broken(raw, change))


def test_inline_session_policy_document(raw: dict[str, Any]) -> None:
    doc = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "alikafka:ListTopic", "Resource": "*"}],
    }
    raw["roles"]["kafka-reader"]["session_policy"] = {"document": doc}
    grant = Entitlements.from_dict(raw).roles["kafka-reader"]
    assert grant.session_policy == doc
    assert grant.policy_canonical == json.dumps(doc, sort_keys=True, separators=(",", ":"))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Entitlements.load(tmp_path / "missing.yaml")
    (tmp_path / "e.yaml").write_text(DEV_ENTITLEMENTS.read_text())  # jwks.json is not beside it
    with pytest.raises(ConfigError, match="jwks_file"):
        Entitlements.load(tmp_path / "e.yaml")
