"""Official Alibaba Cloud SDK clients, built once per invocation from settings and credentials.

`RAMFLOW_CLOUD_ENDPOINT` points every client at one base URL (the emulator); otherwise each
client talks to its public endpoint. Each SDK is imported when its client is first built: a
function pays at cold start only for the clients its flows call (bench/cold_start.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.config import Settings
from shared.errors import ConfigError

if TYPE_CHECKING:
    from alibabacloud_ims20190815.client import Client as ImsClient
    from alibabacloud_ram20150501.client import Client as RamClient
    from alibabacloud_resourcemanager20200331.client import Client as ResourceManagerClient
    from alibabacloud_sts20150401.client import Client as StsClient
    from alibabacloud_tea_openapi.utils_models import Config

PUBLIC_ENDPOINTS = {
    "ram": "ram.aliyuncs.com",
    "ims": "ims.aliyuncs.com",
    "sts": "sts.aliyuncs.com",
    "resourcemanager": "resourcemanager.aliyuncs.com",
    # Regional (the SDK's own endpoint map: eventbridge-console.<region>.aliyuncs.com).
    "eventbridge": "eventbridge-console.{region}.aliyuncs.com",
}


@dataclass(frozen=True)
class CloudCredentials:
    """An AccessKey pair, optionally with an STS token. The repr never shows the secret parts."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, required: bool = True) -> CloudCredentials:
        """Credentials from ALIBABA_CLOUD_*; without them, `NO_CREDENTIALS` (a client built with it
        refuses with the reason) unless `required`, when ConfigError is raised at once."""
        env = dict(os.environ) if env is None else env
        key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not key_id or not secret:
            if required:
                raise ConfigError(NO_CREDENTIALS_MESSAGE)
            return NO_CREDENTIALS
        return cls(key_id, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)

    @classmethod
    def resolve(cls, context: Any = None, *, required: bool = True) -> CloudCredentials:
        """FC python3.10 hands credentials on the context; python3.12 only in the environment.
        `required=False` defers a missing credential to the first cloud call, so a step that calls
        no API (e.g. recording a request) runs without one."""
        creds = getattr(context, "credentials", None) if context is not None else None
        key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
        secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
        if creds is not None and key_id and secret:
            token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
            return cls(key_id, secret, token or None)
        return cls.from_env(required=required)


NO_CREDENTIALS_MESSAGE = (
    "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, run "
    "`aliyun configure` (the CLI reads the default credential chain), or run where Function Compute "
    "provides them"
)
NO_CREDENTIALS = CloudCredentials("", "")
"""No credential at all: clients built with it refuse with NO_CREDENTIALS_MESSAGE."""


class CloudClients:
    """The SDK clients ramflow uses, sharing one endpoint override and one credential; each is
    imported and built on first use."""

    def __init__(self, settings: Settings, credentials: CloudCredentials):
        self.settings = settings
        self.credentials = credentials

    def _config(self, product: str) -> Config:
        if not self.credentials.access_key_id:
            raise ConfigError(NO_CREDENTIALS_MESSAGE)
        from alibabacloud_tea_openapi.utils_models import Config

        config = Config(
            access_key_id=self.credentials.access_key_id,
            access_key_secret=self.credentials.access_key_secret,
            security_token=self.credentials.security_token,
            region_id=self.settings.region,
            connect_timeout=5000,
            read_timeout=15000,
        )
        if self.settings.cloud_endpoint:
            parts = urlsplit(self.settings.cloud_endpoint)
            config.endpoint = parts.netloc
            config.protocol = parts.scheme
        else:
            config.endpoint = PUBLIC_ENDPOINTS[product].format(region=self.settings.region)
            config.protocol = "https"
        return config

    @cached_property
    def ram(self) -> RamClient:
        from alibabacloud_ram20150501.client import Client as RamClient

        return RamClient(self._config("ram"))

    @cached_property
    def ims(self) -> ImsClient:
        from alibabacloud_ims20190815.client import Client as ImsClient

        return ImsClient(self._config("ims"))

    @cached_property
    def sts(self) -> StsClient:
        from alibabacloud_sts20150401.client import Client as StsClient

        return StsClient(self._config("sts"))

    @cached_property
    def resource_manager(self) -> ResourceManagerClient:
        from alibabacloud_resourcemanager20200331.client import Client as ResourceManagerClient

        return ResourceManagerClient(self._config("resourcemanager"))

    @cached_property
    def eventbridge(self) -> Any:
        """EventBridge 2020-04-01 (PutEvents for result delivery)."""
        from alibabacloud_eventbridge20200401.client import Client as EventBridgeClient

        return EventBridgeClient(self._config("eventbridge"))
