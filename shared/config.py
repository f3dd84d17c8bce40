"""ramflow's settings: one typed object, read from the environment once per invocation.

Every setting is listed in the README with its variable and default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from shared.durations import parse_duration
from shared.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CATALOG = PACKAGE_DIR / "policy" / "catalog.yaml"

# Defaults of the lease and retention settings below; the store classes take the same defaults so a
# store built without settings (tests, the CLI) behaves as a deployed function does.
DEFAULT_IDEMPOTENCY_LEASE_SECONDS = 60
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 7 * 86400
FC_ASYNC_EVENT_MAX_AGE_SECONDS = 86400
"""s.yaml `maxAsyncEventAgeInSeconds`: FC may deliver an async event again until it is this old, so an
event's record must outlive it or a late redelivery runs the event a second time."""
DEFAULT_USER_LOCK_SECONDS = 300
DEFAULT_DELIVERY_LEASE_SECONDS = 60
DEFAULT_SWEEP_LEASE_SECONDS = 120


# Set to 1 by the local runtime (`ramflow serve`, `make demo`) and by tests that use the development
# configuration; never in a deployment. Only then are the published development credentials accepted.
DEV_MODE_ENV = "RAMFLOW_DEV_MODE"


def dev_mode() -> bool:
    """Whether published development credentials (the development webhook secret, the dev JWT key) may be trusted."""
    return os.environ.get(DEV_MODE_ENV) == "1"


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Settings(BaseModel):
    """What a function needs to know about its world."""

    cloud_endpoint: str | None = Field(
        None, description="RAMFLOW_CLOUD_ENDPOINT: one base URL for every cloud API"
    )
    region: str = Field("cn-hangzhou", description="RAMFLOW_REGION (or ALIBABA_CLOUD_REGION_ID)")
    store: str = Field(
        "sqlite:////tmp/ramflow/state.db", description="RAMFLOW_STORE: sqlite:///, redis://, tablestore://"
    )
    catalog_path: Path = Field(DEFAULT_CATALOG, description="RAMFLOW_CATALOG: the reviewed policy catalog")
    entitlements_path: Path | None = Field(
        None, description="RAMFLOW_ENTITLEMENTS: token-vendor configuration"
    )
    webhook_secrets: list[str] = Field(
        default_factory=list, description="RAMFLOW_WEBHOOK_SECRET: whsec_… list"
    )
    account_alias: str | None = Field(
        None, description="RAMFLOW_ACCOUNT_ALIAS: skips GetAccountAlias when set"
    )
    max_concurrency: int = Field(
        8, ge=1, le=64, description="RAMFLOW_MAX_CONCURRENCY: parallel calls per step"
    )
    rate_limit_qps: float = Field(20.0, gt=0, description="RAMFLOW_RATE_LIMIT_QPS: per-account API call rate")
    max_attempts: int = Field(6, ge=1, le=20, description="RAMFLOW_MAX_ATTEMPTS: tries per cloud call")
    budget_max_wait: float = Field(
        30.0, ge=0, le=900, description="RAMFLOW_BUDGET_MAX_WAIT: seconds a call may wait for API budget"
    )
    reconcile_remediate: bool = Field(
        False, description="RAMFLOW_RECONCILE_REMEDIATE: fix drift, not only report"
    )
    audit_path: Path | None = Field(
        None, description="RAMFLOW_AUDIT_PATH: also append audit lines to this file"
    )
    destinations_path: Path | None = Field(
        None, description="RAMFLOW_DESTINATIONS: where results and notices go, per event source"
    )
    pickup_auth_path: Path | None = Field(
        None, description="RAMFLOW_PICKUP_AUTH: issuer, audience and JWKS of credential-pickup callers"
    )
    pickup_ttl_seconds: int = Field(
        default=7 * 86400,
        ge=60,
        le=90 * 86400,
        description="RAMFLOW_PICKUP_TTL: how long a sealed secret waits",
    )
    key_max_age_days: int = Field(
        90, ge=1, le=3650, description="RAMFLOW_KEY_MAX_AGE_DAYS: ram-user-ak-create-date-expired-check days"
    )
    key_unused_days: int = Field(
        90, ge=1, le=3650, description="RAMFLOW_KEY_UNUSED_DAYS: ram-user-ak-used-expired-check days"
    )
    key_quantity_days: int = Field(
        30, ge=0, le=3650, description="RAMFLOW_KEY_QUANTITY_DAYS: ram-user-activated-ak-quantity-check days"
    )
    key_rotation: bool = Field(False, description="RAMFLOW_KEY_ROTATION: rotate keys past their age")
    key_rotation_overlap: timedelta = Field(
        timedelta(days=7), description="RAMFLOW_KEY_ROTATION_OVERLAP: both keys work this long"
    )
    key_rotation_delete_after: timedelta = Field(
        timedelta(days=7),
        description="RAMFLOW_KEY_ROTATION_DELETE_AFTER: old key Inactive this long, then deleted",
    )
    key_unused_deactivate: bool = Field(
        False, description="RAMFLOW_KEY_UNUSED_DEACTIVATE: set unused keys Inactive (never deleted)"
    )

    @field_validator("key_rotation_overlap", "key_rotation_delete_after", mode="before")
    @classmethod
    def _iso_duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    managed_user_prefix: str = Field(
        "", description="RAMFLOW_MANAGED_USER_PREFIX: the only user names ramflow creates or changes"
    )
    allow_unscoped_users: bool = Field(
        False, description="RAMFLOW_ALLOW_UNSCOPED_USERS: run without a prefix (warned at every cold start)"
    )
    fanout_threshold: int = Field(
        25,
        ge=0,
        description="RAMFLOW_FANOUT_THRESHOLD: an owner with more users is offboarded as a job of "
        "per-user units (asynchronous InvokeFunction); 0: never",
    )
    reconcile_job_units: int = Field(
        50,
        ge=1,
        le=10000,
        description="RAMFLOW_RECONCILE_JOB_UNITS: most units of stalled jobs one reconcile tick runs itself "
        "(the next tick goes on with the rest)",
    )
    fc_endpoint: str | None = Field(
        None, description="RAMFLOW_FC_ENDPOINT: Function Compute API base URL for InvokeFunction"
    )
    idempotency_lease_seconds: int = Field(
        DEFAULT_IDEMPOTENCY_LEASE_SECONDS,
        ge=1,
        le=86400,
        description="RAMFLOW_IDEMPOTENCY_LEASE_SECONDS: an event's lease when FC gives no deadline",
    )
    idempotency_ttl_seconds: int = Field(
        DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        ge=3600,
        le=366 * 86400,
        description="RAMFLOW_IDEMPOTENCY_TTL_SECONDS: how long a completed event's reply is kept for duplicates",
    )
    user_lock_seconds: int = Field(
        DEFAULT_USER_LOCK_SECONDS,
        ge=1,
        le=86400,
        description="RAMFLOW_USER_LOCK_SECONDS: an owner or user lock's lease outside an invocation (CLI)",
    )
    user_lock_wait_seconds: float = Field(
        10.0,
        ge=0,
        le=600,
        description="RAMFLOW_USER_LOCK_WAIT_SECONDS: how long an offboarding waits for a user's lock held elsewhere",
    )
    delivery_lease_seconds: int = Field(
        DEFAULT_DELIVERY_LEASE_SECONDS,
        ge=1,
        le=3600,
        description="RAMFLOW_DELIVERY_LEASE_SECONDS: one attempt's hold on a result delivery",
    )
    sweep_lease_seconds: int = Field(
        DEFAULT_SWEEP_LEASE_SECONDS,
        ge=10,
        le=3600,
        description="RAMFLOW_SWEEP_LEASE_SECONDS: reconcile's sweep lease after its last save",
    )
    jwt_max_age_seconds: int = Field(
        43200, ge=60, description="RAMFLOW_JWT_MAX_AGE: token vendor refuses JWTs issued longer ago (iat)"
    )
    jwt_max_lifetime_seconds: int = Field(
        86400,
        ge=60,
        description="RAMFLOW_JWT_MAX_LIFETIME: token vendor refuses JWTs living longer (exp - iat)",
    )

    @field_validator("cloud_endpoint", "fc_endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("idempotency_ttl_seconds")
    @classmethod
    def _outlives_redelivery(cls, value: int) -> int:
        if value <= FC_ASYNC_EVENT_MAX_AGE_SECONDS:
            raise ValueError(
                f"must be longer than Function Compute's async redelivery window "
                f"({FC_ASYNC_EVENT_MAX_AGE_SECONDS} s, s.yaml maxAsyncEventAgeInSeconds): an event "
                "redelivered after its record expired would run again"
            )
        return value

    @model_validator(mode="after")
    def _replies_outlive_leases(self) -> Settings:
        """A reply dropped while its event may still run would let a duplicate run it again."""
        if self.idempotency_ttl_seconds <= max(self.idempotency_lease_seconds, self.user_lock_seconds):
            raise ValueError(
                "RAMFLOW_IDEMPOTENCY_TTL_SECONDS must be longer than RAMFLOW_IDEMPOTENCY_LEASE_SECONDS "
                "and RAMFLOW_USER_LOCK_SECONDS"
            )
        return self

    @classmethod
    def variable_of(cls, field: str) -> str:
        """The environment variable of a field, as its description names it."""
        description = cls.model_fields[field].description or field
        return description.partition(":")[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw: dict[str, object] = {
            "cloud_endpoint": env.get("RAMFLOW_CLOUD_ENDPOINT") or None,
            "region": env.get("RAMFLOW_REGION") or env.get("ALIBABA_CLOUD_REGION_ID") or "cn-hangzhou",
            "store": env.get("RAMFLOW_STORE") or cls.model_fields["store"].default,
            "catalog_path": env.get("RAMFLOW_CATALOG") or DEFAULT_CATALOG,
            "entitlements_path": env.get("RAMFLOW_ENTITLEMENTS") or None,
            "webhook_secrets": _split(env.get("RAMFLOW_WEBHOOK_SECRET")),
            "account_alias": env.get("RAMFLOW_ACCOUNT_ALIAS") or None,
            "reconcile_remediate": _flag(env.get("RAMFLOW_RECONCILE_REMEDIATE")),
            "audit_path": env.get("RAMFLOW_AUDIT_PATH") or None,
            "destinations_path": env.get("RAMFLOW_DESTINATIONS") or None,
            "pickup_auth_path": env.get("RAMFLOW_PICKUP_AUTH") or None,
            "key_rotation": _flag(env.get("RAMFLOW_KEY_ROTATION")),
            "key_unused_deactivate": _flag(env.get("RAMFLOW_KEY_UNUSED_DEACTIVATE")),
            "managed_user_prefix": env.get("RAMFLOW_MANAGED_USER_PREFIX") or "",
            "allow_unscoped_users": _flag(env.get("RAMFLOW_ALLOW_UNSCOPED_USERS")),
            "fc_endpoint": env.get("RAMFLOW_FC_ENDPOINT") or None,
        }
        for field, var in (
            ("max_concurrency", "RAMFLOW_MAX_CONCURRENCY"),
            ("rate_limit_qps", "RAMFLOW_RATE_LIMIT_QPS"),
            ("max_attempts", "RAMFLOW_MAX_ATTEMPTS"),
            ("pickup_ttl_seconds", "RAMFLOW_PICKUP_TTL"),
            ("key_max_age_days", "RAMFLOW_KEY_MAX_AGE_DAYS"),
            ("key_unused_days", "RAMFLOW_KEY_UNUSED_DAYS"),
            ("key_quantity_days", "RAMFLOW_KEY_QUANTITY_DAYS"),
            ("key_rotation_overlap", "RAMFLOW_KEY_ROTATION_OVERLAP"),
            ("key_rotation_delete_after", "RAMFLOW_KEY_ROTATION_DELETE_AFTER"),
            ("budget_max_wait", "RAMFLOW_BUDGET_MAX_WAIT"),
            ("jwt_max_age_seconds", "RAMFLOW_JWT_MAX_AGE"),
            ("jwt_max_lifetime_seconds", "RAMFLOW_JWT_MAX_LIFETIME"),
            ("idempotency_lease_seconds", "RAMFLOW_IDEMPOTENCY_LEASE_SECONDS"),
            ("idempotency_ttl_seconds", "RAMFLOW_IDEMPOTENCY_TTL_SECONDS"),
            ("user_lock_seconds", "RAMFLOW_USER_LOCK_SECONDS"),
            ("user_lock_wait_seconds", "RAMFLOW_USER_LOCK_WAIT_SECONDS"),
            ("delivery_lease_seconds", "RAMFLOW_DELIVERY_LEASE_SECONDS"),
            ("sweep_lease_seconds", "RAMFLOW_SWEEP_LEASE_SECONDS"),
            ("fanout_threshold", "RAMFLOW_FANOUT_THRESHOLD"),
            ("reconcile_job_units", "RAMFLOW_RECONCILE_JOB_UNITS"),
        ):
            if env.get(var):
                raw[field] = env[var]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"invalid ramflow settings: {cls._problems(exc)}") from None

    @classmethod
    def _problems(cls, exc: ValidationError) -> str:
        """Each problem named by its variable, never echoing the value (a setting may be a secret)."""
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{cls.variable_of(field)}: {message}" if field in cls.model_fields else message)
        return "; ".join(problems)
