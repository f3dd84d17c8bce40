"""The alert rules for what the roles' policies cannot refuse: rendered, complete, well-formed."""

from __future__ import annotations

import json
import re

import pytest

from local import alerts, roles


def test_the_committed_alert_rules_are_their_rendering() -> None:
    stale = [p.name for p, text in alerts.documents().items() if not p.is_file() or p.read_text() != text]
    assert stale == [], f"stale: {stale}: run `.venv/bin/python -m local.alerts --write`"
    assert {p.name for p in alerts.ALERTS_DIR.glob("*.json")} == {p.name for p in alerts.documents()}


def _allowed_to_provisioning() -> set[str]:
    document = roles.role_policy("access-approved")
    actions = set()
    for statement in document["Statement"]:
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    return {a.split(":", 1)[1] for a in actions}


@pytest.mark.parametrize(
    "event",
    ["CreatePolicy", "CreatePolicyVersion", "AttachPolicyToUser", "AttachPolicy", "CreateUser",
     "CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile"],
)  # fmt: skip
def test_each_sensitive_call_has_a_rule(event: str) -> None:
    """What a provisioning role may do and only the code or a person can judge fires an alert."""
    assert any(re.search(rf"event\.eventName: {event}\b", rule.query) for rule in alerts.RULES), event


def test_the_sensitive_calls_are_those_the_provisioning_role_holds() -> None:
    sensitive = {"CreatePolicy", "AttachPolicyToUser", "AttachPolicy", "CreateUser", "CreateAccessKey"}
    assert sensitive <= _allowed_to_provisioning(), "the alerts watch what the role can really do"


@pytest.mark.parametrize("rule", alerts.RULES, ids=lambda r: r.name)
def test_each_rule_is_a_complete_alert_definition(rule: alerts.Rule) -> None:
    detail = json.loads((alerts.ALERTS_DIR / f"{rule.name}.json").read_text())
    configuration = detail["configuration"]
    assert detail["name"] == rule.name and detail["schedule"]["type"] == "FixedRate"
    assert configuration["version"] == "2.0"
    assert configuration["queryList"][0]["store"] == alerts.ACTIONTRAIL_STORE
    assert configuration["severityConfigurations"][0]["evalCondition"]["countCondition"] == "__count__ > 0"
    if rule.audit_join:
        assert configuration["joinConfigurations"] == [
            {"type": "left_exclude", "condition": "$0.user_name == $1.user_name"}
        ]
        assert configuration["queryList"][1]["store"] == alerts.AUDIT_STORE
