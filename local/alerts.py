"""Alert rules for what the roles' policies cannot refuse, rendered into `deploy/alerts/<name>.json`.

Each file is the `detail` of a Simple Log Service alert rule (alert 2.0, the body of the CreateAlert
API, https://www.alibabacloud.com/help/en/sls/developer-reference/api-sls-2020-12-30-createalert).
The queries read the ActionTrail trail's Logstore (`actiontrail_<trail>`, fields as documented at
https://www.alibabacloud.com/help/doc-detail/173654.htm) and, for "outside a ticket", ramflow's own
audit lines in the functions' Logstore (s.yaml `logs`). A session of a function's role appears in
ActionTrail as `userIdentity.type = assumed-role` and `userIdentity.userName = <role>:<session>`
(https://www.alibabacloud.com/help/en/actiontrail/user-guide/query-actiontrail-events-by-assuming-a-ram-role).

`python -m local.alerts --write` renders the files; a test fails while they are stale.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.roles import DEPLOY_DIR, ROLE_PREFIX

ALERTS_DIR = DEPLOY_DIR / "alerts"
PROJECT = "${RAMFLOW_LOG_PROJECT}"  # placeholders the operator fills in (deploy/README.md)
REGION = "${RAMFLOW_REGION}"
ACTIONTRAIL_STORE = "${ACTIONTRAIL_LOGSTORE}"
AUDIT_STORE = "${RAMFLOW_LOG_STORE}"
HIGH_RISK = ("AdministratorAccess", "AliyunRAMFullAccess", "AliyunSTSAssumeRoleAccess")
BY_RAMFLOW = f"\"event.userIdentity.userName\" like '{ROLE_PREFIX}%'"


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    severity: int  # SLS: 2 report, 4 low, 6 medium, 8 high, 10 critical
    query: str
    why: str
    audit_join: bool = False  # fire only when no ramflow audit line names the same user


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


RULES: tuple[Rule, ...] = (
    Rule(
        "ramflow-policy-version-created",
        "ramflow: a custom policy got a new version",
        10,
        "__topic__: actiontrail_event and event.serviceName: Ram and event.eventName: CreatePolicyVersion"
        ' | select "event.userIdentity.userName" as caller, "event.requestParameters.PolicyName" as policy,'
        ' "event.requestParameters.PolicyDocument" as document',
        "ramflow never changes a policy's version; a role holding CreatePolicyVersion can widen any grant",
    ),
    Rule(
        "ramflow-policy-created",
        "ramflow: a function's role created a custom policy",
        6,
        "__topic__: actiontrail_event and event.serviceName: Ram and event.eventName: CreatePolicy"
        f' | select "event.userIdentity.userName" as caller, "event.requestParameters.PolicyName" as policy,'
        f' "event.requestParameters.PolicyDocument" as document where {BY_RAMFLOW}',
        "RAM checks a new policy's name, never its document: compare the document with the catalog "
        "template's rendering (ramflow-<template>-<hash of the content>)",
    ),
    Rule(
        "ramflow-high-risk-attached",
        "ramflow: a high-risk policy was attached to a user",
        10,
        "__topic__: actiontrail_event and (event.eventName: AttachPolicyToUser or event.eventName: AttachPolicy)"
        ' | select "event.userIdentity.userName" as caller, "event.requestParameters.UserName" as user_name,'
        ' "event.requestParameters.PrincipalName" as principal, "event.requestParameters.PolicyName" as policy'
        f' where "event.requestParameters.PolicyName" in ({_names(HIGH_RISK)})',
        "the provisioning roles may attach the catalog's break-glass policies; only the code's break-glass "
        "check (two approvers, an end date) stands between them and an administrator",
    ),
    Rule(
        "ramflow-user-outside-prefix",
        "ramflow: a function's role created a user outside the managed-user prefix",
        8,
        "__topic__: actiontrail_event and event.serviceName: Ram and event.eventName: CreateUser"
        ' | select "event.userIdentity.userName" as caller, "event.requestParameters.UserName" as user_name'
        f" where {BY_RAMFLOW} and \"event.requestParameters.UserName\" not like '${{RAMFLOW_MANAGED_USER_PREFIX}}%'",
        "RAM authorizes CreateUser on user/* whatever the name; ramflow's code refuses other names",
    ),
    Rule(
        "ramflow-secret-outside-ticket",
        "ramflow: an AccessKey or password was made with no ticket completing",
        10,
        "__topic__: actiontrail_event and event.serviceName: Ram and (event.eventName: CreateAccessKey or "
        "event.eventName: CreateLoginProfile or event.eventName: UpdateLoginProfile)"
        ' | select "event.requestParameters.UserName" as user_name, "event.userIdentity.userName" as caller,'
        f' "event.eventName" as action where {BY_RAMFLOW}',
        "every key and password ramflow makes is followed by the ticket.completed audit line naming the "
        "user; one without it was made outside a ticket (or the ticket failed after it: look either way)",
        audit_join=True,
    ),
)

AUDIT_QUERY = (
    'message.action: ticket.completed | select "message.details.user" as user_name group by user_name'
)
"""ramflow's audit lines in the functions' Logstore, with the index of README "Audit and logs"."""


def _query(store: str, query: str) -> dict[str, Any]:
    return {
        "storeType": "log",
        "region": REGION,
        "project": PROJECT,
        "store": store,
        "query": query,
        "timeSpanType": "Relative",
        "start": "-15m",
        "end": "now",
        "powerSqlMode": "auto",
    }


def detail(rule: Rule) -> dict[str, Any]:
    """The CreateAlert body of one rule; evaluated every 5 minutes over the last 15."""
    queries = [_query(ACTIONTRAIL_STORE, rule.query)]
    joins: list[dict[str, Any]] = []
    if rule.audit_join:
        queries.append(_query(AUDIT_STORE, AUDIT_QUERY))
        joins.append({"type": "left_exclude", "condition": "$0.user_name == $1.user_name"})
    return {
        "name": rule.name,
        "displayName": rule.title,
        "description": rule.why,
        "type": "Alert",
        "status": "Enabled",
        "schedule": {"type": "FixedRate", "interval": "5m"},
        "configuration": {
            "version": "2.0",
            "type": "default",
            "queryList": queries,
            "groupConfiguration": {"type": "no_group", "fields": []},
            "joinConfigurations": joins,
            "severityConfigurations": [
                {
                    "severity": rule.severity,
                    "evalCondition": {"condition": "", "countCondition": "__count__ > 0"},
                }
            ],
            "labels": [{"key": "app", "value": "ramflow"}],
            "annotations": [
                {"key": "title", "value": rule.title},
                {"key": "desc", "value": rule.why},
            ],
            "autoAnnotation": True,
            "sendResolved": False,
            "threshold": 1,
            "noDataFire": False,
            "policyConfiguration": {
                "alertPolicyId": "sls.builtin.dynamic",
                "actionPolicyId": "${RAMFLOW_ALERT_ACTION_POLICY}",
                "repeatInterval": "1h",
            },
        },
    }


def documents() -> dict[Path, str]:
    return {ALERTS_DIR / f"{rule.name}.json": json.dumps(detail(rule), indent=2) + "\n" for rule in RULES}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.alerts", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="render deploy/alerts/*.json")
    args = parser.parse_args(argv)
    for path, text in documents().items():
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(DEPLOY_DIR.parent)}")
        else:
            print(text)


if __name__ == "__main__":
    main()
