"""Lease and retention settings: read from the environment, validated, and used where they matter."""

from __future__ import annotations

import time

import pytest

from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.delivery.outbox import DeliveryRecord, Outbox
from shared.errors import ConfigError
from shared.fc import deadline_of
from shared.flows.users import lock_lease_until
from shared.runtime import Runtime, runtime_for
from shared.store import MemoryBackend, StateStore
from shared.store.sweep import SweepLog

SCOPED = {"RAMFLOW_MANAGED_USER_PREFIX": "rf-"}
LEASES = {
    "RAMFLOW_IDEMPOTENCY_LEASE_SECONDS": ("idempotency_lease_seconds", 60),
    "RAMFLOW_IDEMPOTENCY_TTL_SECONDS": ("idempotency_ttl_seconds", 7 * 86400),
    "RAMFLOW_USER_LOCK_SECONDS": ("user_lock_seconds", 300),
    "RAMFLOW_DELIVERY_LEASE_SECONDS": ("delivery_lease_seconds", 60),
    "RAMFLOW_SWEEP_LEASE_SECONDS": ("sweep_lease_seconds", 120),
}


def test_defaults() -> None:
    settings = Settings.from_env(SCOPED)
    assert {var: getattr(settings, field) for var, (field, _) in LEASES.items()} == {
        var: default for var, (_, default) in LEASES.items()
    }


@pytest.mark.parametrize("var", sorted(LEASES))
def test_each_is_read_from_its_variable(var: str) -> None:
    field, _ = LEASES[var]
    seconds = 90000 if field == "idempotency_ttl_seconds" else 3600  # past FC's redelivery window
    assert getattr(Settings.from_env({**SCOPED, var: str(seconds)}), field) == seconds
    assert Settings.variable_of(field) == var


@pytest.mark.parametrize("var", sorted(LEASES))
@pytest.mark.parametrize("value", ["soon-7d1x", "0", "-5", "2.5", "99999999"])
def test_a_bad_value_names_its_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**SCOPED, var: value})
    assert str(caught.value).startswith(f"invalid ramflow settings: {var}: ")


def test_a_bad_value_is_never_echoed() -> None:
    """A value in the wrong variable may be a secret pasted there by mistake."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**SCOPED, "RAMFLOW_USER_LOCK_SECONDS": "whsec_c2VjcmV0LXBhc3RlZC1oZXJl"})
    assert "whsec_" not in str(caught.value) and "c2VjcmV0" not in str(caught.value)


@pytest.mark.parametrize("ttl", ["3600", "86400"])
def test_replies_must_outlive_fcs_async_redelivery_window(ttl: str) -> None:
    """s.yaml's maxAsyncEventAgeInSeconds is 86400: a record gone sooner lets a redelivery run again."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**SCOPED, "RAMFLOW_IDEMPOTENCY_TTL_SECONDS": ttl})
    assert "RAMFLOW_IDEMPOTENCY_TTL_SECONDS" in str(caught.value)
    assert "86400" in str(caught.value) and "maxAsyncEventAgeInSeconds" in str(caught.value)
    assert Settings.from_env({**SCOPED, "RAMFLOW_IDEMPOTENCY_TTL_SECONDS": "86401"}).idempotency_ttl_seconds


def test_the_redelivery_window_is_the_one_s_yaml_deploys() -> None:
    from pathlib import Path

    import yaml

    from shared.config import FC_ASYNC_EVENT_MAX_AGE_SECONDS

    document = yaml.safe_load((Path(__file__).resolve().parents[1] / "s.yaml").read_text())
    assert document["vars"]["async"]["maxAsyncEventAgeInSeconds"] == FC_ASYNC_EVENT_MAX_AGE_SECONDS


def test_every_problem_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**SCOPED, "RAMFLOW_MAX_ATTEMPTS": "0", "RAMFLOW_SWEEP_LEASE_SECONDS": "1"})
    assert "RAMFLOW_MAX_ATTEMPTS: " in str(caught.value) and "RAMFLOW_SWEEP_LEASE_SECONDS: " in str(
        caught.value
    )


def test_the_event_lease_without_a_deadline_is_the_setting() -> None:
    before = time.time()
    assert (
        before + 90
        <= deadline_of(
            None,
            Settings.from_env(
                {**SCOPED, "RAMFLOW_IDEMPOTENCY_LEASE_SECONDS": "90"}
            ).idempotency_lease_seconds,
        )
        <= time.time() + 90
    )


def test_the_runtime_keeps_replies_as_long_as_the_setting() -> None:
    settings = Settings.from_env(
        {**SCOPED, "RAMFLOW_STORE": "memory://", "RAMFLOW_IDEMPOTENCY_TTL_SECONDS": "90000"}
    )
    runtime = runtime_for(settings, CloudCredentials("id", "secret"))
    assert runtime.store.idempotency.record_ttl_seconds == 90000


def test_user_locks_outside_an_invocation_last_the_setting() -> None:
    settings = Settings.from_env({**SCOPED, "RAMFLOW_USER_LOCK_SECONDS": "42"})
    runtime = Runtime(settings, CloudCredentials("id", "secret"), StateStore(MemoryBackend()))
    before = time.time()
    assert before + 42 <= lock_lease_until(runtime) <= time.time() + 42


def test_a_delivery_attempt_holds_its_record_for_the_setting() -> None:
    outbox = Outbox(MemoryBackend(), lease_seconds=17)
    record = DeliveryRecord(id="msg_1", destination="ops/webhook", event={"id": "e1"})
    assert outbox.add(record)
    found = outbox.get(record.destination, record.id)
    assert found is not None
    claimed = outbox.claim(*found, now=1000.0)
    assert claimed is not None and claimed[0].lease_until == 1017.0


def test_a_sweep_lease_lasts_the_setting() -> None:
    sweeps = SweepLog(MemoryBackend(), clock=lambda: 1000.0)
    sweep = sweeps.claim("tick-1", lease_seconds=45)
    assert sweep is not None and sweep.lease_until == 1045.0


@pytest.mark.parametrize("value", ["many", "0", "-1", "2.5", "10001"])
def test_reconcile_job_units_is_a_count_named_when_bad(value: str) -> None:
    assert Settings.from_env(SCOPED).reconcile_job_units == 50
    assert Settings.from_env({**SCOPED, "RAMFLOW_RECONCILE_JOB_UNITS": "7"}).reconcile_job_units == 7
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**SCOPED, "RAMFLOW_RECONCILE_JOB_UNITS": value})
    assert str(caught.value).startswith("invalid ramflow settings: RAMFLOW_RECONCILE_JOB_UNITS: ")
