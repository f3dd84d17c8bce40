"""`Cloud`: the four typed gateways a flow uses, sharing one runner (one rate limit, one set of stats)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from shared.cloud.clients import CloudClients, CloudCredentials
from shared.cloud.ratelimit import AccountBudget, limiters
from shared.cloud.retry import CallStats, CloudRunner, RetryPolicy
from shared.config import Settings
from shared.scope import UserScope

if TYPE_CHECKING:
    from shared.cloud.eventbridge import EventBridgeGateway
    from shared.cloud.ims import ImsGateway
    from shared.cloud.ram import RamGateway
    from shared.cloud.resource_manager import ResourceManagerGateway
    from shared.cloud.sts import StsGateway
    from shared.store.base import KeyValueBackend

PUBLIC = "public"


class Cloud:
    """Typed access to RAM, IMS, STS, ResourceManager and EventBridge for one account and one
    credential. Each gateway (and its SDK) is imported on first use: the token vendor loads STS only."""

    def __init__(
        self, clients: CloudClients, settings: Settings | None = None, *, runner: CloudRunner | None = None
    ):
        self.clients = clients
        self.settings = settings or clients.settings
        self.runner = runner or account_runner(self.settings, clients.credentials)

    @classmethod
    def from_settings(cls, settings: Settings, credentials: CloudCredentials) -> Cloud:
        return cls(CloudClients(settings, credentials), settings)

    @property
    def stats(self) -> CallStats:
        return self.runner.stats

    @cached_property
    def ram(self) -> RamGateway:
        from shared.cloud.ram import RamGateway

        gateway = RamGateway(self.clients.ram, self.runner)
        gateway.scope = UserScope(self.settings.managed_user_prefix)
        return gateway

    @cached_property
    def ims(self) -> ImsGateway:
        from shared.cloud.ims import ImsGateway

        return ImsGateway(
            self.clients.ims, self.runner, ram=self.ram, account_alias=self.settings.account_alias
        )

    @cached_property
    def sts(self) -> StsGateway:
        from shared.cloud.sts import StsGateway

        return StsGateway(self.clients.sts, self.runner)

    @cached_property
    def rm(self) -> ResourceManagerGateway:
        from shared.cloud.resource_manager import ResourceManagerGateway

        gateway = ResourceManagerGateway(self.clients.resource_manager, self.runner)
        gateway.scope = UserScope(self.settings.managed_user_prefix)
        return gateway

    @cached_property
    def eventbridge(self) -> EventBridgeGateway:
        from shared.cloud.eventbridge import EventBridgeGateway

        return EventBridgeGateway(self.clients.eventbridge, self.runner)


def account_runner(
    settings: Settings,
    credentials: CloudCredentials,
    *,
    store: KeyValueBackend | None = None,
    deadline: Callable[[], float | None] = lambda: None,
) -> CloudRunner:
    """A runner drawing on the account's API budget in `store`, shared by every instance using it;
    without a store, on the process-wide bucket of this endpoint and AccessKey.

    The budget is keyed by endpoint, not AccessKey: FC hands each instance its own STS AccessKey for
    the same role and account, and one store serves one account."""
    policy = RetryPolicy(max_attempts=settings.max_attempts, max_wait=settings.budget_max_wait)
    if store is not None:
        from shared.store.budget import budget_store

        budget = AccountBudget(
            budget_store(store), settings.cloud_endpoint or PUBLIC, settings.rate_limit_qps
        )
        return CloudRunner(budget, policy, deadline=deadline)
    limiter = limiters.get(
        settings.cloud_endpoint or PUBLIC, credentials.access_key_id, settings.rate_limit_qps
    )
    return CloudRunner(limiter, policy, deadline=deadline)
