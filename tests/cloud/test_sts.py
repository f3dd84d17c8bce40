"""StsGateway: AssumeRole as a RAM user (root may not), and GetCallerIdentity."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from alibabacloud_ram20150501 import models as ram_models

from local.emulator.core import Emulator
from shared.cloud import Cloud
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.errors import CloudError, EntityNotFound

SESSION_POLICY = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "alikafka:ListTopic", "Resource": "acs:alikafka:*:*:inst-1"}],
}


@pytest.fixture
def role_arn(root_clients: CloudClients, emulator: Emulator) -> str:
    account = emulator.account.account_id
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account}:root"]},
                "Condition": {"StringEquals": {"sts:ExternalId": "ext-7"}},
            }
        ],
    }
    role = root_clients.ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="kafka-reader", assume_role_policy_document=json.dumps(trust), max_session_duration=7200
        )
    ).body.role
    return role.arn


@pytest.fixture
def vendor(cloud: Cloud, make_cloud: Callable[..., Cloud]) -> Cloud:
    """A Cloud signed by a RAM user's AccessKey: roles are assumed by users, never by root, and only
    by users allowed `sts:AssumeRole`."""
    cloud.ram.create_user("token-vendor")
    cloud.ram.attach_policy_to_user("token-vendor", "AliyunSTSAssumeRoleAccess", "System")
    key = cloud.ram.create_access_key("token-vendor")
    return make_cloud(CloudCredentials(key.access_key_id, key.secret.get_secret_value()))


def test_caller_identity_of_root(cloud: Cloud, emulator: Emulator) -> None:
    identity = cloud.sts.get_caller_identity()
    assert (identity.account_id, identity.identity_type) == (emulator.account.account_id, "Account")
    assert identity.arn == f"acs:ram::{emulator.account.account_id}:root"


def test_assume_role_returns_typed_credentials(
    vendor: Cloud,
    role_arn: str,
    emulator: Emulator,
    make_cloud: Callable[..., Cloud],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    creds = vendor.sts.assume_role(role_arn, "app-orders", 1800, policy=SESSION_POLICY, external_id="ext-7")

    assert creds.access_key_id.startswith("STS.")
    assert creds.expiration.tzinfo is not None
    assert 1790 <= (creds.expiration - before).total_seconds() <= 1810
    account = emulator.account.account_id
    assert creds.assumed_role_arn == f"acs:ram::{account}:role/kafka-reader/app-orders"
    secret, token = creds.access_key_secret.get_secret_value(), creds.security_token.get_secret_value()
    for text in (repr(creds), str(creds), creds.model_dump_json(), caplog.text):
        assert secret not in text and token not in text

    as_role = make_cloud(CloudCredentials(creds.access_key_id, secret, token)).sts.get_caller_identity()
    assert as_role.identity_type == "AssumedRoleUser"
    assert as_role.arn == f"acs:ram::{account}:assumed-role/kafka-reader/app-orders"  # not the same form
    sent = next(c.params for c in emulator.recorder.calls if c.action == "AssumeRole")
    assert json.loads(sent["Policy"]) == SESSION_POLICY and sent["DurationSeconds"] == "1800"


def test_a_user_without_sts_assume_role_is_refused(
    cloud: Cloud, make_cloud: Callable[..., Cloud], role_arn: str
) -> None:
    cloud.ram.create_user("no-sts")
    key = cloud.ram.create_access_key("no-sts")
    bare = make_cloud(CloudCredentials(key.access_key_id, key.secret.get_secret_value()))
    with pytest.raises(CloudError) as info:
        bare.sts.assume_role(role_arn, "app-orders", 900, external_id="ext-7")
    assert info.value.code == "NoPermission"
    assert not info.value.retryable


def test_assume_role_of_a_missing_role(vendor: Cloud, emulator: Emulator) -> None:
    with pytest.raises(EntityNotFound) as info:
        vendor.sts.assume_role(f"acs:ram::{emulator.account.account_id}:role/nope", "app-orders", 900)
    assert info.value.code == "EntityNotExist.Role"


def test_assume_role_without_the_external_id_is_refused(vendor: Cloud, role_arn: str) -> None:
    with pytest.raises(CloudError) as info:
        vendor.sts.assume_role(role_arn, "app-orders", 900)
    assert not isinstance(info.value, EntityNotFound)
    assert not info.value.retryable


def test_a_bad_session_name_is_an_invalid_parameter(vendor: Cloud, role_arn: str) -> None:
    with pytest.raises(CloudError) as info:
        vendor.sts.assume_role(role_arn, "no spaces allowed", 900, external_id="ext-7")
    assert info.value.code.startswith("InvalidParameter")


def test_the_session_policy_sent_is_the_text_the_vendor_measured(
    vendor: Cloud, role_arn: str, emulator: Emulator
) -> None:
    """STS limits the Policy text it receives; a non-ASCII value must not grow on the way (\\u escapes)."""
    from shared.policy.templates import canonical_json

    policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "alikafka:ListTopic",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:SourceVpc": "vpc-zürich-东京"}},
            }
        ],
    }
    vendor.sts.assume_role(role_arn, "app-orders", 900, policy=policy, external_id="ext-7")
    sent = next(c.params for c in emulator.recorder.calls if c.action == "AssumeRole")
    assert sent["Policy"] == canonical_json(policy)
