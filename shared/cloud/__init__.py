"""Typed wrappers over the official Alibaba Cloud SDK clients: no business rules, one call path.

The names below are loaded on first access (PEP 562), so importing one module of this package
(e.g. `shared.cloud.clients`) does not import every SDK: a function loads only the gateways it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from shared.cloud.cloud import Cloud, account_runner
    from shared.cloud.ims import ImsGateway
    from shared.cloud.ram import (
        AccessKeyInfo,
        LoginProfile,
        NewAccessKey,
        PasswordPolicy,
        Policy,
        PolicyEntities,
        PolicyRef,
        RamGateway,
        RamUser,
    )
    from shared.cloud.resource_manager import PolicyAttachment, ResourceManagerGateway
    from shared.cloud.retry import CallStats, CloudRunner, RetryPolicy
    from shared.cloud.sts import CallerIdentity, StsCredentials, StsGateway

_MODULE_OF = {
    "Cloud": "cloud",
    "account_runner": "cloud",
    "ImsGateway": "ims",
    "AccessKeyInfo": "ram",
    "LoginProfile": "ram",
    "NewAccessKey": "ram",
    "PasswordPolicy": "ram",
    "Policy": "ram",
    "PolicyEntities": "ram",
    "PolicyRef": "ram",
    "RamGateway": "ram",
    "RamUser": "ram",
    "PolicyAttachment": "resource_manager",
    "ResourceManagerGateway": "resource_manager",
    "CallStats": "retry",
    "CloudRunner": "retry",
    "RetryPolicy": "retry",
    "CallerIdentity": "sts",
    "StsCredentials": "sts",
    "StsGateway": "sts",
}

__all__ = [
    "AccessKeyInfo",
    "CallStats",
    "CallerIdentity",
    "Cloud",
    "CloudRunner",
    "ImsGateway",
    "LoginProfile",
    "NewAccessKey",
    "PasswordPolicy",
    "Policy",
    "PolicyAttachment",
    "PolicyEntities",
    "PolicyRef",
    "RamGateway",
    "RamUser",
    "ResourceManagerGateway",
    "RetryPolicy",
    "StsCredentials",
    "StsGateway",
    "account_runner",
]


__getattr__ = lazy_attributes(__name__, _MODULE_OF, globals())
