"""Function Compute 3.0 shapes: the invocation context and the HTTP-trigger event and reply.

Handlers use these so flows never see FC types.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.config import DEFAULT_IDEMPOTENCY_LEASE_SECONDS
from shared.errors import BadRequest


@dataclass(frozen=True)
class FcCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FcFunction:
    name: str
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 60


@dataclass
class FcContext:
    """What FC passes as `context` (python3.10 carries `credentials`; python3.12 uses env vars)."""

    function: FcFunction
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    credentials: FcCredentials | None = None
    region: str = "cn-hangzhou"
    account_id: str = ""
    started_at: float = field(default_factory=time.time)

    @property
    def deadline(self) -> float:
        return self.started_at + self.function.timeout


def deadline_of(context: Any, default_timeout: int = DEFAULT_IDEMPOTENCY_LEASE_SECONDS) -> float:
    """When this invocation will be stopped: the lease of an idempotency record ends there.
    Without FC's deadline or the function's timeout, `default_timeout` from now
    (`Settings.idempotency_lease_seconds`)."""
    deadline = getattr(context, "deadline", None)
    if isinstance(deadline, int | float):
        return float(deadline)
    function = getattr(context, "function", None)
    timeout = getattr(function, "timeout", None) or default_timeout
    return time.time() + float(timeout)


def request_id_of(context: Any) -> str:
    return str(getattr(context, "request_id", None) or uuid.uuid4())


class HttpRequestContext(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    account_id: str = Field("", alias="accountId")
    request_id: str = Field("", alias="requestId")
    http: dict[str, Any] = Field(default_factory=dict)


class HttpEvent(BaseModel):
    """The event an FC 3.0 HTTP trigger hands the handler."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    version: str = "v1"
    raw_path: str = Field("/", alias="rawPath")
    headers: dict[str, str] = Field(default_factory=dict)
    query_parameters: dict[str, str] = Field(default_factory=dict, alias="queryParameters")
    body: str = ""
    is_base64_encoded: bool = Field(False, alias="isBase64Encoded")
    request_context: HttpRequestContext = Field(default_factory=HttpRequestContext, alias="requestContext")

    @classmethod
    def parse(cls, event: bytes | str | dict[str, Any]) -> HttpEvent:
        try:
            raw = event if isinstance(event, dict) else json.loads(event)
            return cls.model_validate(raw)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"not an FC HTTP trigger event: {type(exc).__name__}") from None

    @property
    def method(self) -> str:
        return str(self.request_context.http.get("method") or "GET").upper()

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), None)

    def body_bytes(self) -> bytes:
        if self.is_base64_encoded:
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")


def http_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The `{statusCode, headers, isBase64Encoded, body}` reply of an HTTP-triggered function."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
        "isBase64Encoded": False,
        "body": body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
    }
