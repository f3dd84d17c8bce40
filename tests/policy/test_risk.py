"""High-risk detection: `*`, power over RAM, or assuming any role — and failing closed."""

from __future__ import annotations

import pytest

from shared.policy.templates import is_high_risk


def allow(action, resource="*", **extra):
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


@pytest.mark.parametrize(
    "document",
    [
        allow("*"),
        allow(["alikafka:ListTopic", "*"]),
        allow("*:*"),
        allow("ram:*"),
        allow("RAM:*"),
        allow(["ram:*"], "acs:ram:*:*:user/alice"),
        allow("ram:Attach*"),
        allow("ram:attachpolicytouser", "acs:ram:*:*:user/alice"),
        allow("ram:CreateAccessKey"),
        allow("ram:Create*"),
        allow("ram:UpdateLoginProfile"),
        allow("?am:*"),
        allow("r*"),
        allow("resourcemanager:AttachPolicy"),
        allow("sts:AssumeRole"),
        allow("sts:assumerole", ["acs:ram::123:role/reader", "*"]),
        allow("sts:AssumeRole", "acs:ram::123456:role/*"),
        allow("sts:AssumeRole", "acs:ram:*:*:*"),
        allow("sts:*"),
        allow("s*:*"),
        {"Version": "1", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}},
        {"Version": "1", "Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]},
        {"Version": "1", "Statement": [{"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"}]},
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "NotResource": "x"}]},
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]},
    ],
)
def test_high_risk(document):
    assert is_high_risk(document)


@pytest.mark.parametrize(
    "document",
    [
        allow("alikafka:ListTopic", "acs:alikafka:*:*:alikafka_post-cn-7mz2"),
        allow(["alikafka:*"], "acs:alikafka:*:*:alikafka_post-cn-7mz2"),
        allow("ram:Get*"),
        allow(["ram:List*", "ram:GetUser"]),
        allow("*:Get*"),
        allow("sts:AssumeRole", "acs:ram::123456:role/kafka-reader"),
        allow("sts:GetCallerIdentity"),
        allow([]),
        {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]},
        {"Version": "1", "Statement": [{"Effect": "DENY", "Action": "ram:*", "Resource": "*"}]},
        {"Version": "1", "Statement": []},
    ],
)
def test_not_high_risk(document):
    assert not is_high_risk(document)


@pytest.mark.parametrize(
    "document",
    [
        None,
        "*",
        [],
        {"Version": "1"},
        {"Version": "1", "Statement": "Allow *"},
        {"Version": "1", "Statement": ["*"]},
        allow(42),
        allow(["alikafka:ListTopic", None]),
        allow("sts:AssumeRole", {"arn": "*"}),
        {"Version": "1", "Statement": [{"Effect": None, "Action": "ram:CreateUser", "Resource": "*"}]},
    ],
)
def test_malformed_documents_fail_closed(document):
    assert is_high_risk(document)


def test_brackets_are_literal_not_character_classes():
    assert not is_high_risk(allow("[a-z]am:*"))


@pytest.mark.parametrize(
    ("resource", "high"),
    [
        ("acs:ram::123456:role/*", True),
        ("acs:ram::123456:*", True),
        ("acs:ram:*:123456:role/*", True),
        ("acs:ram:*:*:role/*", True),
        ("acs:ram::123456:role/kafka-*", False),
        ("acs:ram::123456:role/kafka-reader", False),
        ("acs:ram::*:role/kafka-reader", False),
    ],
)
def test_assume_role_resources(resource, high):
    assert is_high_risk(allow("sts:AssumeRole", resource)) is high
