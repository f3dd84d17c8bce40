"""The roles' documents: rendered from local/roles.py (never edited by hand), trusted by Function
Compute only, and the platform policy holds just what FC itself does with a role (ship logs, park
failed events) on exactly s.yaml's log store and queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from local import roles
from local.emulator.ram.models import parse_policy_document
from shared.errors import ConfigError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
S_YAML = DEPLOY.parent / "s.yaml"
BUS = "acs:eventbridge:cn-hangzhou:5123:eventbus"
PUBLISHERS = {
    "user-requested",
    "access-approved",
    "key-rotation",
    "access-revoked",
    "user-offboarded",
    "reconcile",
}


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
        # reconcile hands a key past its age to key-rotation: it may invoke that function only
        ("reconcile", "fc:InvokeFunction", "acs:fc:cn-hangzhou:5123:functions/key-rotation", "Allow"),
        ("reconcile", "fc:InvokeFunction", "acs:fc:cn-hangzhou:5123:functions/access-approved", None),
        ("key-rotation", "ram:CreateAccessKey", "acs:ram:*:5123:user/rf-alice", "Allow"),
        ("key-rotation", "ram:CreateAccessKey", "acs:ram:*:5123:user/alice", None),
        ("key-rotation", "ram:CreateUser", "acs:ram:*:5123:user/rf-alice", None),
        ("key-rotation", "ram:CreateLoginProfile", "acs:ram:*:5123:user/rf-alice", None),
        ("key-rotation", "ram:AttachPolicyToUser", "acs:ram:*:5123:user/rf-alice", None),
        ("key-rotation", "fc:InvokeFunction", "acs:fc:cn-hangzhou:5123:functions/access-approved", None),
        ("reconcile", "fc:InvokeFunction", "acs:fc:cn-hangzhou:5123:functions/user-offboarded", None),
        ("reconcile", "ram:CreateAccessKey", "acs:ram:*:5123:user/rf-alice", None),
        ("access-approved", "eventbridge:PutEvents", f"{BUS}/ramflow-results", "Allow"),
        ("reconcile", "eventbridge:PutEvents", f"{BUS}/ramflow-results", "Allow"),
        ("access-approved", "eventbridge:PutEvents", f"{BUS}/default", None),  # the lifecycle's own bus
        ("reconcile", "eventbridge:PutEvents", f"{BUS}/ramflow-results-2", None),
        ("webhook-ingress", "eventbridge:PutEvents", f"{BUS}/ramflow-results", None),
        ("token-vendor", "eventbridge:PutEvents", f"{BUS}/ramflow-results", None),
        ("credential-pickup", "eventbridge:PutEvents", f"{BUS}/ramflow-results", "Deny"),  # holds nothing
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


def _put_events_resources(document: dict[str, Any]) -> list[str]:
    return [
        r
        for s in document["Statement"]
        if "eventbridge:PutEvents" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]


def test_exactly_the_functions_that_deliver_results_may_put_events_on_the_result_buses() -> None:
    """The functions answering events deliver their own results (shared.outcomes); reconcile retries
    everyone's (shared.flows.reconcile). The ingress, the token vendor and the pickup send none."""
    holders = {
        function
        for function in roles.ROLES
        if _put_events_resources(
            json.loads((DEPLOY / f"{roles.ROLES[function].role}-policy.json").read_text())
        )
    }
    assert holders == PUBLISHERS
    for function in PUBLISHERS:
        document = json.loads((DEPLOY / f"{roles.ROLES[function].role}-policy.json").read_text())
        assert _put_events_resources(document) == ["acs:eventbridge:*:*:eventbus/ramflow-results"]


def test_the_buses_come_from_the_destinations_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    destinations = tmp_path / "destinations.yaml"
    destinations.write_text(
        "routes:\n"
        "  - {name: itsm, source: itsm.example.com, eventbridge: {bus: itsm-results}}\n"
        "  - {name: hr, source: hr.example.com, eventbridge: {bus: hr-results}}\n"
        "  - {name: again, source: '*', eventbridge: {bus: itsm-results}}\n"
    )
    monkeypatch.setenv("RAMFLOW_DESTINATIONS", str(destinations))
    scope = roles.scope_from_env()
    assert scope.result_buses == ("hr-results", "itsm-results")
    assert _put_events_resources(roles.role_policy("reconcile", scope)) == [
        "acs:eventbridge:*:*:eventbus/hr-results",
        "acs:eventbridge:*:*:eventbus/itsm-results",
    ]
    destinations.write_text(
        "routes:\n  - {name: itsm, source: '*', webhook: {url: 'https://x.example', secret_env: S}}\n"
    )
    no_bus = roles.scope_from_env()
    assert no_bus.result_buses == ()
    assert _put_events_resources(roles.role_policy("reconcile", no_bus)) == []


def test_results_on_the_lifecycle_bus_are_refused(tmp_path: Path) -> None:
    """Its rules trigger the functions: a role that may publish there could pose as a ticket system."""
    destinations = tmp_path / "destinations.yaml"
    destinations.write_text("routes:\n  - {name: itsm, source: '*', eventbridge: {bus: default}}\n")
    with pytest.raises(ConfigError, match=r"routes\.0\.eventbridge\.bus: .*not 'default'"):
        roles.result_buses(destinations)
    destinations.write_text("routes:\n  - {name: itsm, source: '*', eventbridge: {}}\n")
    with pytest.raises(ConfigError, match=r"routes\.0\.eventbridge\.bus: Field required"):
        roles.result_buses(destinations)
