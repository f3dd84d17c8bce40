"""Helpers shared by the RAM emulator tests (this module holds no tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

from shared.cloud.clients import CloudClients, CloudCredentials

ISO_DATE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
ALLOW_ALL_KAFKA = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "alikafka:*", "Resource": "*"}]}
)
TRUST_ACCOUNT = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::5123456789012345:root"]},
            }
        ],
    }
)


@contextmanager
def api_error(code: str, status: int) -> Iterator[pytest.ExceptionInfo[AlibabaCloudException]]:
    """The SDK raised the cloud error `code` with HTTP `status`."""
    with pytest.raises(AlibabaCloudException) as info:
        yield info
    assert (info.value.code, info.value.status_code) == (code, status), info.value.message


def raw_call(clients: CloudClients, action: str, **query: Any) -> dict[str, Any]:
    """Call a RAM action through the SDK's transport but return the JSON body as the wire had it."""
    params = utils_models.Params(
        action=action,
        version="2015-05-01",
        protocol="HTTPS",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = utils_models.OpenApiRequest(query=Utils.query(query))
    return clients.ram.call_api(params, request, RuntimeOptions())["body"]


def clients_for(root_clients: CloudClients, key_id: str, secret: str) -> CloudClients:
    return CloudClients(root_clients.settings, CloudCredentials(key_id, secret))


def make_user(clients: CloudClients, name: str, **fields: Any) -> ram_models.CreateUserResponseBodyUser:
    return clients.ram.create_user(ram_models.CreateUserRequest(user_name=name, **fields)).body.user
