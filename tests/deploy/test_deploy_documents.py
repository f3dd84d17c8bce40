"""The roles' documents: rendered from local/roles.py (never edited by hand), trusted by Function
Compute only, and the platform policy holds just what FC itself does with a role (ship logs, park
failed events) on exactly s.yaml's log store and queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from local import roles
from local.emulator.ram.models import parse_policy_document

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
S_YAML = DEPLOY.parent / "s.yaml"


def test_every_committed_document_is_its_rendering() -> None:
    """A catalog or code change that widens a role shows in that role's file diff, for review."""
    stale = [
        path.name
        for path, text in roles.documents(roles.Scope()).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"stale: {stale}: run `.venv/bin/python -m local.build --write-policy`"
    rendered = {path.name for path in roles.documents()}
    on_disk = {p.name for p in DEPLOY.glob("*.json")}
    assert on_disk == rendered, "deploy/ holds only rendered documents"


@pytest.mark.parametrize("function", sorted(roles.ROLES))
def test_each_role_document_is_valid_for_ram(function: str) -> None:
    role = roles.ROLES[function].role
    policy = (DEPLOY / f"{role}-policy.json").read_text()
    parse_policy_document(policy, param="PolicyDocument", max_chars=6144)
    text = (DEPLOY / f"{role}-trust.json").read_text()
    document = parse_policy_document(text, param="AssumeRolePolicyDocument", max_chars=2048, trust=True)
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": ["fc.aliyuncs.com"]}, "only Function Compute"


def test_the_prefix_scopes_every_user_write() -> None:
    document = roles.role_policy("access-approved", roles.Scope(managed_user_prefix="team-"))
    user_resources = {
        r
        for s in document["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        if ":user/" in r
    }
    assert user_resources == {"acs:ram:*:*:user/*", "acs:ram:*:*:user/team-*"}
    unscoped = [
        s
        for s in document["Statement"]
        if s["Resource"] == "acs:ram:*:*:user/*" or "acs:ram:*:*:user/*" in s["Resource"]
    ]
    allowed_everywhere = {
        a for s in unscoped for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert allowed_everywhere == {"ram:GetUser", "ram:ListUsers", "ram:ListTagResources", "ram:CreateUser"}, (
        "on any user: reads, and CreateUser (RAM authorizes it on user/* only)"
    )


def test_the_platform_policy_matches_the_log_store_and_queue_of_s_yaml() -> None:
    text = (DEPLOY / "ramflow-platform-policy.json").read_text()
    document = parse_policy_document(text, param="PolicyDocument", max_chars=6144)
    project = yaml.safe_load(S_YAML.read_text())["vars"]["logs"]

    granted = {s["Action"]: s["Resource"] for s in document["Statement"]}
    assert set(granted) == {"log:PostLogStoreLogs", "mns:SendMessage"}
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in document["Statement"])
    assert "'ramflow-logs'" in project["project"] and "'functions'" in project["logstore"]
    assert granted["log:PostLogStoreLogs"].endswith(":project/ramflow-logs/logstore/functions")
    assert "/queues/ramflow-failed-events/messages" in S_YAML.read_text()
    assert granted["mns:SendMessage"].endswith(":/queues/ramflow-failed-events/messages")


def test_the_token_vendor_holds_nothing_in_ram() -> None:
    document = json.loads((DEPLOY / "ramflow-fn-token-vendor-policy.json").read_text())
    actions = {s["Action"] for s in document["Statement"]}
    assert actions == {"sts:AssumeRole"}


@pytest.mark.parametrize(
    ("function", "action", "resource", "expected"),
    [
        ("access-approved", "ram:CreateUser", "acs:ram:*:5123:user/*", "Allow"),  # RAM: the collection
        ("access-approved", "ram:CreateAccessKey", "acs:ram:*:5123:user/rf-alice", "Allow"),
        ("access-approved", "ram:CreateAccessKey", "acs:ram:*:5123:user/alice", None),
        ("access-approved", "ram:CreateAccessKey", "acs:ram:*:5123:user/*", None),
        ("access-approved", "ram:CreatePolicy", "acs:ram:*:5123:policy/ramflow-evil", None),
        (
            "access-approved",
            "ram:CreatePolicy",
            "acs:ram:*:5123:policy/ramflow-kafka-instance-readonly-ab12",
            "Allow",
        ),
        ("access-revoked", "ram:DetachPolicyFromUser", "acs:ram:*:5123:user/ops-admin", None),
        ("user-offboarded", "ram:DeleteUser", "acs:ram:*:5123:user/rf-leaver", "Allow"),
        ("user-offboarded", "ram:CreateAccessKey", "acs:ram:*:5123:user/rf-leaver", None),
        ("token-vendor", "sts:AssumeRole", "acs:ram::5123:role/ramflow-kafka-reader", "Allow"),
        ("token-vendor", "sts:AssumeRole", "acs:ram::5123:role/ramflow-fn-access-approved", "Deny"),
        (
            "webhook-ingress",
            "fc:InvokeFunction",
            "acs:fc:cn-hangzhou:5123:functions/access-approved",
            "Allow",
        ),
        ("webhook-ingress", "fc:InvokeFunction", "acs:fc:cn-hangzhou:5123:functions/reconcile", None),
    ],
)
def test_the_documents_mean_what_the_security_model_says(
    function: str, action: str, resource: str, expected: str | None
) -> None:
    """Evaluated as RAM does (wildcards inside ARNs, Deny over Allow) by the emulator's evaluator."""
    from local.emulator.enforcement import NamedPolicy, RequestContext, evaluate

    document = json.loads((DEPLOY / f"{roles.ROLES[function].role}-policy.json").read_text())
    effect, _ = evaluate([NamedPolicy(function, document)], action, resource, RequestContext(action, {}, 0.0))
    assert effect == expected
