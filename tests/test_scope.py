"""The managed-user prefix: required (or the unscoped mode chosen explicitly, and warned about at
every cold start), and the same boundary in code as in the roles' policies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.errors import ConfigError, GuardDenied, OutOfScope
from shared.runtime import runtime_for
from shared.scope import UserScope, check_configuration, check_managed_name

KEY = CloudCredentials("AKID-scope", "secret")


def test_without_a_prefix_or_the_explicit_unscoped_mode_nothing_starts(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/a.db", allow_unscoped_users=False)
    with pytest.raises(ConfigError, match="RAMFLOW_MANAGED_USER_PREFIX.*RAMFLOW_ALLOW_UNSCOPED_USERS"):
        runtime_for(settings, KEY)


def test_the_unscoped_mode_warns_at_every_cold_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ramflow.scope")
    for name in ("b", "c"):  # two instances' cold starts (a Runtime per settings)
        settings = Settings(store=f"sqlite:///{tmp_path}/{name}.db", allow_unscoped_users=True)
        runtime_for(settings, KEY)
        runtime_for(settings, KEY)  # warm: no second warning
    warnings = [r for r in caplog.records if "RAMFLOW_ALLOW_UNSCOPED_USERS" in r.getMessage()]
    assert len(warnings) == 2


def test_a_prefix_starts_quietly_and_must_be_a_name_part(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ramflow.scope")
    check_configuration("rf-", allow_unscoped=False)
    assert caplog.records == []
    with pytest.raises(ConfigError, match="RAMFLOW_MANAGED_USER_PREFIX"):
        check_configuration("rf/*", allow_unscoped=False)


def test_names_outside_the_prefix_are_refused_naming_the_field() -> None:
    check_managed_name("rf-alice", "rf-")
    with pytest.raises(GuardDenied) as refused:
        check_managed_name("alice", "rf-")
    assert refused.value.errors == [
        {"field": "data.user.logon_name", "reason": "must start with the managed-user prefix 'rf-'"}
    ]
    with pytest.raises(OutOfScope) as out:
        UserScope("rf-").check("ops-admin", "CreateAccessKey")
    assert out.value.action == "CreateAccessKey" and out.value.code == "Ramflow.UnmanagedUser"
    UserScope("").check("anyone", "CreateAccessKey")  # the unscoped mode: the code's tag checks remain
