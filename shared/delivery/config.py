"""Where results and notices go: the destinations file (`RAMFLOW_DESTINATIONS`, YAML).

```yaml
version: 1
routes:                                 # first match wins; `source` is the request's CloudEvent source
  - name: itsm                          # names the destination in delivery records and listings
    source: itsm.example.com            # exact, or a glob such as "itsm.*" or "*"
    webhook:                            # outbound Standard Webhooks
      url: https://itsm.example.com/hooks/ramflow
      secret_env: RAMFLOW_RESULT_SECRET_ITSM   # the whsec_… signing secret, read from this variable
    eventbridge:                        # and/or PutEvents to a bus of this account (never `default`,
      bus: ramflow-results              # whose rules trigger the functions; the roles allow only these)
notifications:                          # the notifier's webhook sink (approvals, grants, expiry, …)
  webhook: {url: https://chat-bridge.example.com/ramflow, secret_env: RAMFLOW_NOTIFY_SECRET}
retry_schedule: [5, 300, 1800, 7200, 18000, 36000, 36000]   # seconds before each retry
```

Secrets never sit in this file: only the name of the variable that holds them.
The default retry schedule is the common Standard Webhooks senders' one (immediately, then 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 10 h), e.g. https://resend.com/docs/webhooks/retries-and-replays
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from shared.errors import ConfigError

DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookTarget(_Strict):
    url: HttpUrl
    secret_env: EnvName
    timeout_seconds: float = Field(10.0, gt=0, le=60)

    def secret(self) -> str:
        """The signing secret from the environment; ConfigError (naming the variable) when unset."""
        value = os.environ.get(self.secret_env, "")
        if not value:
            raise ConfigError(f"{self.secret_env} is not set: the webhook destination has no signing secret")
        return value


LIFECYCLE_BUS = "default"
"""The bus whose rules trigger the lifecycle functions: results never go there."""


class EventBridgeTarget(_Strict):
    bus: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,127}$")]

    @field_validator("bus")
    @classmethod
    def _not_the_lifecycle_bus(cls, value: str) -> str:
        """A result on the bus whose rules trigger the functions could pose as a request, and the
        roles may put events only on result buses (local/roles.py)."""
        if value == LIFECYCLE_BUS:
            raise ValueError(
                f"results need a bus of their own, not {LIFECYCLE_BUS!r} (it triggers the functions)"
            )
        return value


class Route(_Strict):
    name: Name
    source: Annotated[str, Field(min_length=1, max_length=256)]
    webhook: WebhookTarget | None = None
    eventbridge: EventBridgeTarget | None = None

    @model_validator(mode="after")
    def _has_a_target(self) -> Route:
        if self.webhook is None and self.eventbridge is None:
            raise ValueError("a route needs a webhook, an eventbridge target or both")
        return self

    def matches(self, source: str) -> bool:
        return fnmatch.fnmatchcase(source, self.source)


class Notifications(_Strict):
    webhook: WebhookTarget | None = None


class Destinations(_Strict):
    version: int = 1
    routes: list[Route] = Field(default_factory=list)
    notifications: Notifications = Field(default_factory=Notifications)
    retry_schedule: list[Annotated[float, Field(ge=0, le=86400)]] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE), min_length=0, max_length=20
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Destinations:
        names = [r.name for r in self.routes]
        if len(names) != len(set(names)):
            raise ValueError("route names must be unique")
        return self

    def route_for(self, source: str) -> Route | None:
        return next((r for r in self.routes if r.matches(source)), None)

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1

    @classmethod
    def load(cls, path: Path | None) -> Destinations:
        """The file's destinations, or none at all (nothing is delivered) without a file."""
        if path is None:
            return cls()
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read RAMFLOW_DESTINATIONS {path}: {type(exc).__name__}") from None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise ConfigError(f"invalid RAMFLOW_DESTINATIONS {path}: {where}") from None
