"""Everything a flow depends on, built once per warm function instance.

Flows receive a `Runtime` and never build clients, stores or catalogs themselves, so tests can
hand them any combination (the emulator, a memory store, a test catalog).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.audit import configure_audit
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.scope import check_configuration
from shared.store import StateStore

if TYPE_CHECKING:
    from shared.cloud import Cloud
    from shared.cloud.fc import FcGateway
    from shared.delivery.config import Destinations
    from shared.policy.catalog import Catalog


invocation_deadline: ContextVar[float | None] = ContextVar("invocation_deadline", default=None)
"""When the current invocation will be stopped (epoch seconds): leases taken inside it last that long."""


_clock_source: Callable[[], float] = time.time
FC_INVOKE_QPS = 100.0
"""Asynchronous InvokeFunction calls per second per instance when handing units on."""


def utc_now() -> datetime:
    """ramflow's notion of now: the wall clock, or in a local run the emulator's (`use_clock`)."""
    return datetime.fromtimestamp(_clock_source(), timezone.utc)


def use_clock(source: Callable[[], float] | None) -> Callable[[], float]:
    """Local runs only: make flows read `source` (e.g. `Emulator.clock`) so that moving the
    emulator's clock moves ramflow's key ages and grace periods with it. None restores the wall
    clock. Returns the previous source."""
    global _clock_source
    previous, _clock_source = _clock_source, source or time.time
    return previous


@dataclass
class Runtime:
    settings: Settings
    credentials: CloudCredentials
    store: StateStore
    clock: Any = field(default=utc_now)

    @cached_property
    def cloud(self) -> Cloud:
        """Signed with this runtime's credentials, paced by the account's API budget in its store."""
        from shared.cloud import Cloud, account_runner

        runner = account_runner(
            self.settings, self.credentials, store=self.store.backend, deadline=invocation_deadline.get
        )
        return Cloud(CloudClients(self.settings, self.credentials), self.settings, runner=runner)

    @cached_property
    def functions(self) -> FcGateway | None:
        """InvokeFunction, where functions run in Function Compute (`FC_FUNCTION_NAME`) or the local FC
        runtime (`RAMFLOW_FC_ENDPOINT`, which `ramflow serve` sets). Elsewhere (tests, `ramflow
        invoke`): None, and large jobs run in this invocation instead of fanning out."""
        if not (self.settings.fc_endpoint or os.environ.get("FC_FUNCTION_NAME")):
            return None
        from shared.cloud.fc import FcGateway
        from shared.cloud.ratelimit import limiters
        from shared.cloud.retry import CloudRunner, RetryPolicy

        # FC's own quota, not the RAM budget: handing units on never waits behind RAM calls
        bucket = limiters.get(
            f"fc:{self.settings.fc_endpoint or self.settings.region}", "invoke", FC_INVOKE_QPS
        )
        runner = CloudRunner(bucket, RetryPolicy(max_attempts=self.settings.max_attempts))
        return FcGateway(self.settings, self.credentials, runner)

    @cached_property
    def catalog(self) -> Catalog:
        from shared.policy.catalog import Catalog

        return Catalog.load(self.settings.catalog_path)

    @cached_property
    def destinations(self) -> Destinations:
        """Where results and notices go (RAMFLOW_DESTINATIONS); none configured: nothing is sent."""
        from shared.delivery.config import Destinations

        return Destinations.load(self.settings.destinations_path)

    @property
    def account_alias(self) -> str:
        return self.cloud.ims.account_alias

    def logon_principal(self, user_name: str) -> str:
        """`<user>@<alias>.onaliyun.com`; the alias is read once per warm instance (IMS keeps it)."""
        return self.cloud.ims.principal_name(user_name)


_instances: dict[str, Runtime] = {}
_instances_lock = threading.Lock()


def runtime_for(settings: Settings, credentials: CloudCredentials) -> Runtime:
    """One Runtime per settings in a warm instance: connections and caches survive between
    invocations, as FC keeps the process alive.

    FC rotates the role's STS session: new credentials replace the Runtime (its cloud clients sign
    with them) and the old one is dropped. The store does not depend on the credentials, so the new
    Runtime keeps it: rotations never pile up stores or connections, and an invocation still running
    on the old Runtime keeps a working store."""
    key = settings.model_dump_json()
    with _instances_lock:
        current = _instances.get(key)
        if current is not None and current.credentials == credentials:
            return current
        if current is None:  # a cold start (or new settings): the scope is checked, and warned, each time
            check_configuration(settings.managed_user_prefix, settings.allow_unscoped_users)
            store = StateStore.from_url(settings.store, record_ttl_seconds=settings.idempotency_ttl_seconds)
            if settings.audit_path:
                configure_audit(settings.audit_path)
        else:
            store = current.store
        runtime = Runtime(settings, credentials, store)
        _instances[key] = runtime
        return runtime
