"""What every operator command shares: where the deployment is, which credentials, and plain errors.

A deployment is named once: a profile in `~/.ramflow/profiles.yaml` (or `RAMFLOW_PROFILES`) holds its
store, endpoint, region and the Alibaba Cloud CLI profile to sign with, and `--profile NAME` (or
`RAMFLOW_PROFILE`) picks it; `--store` / `--cloud` override it for one command. Credentials come from
the default chain of `alibabacloud-credentials` (environment, OIDC, the `aliyun` CLI's profiles,
`~/.alibabacloud/credentials.ini`, the ECS instance's RAM role, a credentials URI):
https://github.com/aliyun/credentials-python#credential-provider-chain

User mistakes end with one line on stderr naming the flag, the value and the fix, and exit 1, never
a traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.audit import configure_audit
from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.errors import ConfigError
from shared.runtime import Runtime
from shared.store import StateStore

DEFAULT_PROFILES = Path.home() / ".ramflow" / "profiles.yaml"
LOCAL_STORE_SCHEMES = ("sqlite:", "memory:")
UNREACHABLE_CODES = {"ConnectionError", "Timeout"}


STORE_OPTION = typer.Option(
    None, "--store", help="The deployment's state store URL (over the profile and RAMFLOW_STORE)."
)
PROFILE_OPTION = typer.Option(
    None, "--profile", help="A deployment in ~/.ramflow/profiles.yaml (or RAMFLOW_PROFILE): store, endpoint."
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def check_endpoint(value: str | None, flag: str = "--cloud") -> str | None:
    """`--cloud` must be a URL: say so with an example instead of a settings dump."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1].strip("/")) == 0:
        example = f"http://{value.split('://', 1)[-1].strip('/') or '127.0.0.1:8790'}"
        raise fail(f"{flag} {value!r}: must be a URL starting with http:// or https://, e.g. {example}")
    return value.rstrip("/")


@contextmanager
def port_guard(flag: str, host: str, port: int) -> Iterator[None]:
    """A port already in use (or not ours to bind) is the user's to change, not a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise fail(
                f"{flag} {port}: {host}:{port} is already in use; pick another port, or 0 for a free one"
            ) from None
        if exc.errno in {errno.EACCES, errno.EADDRNOTAVAIL}:
            raise fail(
                f"{flag} {port}: cannot listen on {host}:{port} ({exc.strerror}); pick another"
            ) from None
        raise


class Profile(BaseModel):
    """One deployment: where its state lives and which endpoint and credentials reach it."""

    model_config = ConfigDict(extra="forbid")
    store: str
    endpoint: str | None = None  # None: the public endpoints
    region: str | None = None
    credentials_profile: str | None = None  # the `aliyun` CLI profile (ALIBABA_CLOUD_PROFILE)


def load_profile(name: str, path: Path | None = None) -> Profile:
    path = path or Path(os.environ.get("RAMFLOW_PROFILES") or DEFAULT_PROFILES)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise fail(
            f'--profile {name}: {path} does not exist; write it (README "Operating ramflow") or pass --store'
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"--profile {name}: {path} cannot be read ({type(exc).__name__})") from None
    profiles = raw.get("profiles") if isinstance(raw, dict) else None
    if not isinstance(profiles, dict) or name not in profiles:
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
        raise fail(f"--profile {name}: no such profile in {path} (profiles: {known})")
    try:
        return Profile.model_validate(profiles[name])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"--profile {name}: {path}: profiles.{name}.{where}: {first['msg']}") from None


@dataclass
class Target:
    """Settings for one command, and whether its store was named (never a silent default)."""

    settings: Settings
    store_named: bool
    credentials_profile: str | None

    @property
    def local_store(self) -> bool:
        return self.settings.store.startswith(LOCAL_STORE_SCHEMES)

    @property
    def endpoint(self) -> str:
        return self.settings.cloud_endpoint or "the public Alibaba Cloud endpoints"


def target(
    *,
    cloud: str | None = None,
    store: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Settings from the environment, laid over by the profile, then by `--store` / `--cloud`."""
    env = dict(os.environ if env is None else env)
    cloud = check_endpoint(cloud)
    profile = profile or env.get("RAMFLOW_PROFILE") or None
    chosen = load_profile(profile) if profile else None
    store_named = bool(store or chosen or env.get("RAMFLOW_STORE"))
    if chosen is not None:
        env["RAMFLOW_STORE"] = chosen.store
        if chosen.endpoint:
            env["RAMFLOW_CLOUD_ENDPOINT"] = chosen.endpoint
        if chosen.region:
            env["RAMFLOW_REGION"] = chosen.region
    if store:
        env["RAMFLOW_STORE"] = store
    if cloud:
        env["RAMFLOW_CLOUD_ENDPOINT"] = cloud
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return Target(settings, store_named, chosen.credentials_profile if chosen else None)


def credentials(profile: str | None = None) -> CloudCredentials:
    """The default credential chain of alibabacloud-credentials, read once for this command."""
    if not profile and os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        return CloudCredentials.from_env()  # the chain's first link, without its import cost
    from alibabacloud_credentials.exceptions import CredentialException
    from alibabacloud_credentials.provider import CLIProfileCredentialsProvider
    from alibabacloud_credentials.provider.default import DefaultCredentialsProvider

    logging.getLogger("credentials").setLevel(logging.CRITICAL)  # the chain logs each miss with a traceback
    provider: Any = (
        CLIProfileCredentialsProvider(profile_name=profile) if profile else DefaultCredentialsProvider()
    )
    try:
        found = provider.get_credentials()
    except (CredentialException, OSError, ValueError) as exc:
        where = f"the aliyun CLI profile {profile!r}" if profile else "the default credential chain"
        raise ConfigError(
            f"no credentials from {where} ({str(exc).split(':', 1)[0]}): set ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET, run `aliyun configure`, or run on ECS with a RAM role"
        ) from None
    return CloudCredentials(
        found.get_access_key_id(), found.get_access_key_secret(), found.get_security_token() or None
    )


def runtime(t: Target) -> Runtime:
    """A Runtime over the target's store, signing with the credential chain; audit to the file if set."""
    if t.settings.audit_path:
        configure_audit(t.settings.audit_path)
    try:
        creds = credentials(t.credentials_profile)
        store = StateStore.from_url(t.settings.store)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return Runtime(t.settings, creds, store)


def open_store(t: Target) -> StateStore:
    """The target's store, for commands that only read it."""
    try:
        return StateStore.from_url(t.settings.store)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@contextmanager
def reading(t: Target) -> Iterator[None]:
    """A store that does not answer is named (without credentials), not a traceback."""
    from shared.errors import StoreError

    try:
        yield
    except StoreError as exc:
        from local.report import safe_store

        raise fail(
            f"the store {safe_store(t.settings.store)} did not answer: {exc}; check --store / --profile"
        ) from None


def refuse_local_store(t: Target, what: str) -> None:
    """Deployment state written into a local file is lost to the deployed functions: refuse that
    unless the operator named the store on purpose."""
    if t.settings.cloud_endpoint is None and t.local_store:
        if not t.store_named:
            raise fail(
                f"{what} would record deployment state in the local default store {t.settings.store}, where "
                "the deployed functions never see it: name the deployment's store with --profile NAME or "
                "--store URL (e.g. redis://r-….redis.rds.aliyuncs.com:6379/0)"
            )
        print(
            f"warning: {what} writes to the local store {t.settings.store} while acting on the real cloud",
            file=sys.stderr,
        )


def unreachable(errors: list[dict[str, str]], t: Target) -> str | None:
    """One sentence naming the endpoint when calls got no answer at all."""
    codes = {e.get("reason") for e in errors}
    if codes & UNREACHABLE_CODES:
        fix = (
            "is it running? check --cloud / RAMFLOW_CLOUD_ENDPOINT"
            if t.settings.cloud_endpoint
            else "check the network and RAMFLOW_REGION"
        )
        return f"no answer from the cloud endpoint {t.endpoint}: {fix}"
    return None
