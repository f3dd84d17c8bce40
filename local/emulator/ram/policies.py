"""System policies every emulated account starts with: name → description and default document.

The documents follow the shape Alibaba Cloud publishes for these policies (Version "1", a list of
Allow statements); they are trimmed to what a reader, a guard or a policy-enforcement mode needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SYSTEM_POLICY_CREATE_DATE = "2015-04-28T16:12:00Z"


@dataclass(frozen=True)
class SystemPolicy:
    name: str
    description: str
    statements: tuple[dict[str, Any], ...]
    update_date: str = "2023-03-14T09:25:08Z"

    @property
    def document(self) -> dict[str, Any]:
        return {"Version": "1", "Statement": [dict(s) for s in self.statements]}


def _allow(actions: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


_READ_VERBS = ("Get*", "List*", "Describe*", "Query*", "BatchGet*", "BatchQuery*", "Check*")

SYSTEM_POLICIES: tuple[SystemPolicy, ...] = (
    SystemPolicy(
        "AdministratorAccess",
        "Provides full access to Alibaba Cloud services and resources.",
        (_allow("*"),),
    ),
    SystemPolicy(
        "ReadOnlyAccess",
        "Provides read-only access to Alibaba Cloud services and resources.",
        (_allow([f"*:{verb}" for verb in _READ_VERBS]),),
    ),
    SystemPolicy(
        "AliyunRAMFullAccess",
        "Provides full access to Resource Access Management (RAM).",
        (_allow("ram:*"),),
    ),
    SystemPolicy(
        "AliyunRAMReadOnlyAccess",
        "Provides read-only access to Resource Access Management (RAM).",
        (_allow(["ram:Get*", "ram:List*"]),),
    ),
    SystemPolicy(
        "AliyunSTSAssumeRoleAccess",
        "Provides access to call the AssumeRole operation of Security Token Service (STS).",
        (_allow("sts:AssumeRole"),),
    ),
    SystemPolicy(
        "AliyunKafkaFullAccess",
        "Provides full access to ApsaraMQ for Kafka.",
        (
            _allow("alikafka:*"),
            _allow(
                "ram:CreateServiceLinkedRole",
                Condition={"StringEquals": {"ram:ServiceName": "connector.alikafka.aliyuncs.com"}},
            ),
        ),
    ),
    SystemPolicy(
        "AliyunKafkaReadOnlyAccess",
        "Provides read-only access to ApsaraMQ for Kafka.",
        (_allow(["alikafka:List*", "alikafka:Get*", "alikafka:Describe*", "alikafka:Query*"]),),
    ),
    SystemPolicy(
        "AliyunECSFullAccess",
        "Provides full access to Elastic Compute Service (ECS).",
        (_allow("ecs:*"), _allow(["vpc:DescribeVpcs", "vpc:DescribeVSwitches"])),
    ),
    SystemPolicy(
        "AliyunECSReadOnlyAccess",
        "Provides read-only access to Elastic Compute Service (ECS).",
        (_allow(["ecs:Describe*", "ecs:List*"]), _allow(["vpc:DescribeVpcs", "vpc:DescribeVSwitches"])),
    ),
    SystemPolicy(
        "AliyunOSSFullAccess",
        "Provides full access to Object Storage Service (OSS).",
        (_allow("oss:*"),),
    ),
    SystemPolicy(
        "AliyunOSSReadOnlyAccess",
        "Provides read-only access to Object Storage Service (OSS).",
        (_allow(["oss:Get*", "oss:List*"]),),
    ),
    SystemPolicy(
        "AliyunLogFullAccess",
        "Provides full access to Simple Log Service (SLS).",
        (_allow("log:*"),),
    ),
    SystemPolicy(
        "AliyunLogReadOnlyAccess",
        "Provides read-only access to Simple Log Service (SLS).",
        (_allow(["log:Get*", "log:List*"]),),
    ),
    SystemPolicy(
        "AliyunResourceManagerReadOnlyAccess",
        "Provides read-only access to Resource Management.",
        (_allow(["resourcemanager:Get*", "resourcemanager:List*"]),),
    ),
)
