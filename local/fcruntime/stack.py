"""The whole local cloud in one object: an emulator (embedded or remote), seeded, and the FC runtime.

`ramflow serve`, `make demo`, the tests and the benchmarks all start it the same way:

    with LocalStack() as stack:                      # embedded emulator, dev config, free ports
        requests.get(stack.runtime.url("token-vendor"), params={"token": ...})

Tests pass their own `emulator_server` so they can read its recorder and inject faults.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from local.dev import DEV_PICKUP_AUTH
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from local.fcruntime.credentials import (
    CredentialSource,
    FunctionRoleCredentials,
    NoCredentials,
    StaticCredentials,
)
from local.fcruntime.dispatcher import DeliveryLoop
from local.fcruntime.runtime import DEFAULT_FUNCTIONS_DIR, DEFAULT_S_YAML, FcRuntime
from local.fcruntime.signing import EmulatorKeys, IssuedSession, KeyResolver, StaticKeys
from local.roles import DEFAULT_RESULT_BUSES, Scope, result_buses
from local.seed import DEV_CONFIG, DevConfig, SeedResult, seed, seed_resource_groups
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import DEV_MODE_ENV, Settings
from shared.errors import ConfigError
from shared.runtime import use_clock


class RemoteEmulatorClock:
    """The clock of a `ramflow emulator` in another process, read through its control surface
    (`GET /emulator-api/clock`) at most every `refresh` seconds; between reads, the wall clock plus
    the last offset."""

    def __init__(self, endpoint: str, offset: float, refresh: float = 0.5):
        self.url = f"{endpoint.rstrip('/')}/emulator-api/clock"
        self.offset, self.refresh = offset, refresh
        self._read_at = time.monotonic()

    @classmethod
    def probe(cls, endpoint: str) -> RemoteEmulatorClock | None:
        """None unless `endpoint` is an emulator with a control surface (the real cloud has none)."""
        try:
            reply = requests.get(f"{endpoint.rstrip('/')}/emulator-api/clock", timeout=2)
            return cls(endpoint, float(reply.json()["offset_seconds"])) if reply.ok else None
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None

    def __call__(self) -> float:
        if time.monotonic() - self._read_at > self.refresh:
            self._read_at = time.monotonic()
            # on failure keep the last offset: the emulator may be busy
            with contextlib.suppress(requests.RequestException, ValueError, KeyError, TypeError):
                self.offset = float(requests.get(self.url, timeout=2).json()["offset_seconds"])
        return time.time() + self.offset


class LocalStack:
    """Emulator + seed + FC runtime. Without `cloud`, the emulator runs in this process."""

    def __init__(
        self,
        config: DevConfig | str | Path = DEV_CONFIG,
        *,
        port: int = 0,
        cloud: str | None = None,
        emulator_server: EmulatorServer | None = None,
        emulator_port: int = 0,
        root_key: tuple[str, str] = (DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET),
        seed_account: bool | None = None,
        workdir: Path | None = None,
        environment: dict[str, str] | None = None,
        s_yaml: Path = DEFAULT_S_YAML,
        functions_dir: Path = DEFAULT_FUNCTIONS_DIR,
        emulator_options: dict[str, Any] | None = None,
        store: str | None = None,
    ):
        self.config = config if isinstance(config, DevConfig) else DevConfig.load(config)
        self.port = port
        self.cloud = cloud.rstrip("/") if cloud else None
        self.root_key = root_key
        # Seeding is idempotent, so a remote emulator (`--cloud`) is seeded too unless told not to.
        self.seed_account = True if seed_account is None else seed_account
        self.store = store  # None: the configuration's (a store in the session's workdir)
        self.missing: list[str] = []  # what the functions will lack, in words (see `start`)
        self.environment = dict(environment or {})
        self.s_yaml = s_yaml
        self.functions_dir = functions_dir
        self._owns_emulator = emulator_server is None and cloud is None
        if self._owns_emulator:
            emulator = Emulator(
                account_id=self.config.account.id,
                account_alias=self.config.account.alias,
                root_key=root_key,
                **(emulator_options or {}),
            )
            emulator_server = EmulatorServer(emulator, port=emulator_port)
        self.emulator_server = emulator_server
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.seeded: SeedResult | None = None
        self.runtime: FcRuntime | None = None
        self.delivery: DeliveryLoop | None = None
        self._emulator_started = False
        self._previous_clock: Callable[[], float] | None = None

    @property
    def emulator(self) -> Emulator | None:
        return self.emulator_server.emulator if self.emulator_server is not None else None

    @property
    def cloud_endpoint(self) -> str:
        if self.cloud:
            return self.cloud
        assert self.emulator_server is not None
        return self.emulator_server.endpoint

    def root_clients(self) -> CloudClients:
        """The root key's clients (seeding). Their calls keep to the rate the functions are given
        (RAMFLOW_RATE_LIMIT_QPS, 20 calls/s by default), so a stack whose functions may go faster
        (the tests) is not seeded at the default rate."""
        env = {"RAMFLOW_CLOUD_ENDPOINT": self.cloud_endpoint}
        qps = self.environment.get("RAMFLOW_RATE_LIMIT_QPS") or os.environ.get("RAMFLOW_RATE_LIMIT_QPS")
        if qps:
            env["RAMFLOW_RATE_LIMIT_QPS"] = qps
        return CloudClients(Settings.from_env(env), CloudCredentials(*self.root_key))

    def start(self) -> LocalStack:
        if self._owns_emulator and self.emulator_server is not None:
            self.emulator_server.start()
            self._emulator_started = True
        emulator = self.emulator
        if emulator is not None and self.config.account.id not in emulator.accounts:
            emulator.add_account(self.config.account.id, self.config.account.alias, self.root_key)
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ramflow-serve-")
            self.workdir = Path(self._tmp.name)
        if self.seed_account:
            prefix = self._function_environment().get("RAMFLOW_MANAGED_USER_PREFIX", "")
            path = self._destinations_path()
            buses = result_buses(path) if path else DEFAULT_RESULT_BUSES  # as the committed documents
            scope = Scope(managed_user_prefix=prefix, result_buses=buses)
            self.seeded = seed(self.root_clients(), self.config, scope=scope)
            absent = seed_resource_groups(self.config, emulator=emulator, root=self.root_clients())
            if absent:
                self.missing.append(
                    f"resource groups {', '.join(absent)} (named by events/) do not exist at {self.cloud_endpoint}"
                )
            if emulator is not None:
                self._create_buses(emulator)
        if emulator is not None:
            emulator.reset_hooks.append(self._after_reset)
            # the functions read the emulator's clock: moving it (control surface) ages keys and grants
            self._previous_clock = use_clock(emulator.clock)
        elif self.cloud is not None and (remote := RemoteEmulatorClock.probe(self.cloud)) is not None:
            self._previous_clock = use_clock(remote)  # a `ramflow emulator` elsewhere: its clock too
        keys: KeyResolver = (
            EmulatorKeys(emulator)
            if emulator is not None
            else StaticKeys(dict([self.root_key]), self.config.account.id, sessions=self._issued_sessions)
        )
        self.runtime = FcRuntime(
            keys=keys,
            credentials=self._credentials(emulator),
            environment=self._function_environment(),
            s_yaml=self.s_yaml,
            functions_dir=self.functions_dir,
            port=self.port,
            account_id=self.config.account.id,
            workdir=self.workdir,
        )
        # webhook-ingress hands events to the other functions through this runtime's InvokeFunction
        self.runtime.environment = {"RAMFLOW_FC_ENDPOINT": self.runtime.endpoint, **self.runtime.environment}
        for spec in (self.runtime.functions or {}).values():  # like FC, start with each role's session
            self.runtime.credentials_for(spec)
        self.runtime.start()
        runtime = self.runtime
        self.delivery = DeliveryLoop(lambda: runtime.credentials).start()
        return self

    def _issued_sessions(self) -> list[IssuedSession]:
        from local.roles import ROLES

        issued = getattr(self.runtime.credentials if self.runtime else None, "issued", None)
        return issued({r.role: r.invokes for r in ROLES.values()}) if callable(issued) else []

    def _destinations_path(self) -> Path | None:
        path = self.environment.get("RAMFLOW_DESTINATIONS") or os.environ.get("RAMFLOW_DESTINATIONS")
        return Path(path) if path else None

    def _create_buses(self, emulator: Emulator) -> None:
        """The event buses the destinations name exist in the embedded emulator (seeded, like roles)."""
        path = self._destinations_path()
        if path is None:
            return
        account = emulator.accounts[self.config.account.id]
        for bus in result_buses(path):
            account.eventbridge.create_bus(bus)

    def _after_reset(self, emulator: Emulator) -> None:
        """The control surface's reset emptied the cloud: seed it again and take a fresh role
        session, so the functions keep working (ramflow's own store is left as it is)."""
        if self.seed_account:
            self.seeded = seed(self.root_clients(), self.config)
            seed_resource_groups(self.config, emulator=emulator, root=self.root_clients())
        if self.runtime is not None:
            self.runtime.credentials = self._credentials(emulator)

    def _credentials(self, emulator: Emulator | None) -> CredentialSource:
        if self.seeded is not None:
            return FunctionRoleCredentials(
                cloud_endpoint=self.cloud_endpoint,
                identity=self.seeded.fc_identity,
                roles={arn.rsplit("role/", 1)[1]: arn for arn in self.seeded.function_roles.values()},
                clock=emulator.clock if emulator is not None else time.time,
            )
        if os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
            try:
                return StaticCredentials(CloudCredentials.from_env())
            except ConfigError:
                pass
        self.missing.append(
            "credentials for the functions: not seeded (--no-seed) and ALIBABA_CLOUD_ACCESS_KEY_ID / "
            "_SECRET are not set, so every cloud call fails; drop --no-seed or set them"
        )
        return NoCredentials()

    def _function_environment(self) -> dict[str, str]:
        assert self.workdir is not None
        env = {
            DEV_MODE_ENV: "1",  # the local runtime trusts the development secret and key; FC never does
            "RAMFLOW_CLOUD_ENDPOINT": self.cloud_endpoint,
            "RAMFLOW_ENTITLEMENTS": str(self.config.entitlements),
            "RAMFLOW_PICKUP_AUTH": str(DEV_PICKUP_AUTH),  # the development issuer, for credential-pickup
            "RAMFLOW_ACCOUNT_ALIAS": self.config.account.alias,
            **self.config.environment_for(self.workdir),
            **({"RAMFLOW_STORE": self.store} if self.store else {}),
            **self.environment,
        }
        return env

    def stop(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None
        if self.emulator is not None and self._after_reset in self.emulator.reset_hooks:
            self.emulator.reset_hooks.remove(self._after_reset)
        if self._previous_clock is not None:
            use_clock(self._previous_clock)
            self._previous_clock = None
        if self.runtime is not None:
            self.runtime.stop()
        if self._emulator_started and self.emulator_server is not None:
            self.emulator_server.stop()
            self._emulator_started = False
        if self._tmp is not None:
            from shared import audit

            if audit._sink is not None and Path(self._tmp.name) in audit._sink.parents:
                audit.configure_audit(None)  # the functions' audit file goes with the scratch folder
            self._tmp.cleanup()
            self._tmp = None
            self.workdir = None

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
