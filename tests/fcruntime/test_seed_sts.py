"""STS itself (no policy enforcement switched on) lets the seeded callers assume what they must:
the local FC identity every function's role, and a session of the token vendor's role every vended
role; no other function's role may assume one."""

from __future__ import annotations

import pytest
from alibabacloud_sts20150401 import models as sts_models
from Tea.exceptions import TeaException

from local.emulator.core import Emulator
from local.seed import DevConfig, seed
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.entitlements import Entitlements


def _assume(clients: CloudClients, arn: str, session: str, external_id: str | None = None) -> CloudClients:
    request = sts_models.AssumeRoleRequest(role_arn=arn, role_session_name=session, external_id=external_id)
    creds = clients.sts.assume_role(request).body.credentials
    return CloudClients(
        clients.settings, CloudCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)
    )


def test_the_seeded_callers_hold_sts_assume_role_for_what_they_assume(
    emulator: Emulator, root_clients: CloudClients
) -> None:
    config = DevConfig.load()
    emulator.add_account(config.account.id, config.account.alias)
    result = seed(root_clients, config)
    assert emulator.authorizer is None  # STS checks the caller's permission on its own

    fc = CloudClients(root_clients.settings, result.fc_identity)
    sessions = {function: _assume(fc, arn, "fc-local") for function, arn in result.function_roles.items()}
    vended = {g.role_arn: g.external_id for g in Entitlements.load(config.entitlements).roles.values()}
    assert vended and set(sessions) >= {"token-vendor", "access-approved"}
    for arn, external_id in vended.items():
        who = _assume(sessions["token-vendor"], arn, "app", external_id).sts.get_caller_identity().body.arn
        assert who.endswith(f":assumed-role/{arn.rsplit('/', 1)[1]}/app")
        with pytest.raises(TeaException) as refused:
            _assume(sessions["access-approved"], arn, "app", external_id)
        assert refused.value.code == "NoPermission"
