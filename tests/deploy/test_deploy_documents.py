"""The role's other documents: trusted by Function Compute only; the platform policy holds just what
FC itself does with the role (ship logs, park failed events) on exactly s.yaml's log store and queue."""

from __future__ import annotations

from pathlib import Path

import yaml

from local.emulator.ram.models import parse_policy_document

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
S_YAML = DEPLOY.parent / "s.yaml"


def test_only_function_compute_may_assume_the_role() -> None:
    text = (DEPLOY / "ramflow-functions-trust.json").read_text()
    document = parse_policy_document(text, param="AssumeRolePolicyDocument", max_chars=2048, trust=True)

    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}


def test_the_platform_policy_matches_the_log_store_and_queue_of_s_yaml() -> None:
    text = (DEPLOY / "ramflow-functions-platform-policy.json").read_text()
    document = parse_policy_document(text, param="PolicyDocument", max_chars=6144)
    project = yaml.safe_load(S_YAML.read_text())["vars"]["logs"]

    granted = {s["Action"]: s["Resource"] for s in document["Statement"]}
    assert set(granted) == {"log:PostLogStoreLogs", "mns:SendMessage"}
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in document["Statement"])
    assert "'ramflow-logs'" in project["project"] and "'functions'" in project["logstore"]
    assert granted["log:PostLogStoreLogs"].endswith(":project/ramflow-logs/logstore/functions")
    assert "/queues/ramflow-failed-events/messages" in S_YAML.read_text()
    assert granted["mns:SendMessage"].endswith(":/queues/ramflow-failed-events/messages")
