"""Function Compute 3.0 InvokeFunction through the official SDK (`alibabacloud_fc20230330`).

Asynchronous invocations carry the units of a large offboarding to other instances of
`user-offboarded` (shared/flows/fanout.py).

The webhook ingress verifies a delivery and hands the event to the function that owns it with a
synchronous invocation (`x-fc-invocation-type: Sync`): its role then needs only
`fc:InvokeFunction` on those functions, never the lifecycle functions' RAM powers. Reconcile hands
a key past its age to access-approved the same way, asynchronously (it may not create keys). API reference:
https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/developer-reference/api-fc-2023-03-30-invokefunction
(an unhandled error in the function answers 200 with the `x-fc-error-type` header).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.cloud.clients import CloudCredentials
from shared.cloud.retry import CloudRunner
from shared.config import Settings


@dataclass(frozen=True)
class Invocation:
    payload: bytes
    error_type: str | None = None  # set when the function raised (FC: x-fc-error-type)


class FcGateway:
    """InvokeFunction, synchronous or asynchronous; `RAMFLOW_FC_ENDPOINT` overrides the SDK's regional endpoint."""

    def __init__(self, settings: Settings, credentials: CloudCredentials, runner: CloudRunner):
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        config = Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            region_id=settings.region,
            connect_timeout=5000,
            read_timeout=900_000,  # the invoked function's own timeout bounds the wait
        )
        if settings.fc_endpoint:
            parts = urlsplit(settings.fc_endpoint)
            config.endpoint, config.protocol = parts.netloc, parts.scheme
        self._sdk: Any = Client(config)
        self._runner = runner

    def invoke(self, function: str, payload: bytes, *, asynchronous: bool = False) -> Invocation:
        """Run `function` with `payload`; `asynchronous`: FC queues it (202, no reply) and retries it
        as it does EventBridge's deliveries (s.yaml's asyncInvokeConfig)."""
        from alibabacloud_fc20230330 import models as fc

        headers = fc.InvokeFunctionHeaders(x_fc_invocation_type="Async" if asynchronous else "Sync")

        def call() -> Any:
            from darabonba.runtime import RuntimeOptions

            request = fc.InvokeFunctionRequest(body=io.BytesIO(payload))  # a fresh stream per attempt
            return self._sdk.invoke_function_with_options(
                function, request, headers, RuntimeOptions(autoretry=False, max_attempts=1)
            )

        # Not retried by the runner: the ingress's caller retries the whole delivery instead.
        response = self._runner.call("InvokeFunction", call, idempotent=False)
        body = response.body.read() if response.body is not None else b""
        lowered = {k.lower(): v for k, v in (response.headers or {}).items()}
        return Invocation(bytes(body), lowered.get("x-fc-error-type") or None)
