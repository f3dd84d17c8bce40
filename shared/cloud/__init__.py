"""Typed wrappers over the official Alibaba Cloud SDK clients: no business rules, one call path."""

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
