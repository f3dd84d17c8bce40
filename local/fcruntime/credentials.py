"""The credentials a function runs with: its role's STS session, as FC hands it out — never a root key.

In the cloud FC assumes the function's role and passes the session in the context (python3.10) and
in `ALIBABA_CLOUD_*` variables (both). Locally a RAM user that the role trusts (seeded by
`local.seed`) plays the FC service and assumes the role over the STS API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Protocol

from alibabacloud_sts20150401 import models as sts_models

from local.fcruntime.signing import IssuedSession
from shared.cloud.clients import CloudClients, CloudCredentials
from shared.config import Settings
from shared.fc import FcCredentials


class CredentialSource(Protocol):
    def get(self) -> FcCredentials | None: ...


class NoCredentials:
    """A runtime that gives functions no credentials (they fail as FC would without a role)."""

    def get(self) -> FcCredentials | None:
        return None


class StaticCredentials:
    """Fixed credentials, for `ramflow serve --cloud` without a role to assume."""

    def __init__(self, credentials: CloudCredentials):
        self._credentials = FcCredentials(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )

    def get(self) -> FcCredentials | None:
        return self._credentials


class AssumedRoleCredentials:
    """The functions' role, assumed by `identity` and renewed `refresh_before` seconds ahead of expiry."""

    def __init__(
        self,
        *,
        cloud_endpoint: str | None,
        identity: CloudCredentials,
        role_arn: str,
        session_name: str = "fc-local",
        duration_seconds: int = 3600,
        refresh_before: float = 600.0,
        clock: Callable[[], float] = time.time,
        region: str = "cn-hangzhou",
    ):
        self._sts = CloudClients(Settings(cloud_endpoint=cloud_endpoint, region=region), identity).sts
        self.role_arn = role_arn
        self._session_name = session_name
        self._duration = duration_seconds
        self._refresh_before = refresh_before
        self._clock = clock
        self._lock = threading.Lock()
        self._current: FcCredentials | None = None
        self._expires_at = 0.0
        self.renewals = 0

    @property
    def expires_at(self) -> float:
        return self._expires_at

    @property
    def current(self) -> FcCredentials | None:
        """The session last handed out (None before the first `get`), without renewing it."""
        return self._current

    def get(self) -> FcCredentials | None:
        with self._lock:
            if self._current is None or self._clock() > self._expires_at - self._refresh_before:
                request = sts_models.AssumeRoleRequest(
                    role_arn=self.role_arn,
                    role_session_name=self._session_name,
                    duration_seconds=self._duration,
                )
                creds = self._sts.assume_role(request).body.credentials
                self._current = FcCredentials(
                    creds.access_key_id, creds.access_key_secret, creds.security_token
                )
                expires = datetime.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=timezone.utc
                )
                self._expires_at = expires.timestamp()
                self.renewals += 1
            return self._current


class FunctionRoleCredentials:
    """Each function's own role (s.yaml's `role:`), assumed by `identity` as FC does for each function.

    A function whose role was not seeded gets no credentials, as FC would refuse to run it.
    """

    def __init__(
        self,
        *,
        cloud_endpoint: str | None,
        identity: CloudCredentials,
        roles: dict[str, str],  # role name → ARN
        clock: Callable[[], float] = time.time,
        region: str = "cn-hangzhou",
    ):
        self._sources = {
            name: AssumedRoleCredentials(
                cloud_endpoint=cloud_endpoint, identity=identity, role_arn=arn, clock=clock, region=region
            )
            for name, arn in roles.items()
        }

    def get(self) -> FcCredentials | None:
        """No function in particular: none (every invocation asks `for_role`)."""
        return None

    def for_role(self, role_name: str | None) -> FcCredentials | None:
        source = self._sources.get(role_name or "")
        return source.get() if source is not None else None

    def source(self, role_name: str) -> AssumedRoleCredentials | None:
        return self._sources.get(role_name)

    def issued(self, may_invoke: Mapping[str, tuple[str, ...]]) -> list[IssuedSession]:
        """The sessions handed out so far, each with the functions its role may invoke (`may_invoke`
        by role name): a runtime whose cloud is remote checks them itself."""
        return [
            IssuedSession(
                c.access_key_id,
                c.access_key_secret,
                c.security_token or "",
                source.role_arn,
                expires_at=source.expires_at,
                may_invoke=may_invoke.get(name, ()),
            )
            for name, source in self._sources.items()
            if (c := source.current) is not None
        ]
