"""STS 2015-04-01 through the official SDK over loopback: AssumeRole, and the credentials it issues."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.emulator.core import Emulator
from shared.cloud.clients import CloudClients, CloudCredentials

OTHER_ACCOUNT = "1987654321098765"


def trust(*principals: str, external_id: str | None = None, deny: list[str] | None = None) -> str:
    statement: dict = {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": list(principals)}}
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    statements = [statement]
    if deny:
        statements.append({"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": {"RAM": deny}})
    return json.dumps({"Statement": statements, "Version": "1"})


def account_root(emulator: Emulator) -> str:
    return f"acs:ram::{emulator.account.account_id}:root"


def create_role(root: CloudClients, name: str, document: str, max_session_duration: int | None = None) -> str:
    body = root.ram.create_role(
        ram_models.CreateRoleRequest(
            role_name=name, assume_role_policy_document=document, max_session_duration=max_session_duration
        )
    ).body
    return body.role.arn


def user_clients(root: CloudClients, name: str = "app", *, may_assume: bool = True) -> CloudClients:
    """SDK clients signed with a fresh AccessKey of a new RAM user (holding AliyunSTSAssumeRoleAccess
    unless `may_assume` is False: STS refuses AssumeRole to a caller without `sts:AssumeRole`)."""
    root.ram.create_user(ram_models.CreateUserRequest(user_name=name))
    if may_assume:
        root.ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name=name
            )
        )
    key = root.ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name=name)).body.access_key
    return CloudClients(root.settings, CloudCredentials(key.access_key_id, key.access_key_secret))


def assume(
    clients: CloudClients, arn: str, session: str = "alice", **extra: object
) -> sts_models.AssumeRoleResponseBody:
    request = sts_models.AssumeRoleRequest(role_arn=arn, role_session_name=session, **extra)
    return clients.sts.assume_role(request).body


def error_of(call) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    return info.value


@pytest.fixture
def app(root_clients: CloudClients) -> CloudClients:
    return user_clients(root_clients)


@pytest.fixture
def reader_arn(emulator: Emulator, root_clients: CloudClients) -> str:
    return create_role(root_clients, "KafkaReader", trust(account_root(emulator)))


# --- AssumeRole: the happy path ------------------------------------------------------------------
def test_assume_role_returns_complete_credentials(
    emulator: Emulator, app: CloudClients, reader_arn: str
) -> None:
    before = emulator.clock()
    body = assume(app, reader_arn, "alice", duration_seconds=1800)

    role = emulator.account.ram.get_role("KafkaReader")
    creds = body.credentials
    assert creds.access_key_id.startswith("STS.")
    assert creds.access_key_secret and creds.security_token
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", creds.expiration)
    expires = datetime.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before + 1800 - 2 <= expires.timestamp() <= emulator.clock() + 1800
    account = emulator.account.account_id
    assert body.assumed_role_user.arn == f"acs:ram::{account}:role/kafkareader/alice"
    assert body.assumed_role_user.assumed_role_id == f"{role.role_id}:alice"
    assert body.source_identity is None
    assert body.request_id


def test_default_duration_is_one_hour(emulator: Emulator, app: CloudClients, reader_arn: str) -> None:
    body = assume(app, reader_arn)
    session = emulator.sts_sessions[body.credentials.access_key_id]
    assert round(session.expires_at - emulator.clock()) == 3600


def test_arn_role_name_is_case_insensitive(emulator: Emulator, app: CloudClients, reader_arn: str) -> None:
    account = emulator.account.account_id
    body = assume(app, f"acs:ram::{account}:role/KAFKAREADER")
    assert body.assumed_role_user.arn.endswith(":role/kafkareader/alice")


def test_issued_credentials_are_accepted_until_they_expire(
    emulator: Emulator, app: CloudClients, reader_arn: str
) -> None:
    creds = assume(app, reader_arn, "ops@example.com", duration_seconds=900).credentials
    vended = CloudClients(
        app.settings, CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)
    )
    role = emulator.account.ram.get_role("KafkaReader")
    identity = vended.sts.get_caller_identity().body
    assert identity.identity_type == "AssumedRoleUser"
    assert identity.arn == f"acs:ram::{emulator.account.account_id}:assumed-role/kafkareader/ops@example.com"
    assert identity.role_id == role.role_id
    assert identity.principal_id == f"{role.role_id}:ops@example.com"

    emulator.advance(890)
    assert vended.sts.get_caller_identity().body.arn.endswith("/ops@example.com")
    emulator.advance(11)
    err = error_of(vended.sts.get_caller_identity)
    assert err.code == "InvalidSecurityToken.Expired"


def test_a_wrong_or_missing_token_is_refused(app: CloudClients, reader_arn: str) -> None:
    creds = assume(app, reader_arn).credentials
    wrong = CloudClients(
        app.settings,
        CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token[:-4] + "AAAA"),
    )
    err = error_of(wrong.sts.get_caller_identity)
    assert err.code == "InvalidSecurityToken.MismatchWithAccessKey"
    assert creds.security_token not in str(err.message)

    missing = CloudClients(app.settings, CloudCredentials(creds.access_key_id, creds.access_key_secret))
    assert error_of(missing.sts.get_caller_identity).code == "MissingSecurityToken"


def test_session_policy_is_kept_with_the_session(
    emulator: Emulator, app: CloudClients, reader_arn: str
) -> None:
    policy = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "alikafka:List*", "Resource": "*"}]}
    body = assume(app, reader_arn, policy=json.dumps(policy))
    assert emulator.sts_sessions[body.credentials.access_key_id].session_policy == policy


def test_source_identity_is_echoed(app: CloudClients, reader_arn: str) -> None:
    assert assume(app, reader_arn, source_identity="alice@example.com").source_identity == "alice@example.com"


@pytest.mark.parametrize("value", ["a", "acs:alice", "aliyun:bob", "has space", "x" * 65])
def test_bad_source_identity(app: CloudClients, reader_arn: str, value: str) -> None:
    assert error_of(lambda: assume(app, reader_arn, source_identity=value)).code == (
        "InvalidParameter.SourceIdentity"
    )


def test_role_chaining_from_an_assumed_role(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    first = create_role(root_clients, "Hop1", trust(account_root(emulator)))
    root_clients.ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", role_name="Hop1"
        )
    )
    second = create_role(root_clients, "Hop2", trust(f"acs:ram::{emulator.account.account_id}:role/hop1"))
    creds = assume(app, first).credentials
    hop = CloudClients(
        app.settings, CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)
    )
    assert assume(hop, second, "chained").assumed_role_user.arn.endswith(":role/hop2/chained")


def test_cross_account_role(emulator: Emulator, app: CloudClients) -> None:
    other = emulator.add_account(OTHER_ACCOUNT, "partner")
    mine = account_root(emulator)
    other.ram.create_role("Auditor", trust(mine))
    other.ram.create_role("Private", trust(f"acs:ram::{OTHER_ACCOUNT}:root"))

    body = assume(app, f"acs:ram::{OTHER_ACCOUNT}:role/auditor")
    assert body.assumed_role_user.arn == f"acs:ram::{OTHER_ACCOUNT}:role/auditor/alice"
    err = error_of(lambda: assume(app, f"acs:ram::{OTHER_ACCOUNT}:role/private"))
    assert (err.code, err.status_code) == ("NoPermission", 403)


# --- AssumeRole: refusals ------------------------------------------------------------------------
def test_missing_role(emulator: Emulator, app: CloudClients) -> None:
    err = error_of(lambda: assume(app, f"acs:ram::{emulator.account.account_id}:role/nobody"))
    assert (err.code, err.status_code) == ("EntityNotExist.Role", 404)


def test_role_of_an_unknown_account(app: CloudClients) -> None:
    assert error_of(lambda: assume(app, "acs:ram::1111111111111111:role/x")).code == "EntityNotExist.Role"


@pytest.mark.parametrize(
    "arn",
    [
        "KafkaReader",
        "acs:ram::abc:role/kafkareader",
        "acs:ram::5123456789012345:user/app",
        "arn:aws:iam::1:role/x",
    ],
)
def test_malformed_role_arn(app: CloudClients, arn: str) -> None:
    err = error_of(lambda: assume(app, arn))
    assert (err.code, err.status_code) == ("InvalidParameter.RoleArn", 400)


def test_root_key_may_not_assume_roles(root_clients: CloudClients, reader_arn: str) -> None:
    err = error_of(lambda: assume(root_clients, reader_arn))
    assert (err.code, err.status_code) == ("NoPermission", 403)
    assert "root" in err.message


@pytest.mark.parametrize("name", ["a", "x" * 65, "has space", "ünïcode", "名字", "semi;colon", "slash/"])
def test_bad_session_names(app: CloudClients, reader_arn: str, name: str) -> None:
    err = error_of(lambda: assume(app, reader_arn, name))
    assert (err.code, err.status_code) == ("InvalidParameter.RoleSessionName", 400)


@pytest.mark.parametrize("name", ["ab", "x" * 64, "a.b@c_d-e", "42"])
def test_good_session_names(app: CloudClients, reader_arn: str, name: str) -> None:
    assert assume(app, reader_arn, name).assumed_role_user.arn.endswith("/" + name)


@pytest.mark.parametrize("seconds", [0, 899, 3601, 43200])
def test_duration_outside_the_role_limit(app: CloudClients, reader_arn: str, seconds: int) -> None:
    err = error_of(lambda: assume(app, reader_arn, duration_seconds=seconds))
    assert (err.code, err.status_code) == ("InvalidParameter.DurationSeconds", 400)


def test_duration_follows_the_role_max_session_duration(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    arn = create_role(root_clients, "LongJobs", trust(account_root(emulator)), max_session_duration=7200)
    assert assume(app, arn, duration_seconds=900).credentials.access_key_id
    assert assume(app, arn, duration_seconds=7200).credentials.access_key_id
    err = error_of(lambda: assume(app, arn, duration_seconds=7201))
    assert err.code == "InvalidParameter.DurationSeconds"
    assert "2hr" in err.message


def _policy_of_length(length: int) -> str:
    base = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "alikafka:List*", "Resource": "*"}]}
    text = json.dumps(base)
    return text[:-1] + " " * (length - len(text)) + "}"


def test_policy_of_2048_characters_is_accepted(app: CloudClients, reader_arn: str) -> None:
    policy = _policy_of_length(2048)
    assert len(policy) == 2048
    assert assume(app, reader_arn, policy=policy).credentials.access_key_id


def test_oversize_policy(app: CloudClients, reader_arn: str) -> None:
    err = error_of(lambda: assume(app, reader_arn, policy=_policy_of_length(2049)))
    assert (err.code, err.status_code) == ("InvalidParameter.PolicySize", 400)


@pytest.mark.parametrize(
    "policy",
    [
        "{not json",
        "[]",
        '{"Version": "2", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
        '{"Version": "1", "Statement": []}',
        '{"Version": "1", "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Resource": "*"}]}',
    ],
)
def test_policy_grammar(app: CloudClients, reader_arn: str, policy: str) -> None:
    assert error_of(lambda: assume(app, reader_arn, policy=policy)).code == "InvalidParameter.PolicyGrammar"


def test_caller_outside_the_trust_policy(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    account = emulator.account.account_id
    arn = create_role(root_clients, "OnlyBob", trust(f"acs:ram::{account}:user/bob"))
    err = error_of(lambda: assume(app, arn))
    assert (err.code, err.status_code) == ("NoPermission", 403)

    bob = user_clients(root_clients, "bob")
    assert assume(bob, arn).assumed_role_user.arn.endswith("/onlybob/alice")


def test_service_principals_do_not_trust_api_callers(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    document = json.dumps(
        {
            "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fc.aliyuncs.com"]}}
            ],
            "Version": "1",
        }
    )
    arn = create_role(root_clients, "FcRole", document)
    assert error_of(lambda: assume(app, arn)).code == "NoPermission"


def test_an_explicit_deny_wins(emulator: Emulator, root_clients: CloudClients, app: CloudClients) -> None:
    account = emulator.account.account_id
    arn = create_role(
        root_clients, "NotForApp", trust(account_root(emulator), deny=[f"acs:ram::{account}:user/app"])
    )
    assert error_of(lambda: assume(app, arn)).code == "NoPermission"


def test_external_id_must_match_the_trust_condition(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    arn = create_role(root_clients, "Vendor", trust(account_root(emulator), external_id="abcd-1234"))
    for given in (None, "abcd-12345", "ABCD-1234"):
        err = error_of(lambda given=given: assume(app, arn, external_id=given))
        assert (err.code, err.status_code) == ("NoPermission", 403)
    assert assume(app, arn, external_id="abcd-1234").credentials.access_key_id


@pytest.mark.parametrize("external_id", ["a", "has space", "x" * 1225, "semi;colon"])
def test_malformed_external_id(app: CloudClients, reader_arn: str, external_id: str) -> None:
    assert (
        error_of(lambda: assume(app, reader_arn, external_id=external_id)).code
        == "InvalidParameter.ExternalId"
    )


def test_external_id_without_a_condition_is_ignored(app: CloudClients, reader_arn: str) -> None:
    assert assume(app, reader_arn, external_id="anything=goes:here/1").credentials.access_key_id


def test_missing_parameters(app: CloudClients, reader_arn: str) -> None:
    assert error_of(lambda: app.sts.assume_role(sts_models.AssumeRoleRequest(role_arn=reader_arn))).code == (
        "MissingParameter"
    )
    no_arn = sts_models.AssumeRoleRequest(role_session_name="alice")
    assert error_of(lambda: app.sts.assume_role(no_arn)).code == "MissingParameter"


def test_refusals_never_echo_secrets(app: CloudClients, reader_arn: str) -> None:
    creds = assume(app, reader_arn).credentials
    wrong = CloudClients(
        app.settings, CloudCredentials(creds.access_key_id, "not-the-secret", creds.security_token)
    )
    err = error_of(wrong.sts.get_caller_identity)
    assert err.code == "SignatureDoesNotMatch"
    for secret in (creds.access_key_secret, creds.security_token, app.credentials.access_key_secret):
        assert secret not in json.dumps(err.data)


# --- AssumeRole: the caller's own permission ----------------------------------------------------
NOT_AUTHORIZED = "You are not authorized to do this action. You should be authorized by RAM."


def custom_policy(root: CloudClients, name: str, *statements: dict) -> str:
    document = json.dumps({"Version": "1", "Statement": list(statements)})
    root.ram.create_policy(ram_models.CreatePolicyRequest(policy_name=name, policy_document=document))
    return name


@pytest.mark.parametrize("enforced", [False, True])
def test_a_user_without_sts_assume_role_is_refused(
    emulator: Emulator, root_clients: CloudClients, reader_arn: str, enforced: bool
) -> None:
    """STS checks the caller's permission itself: with or without the emulator's general enforcement."""
    if enforced:
        from local.emulator.enforcement import enforce

        enforce(emulator)
    bare = user_clients(root_clients, "bare", may_assume=False)
    err = error_of(lambda: assume(bare, reader_arn))
    assert (err.code, err.status_code) == ("NoPermission", 403)
    if not enforced:  # enforced, the general check answers first, naming action and resource
        assert err.data["Message"] == NOT_AUTHORIZED
    assert not emulator.sts_sessions

    root_clients.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name="bare"
        )
    )
    assert assume(bare, reader_arn).credentials.access_key_id.startswith("STS.")


def test_the_refusal_does_not_reveal_whether_the_role_exists(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    bare = user_clients(root_clients, "bare", may_assume=False)
    err = error_of(lambda: assume(bare, f"acs:ram::{emulator.account.account_id}:role/nobody"))
    assert (err.code, err.status_code) == ("NoPermission", 403)


def test_a_custom_policy_may_name_the_roles_a_user_may_assume(
    emulator: Emulator, root_clients: CloudClients, reader_arn: str
) -> None:
    account = emulator.account.account_id
    other_arn = create_role(root_clients, "KafkaWriter", trust(account_root(emulator)))
    scoped = user_clients(root_clients, "scoped", may_assume=False)
    policy = custom_policy(
        root_clients,
        "assume-reader-only",
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"acs:ram:*:{account}:role/kafkareader"},
    )
    root_clients.ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(policy_type="Custom", policy_name=policy, user_name="scoped")
    )
    assert assume(scoped, reader_arn).assumed_role_user.arn == f"acs:ram::{account}:role/kafkareader/alice"
    assert error_of(lambda: assume(scoped, other_arn)).code == "NoPermission"


def test_a_group_deny_beats_aliyun_sts_assume_role_access(
    root_clients: CloudClients, app: CloudClients, reader_arn: str
) -> None:
    policy = custom_policy(
        root_clients, "no-assume", {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}
    )
    root_clients.ram.create_group(ram_models.CreateGroupRequest(group_name="frozen"))
    root_clients.ram.attach_policy_to_group(
        ram_models.AttachPolicyToGroupRequest(policy_type="Custom", policy_name=policy, group_name="frozen")
    )
    root_clients.ram.add_user_to_group(ram_models.AddUserToGroupRequest(group_name="frozen", user_name="app"))
    assert error_of(lambda: assume(app, reader_arn)).code == "NoPermission"


def test_a_role_session_needs_the_permission_too(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    """Role chaining: the first role's policies, and the session policy it was assumed with, decide."""
    account = emulator.account.account_id
    first = create_role(root_clients, "Hop1", trust(account_root(emulator)))
    second = create_role(root_clients, "Hop2", trust(f"acs:ram::{account}:role/hop1"))

    def session(**extra: Any) -> CloudClients:
        creds = assume(app, first, **extra).credentials
        return CloudClients(
            app.settings, CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)
        )

    assert error_of(lambda: assume(session(), second)).code == "NoPermission"
    root_clients.ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", role_name="Hop1"
        )
    )
    assert assume(session(), second).credentials.access_key_id
    narrowed = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "alikafka:List*", "Resource": "*"}]}
    )
    assert error_of(lambda: assume(session(policy=narrowed), second)).code == "NoPermission"


# --- GetCallerIdentity ---------------------------------------------------------------------------
def test_caller_identity_of_root_and_user(
    emulator: Emulator, root_clients: CloudClients, app: CloudClients
) -> None:
    account = emulator.account.account_id
    root = root_clients.sts.get_caller_identity().body
    assert (root.identity_type, root.user_id, root.principal_id) == ("Account", account, account)

    user = app.sts.get_caller_identity().body
    app_user = emulator.account.ram.get_user("app")
    assert user.identity_type == "RAMUser"
    assert user.arn == f"acs:ram::{account}:user/app"
    assert user.user_id == user.principal_id == app_user.user_id
    assert user.role_id is None
