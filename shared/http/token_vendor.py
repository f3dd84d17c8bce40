"""`token-vendor`: short-lived STS credentials for entitled applications, in the credentials_uri format.

Two ways in, one flow (`shared.flows.vend`): an HTTP trigger (`GET /?token=<JWT>&role=<alias>&duration=<s>`,
or POST with `Authorization: Bearer <JWT>`), and an InvokeFunction event `{"token", "role", "duration"}`.
The vendor, its JWKS and its credential cache live in the function object, which the handler
module holds, so a warm instance reuses them. Every failure is a status and a `{Code, Message,
RequestId}` body chosen by the exception's type (`shared.http.failure_of`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import parse_qsl

from shared.cloud.clients import CloudCredentials
from shared.cloud.cloud import Cloud
from shared.config import Settings
from shared.entitlements import Entitlements, catalog_renderer
from shared.errors import AuthenticationFailed, BadRequest, ConfigError
from shared.fc import HttpEvent, http_reply, request_id_of
from shared.flows.vend import RoleAssumer, TokenVendor, VendRequest
from shared.http import failure_of, log_failure

log = logging.getLogger("ramflow.token_vendor")

WHAT = "the token vendor"
FIELDS = {"token", "role", "duration"}


class TokenVendorFunction:
    """The function's warm state and its FC handler (`handle`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vendor: tuple[tuple[str, ...], TokenVendor] | None = None
        self._gateways: dict[tuple[str, str, str | None], RoleAssumer] = {}

    def vendor_for(self, settings: Settings) -> TokenVendor:
        """One vendor per warm instance (rebuilt only if the configured files change)."""
        if settings.entitlements_path is None:
            raise ConfigError("RAMFLOW_ENTITLEMENTS is not set: the token vendor has no entitlements")
        key = (
            str(settings.entitlements_path),
            str(settings.catalog_path),
            str(settings.jwt_max_age_seconds),
            str(settings.jwt_max_lifetime_seconds),
        )
        with self._lock:
            if self._vendor is None or self._vendor[0] != key:
                entitlements = Entitlements.load(
                    settings.entitlements_path, renderer=catalog_renderer(settings.catalog_path)
                )
                vendor = TokenVendor(
                    entitlements,
                    max_token_age=settings.jwt_max_age_seconds,
                    max_token_lifetime=settings.jwt_max_lifetime_seconds,
                )
                self._vendor = (key, vendor)
            return self._vendor[1]

    def sts_for(self, settings: Settings, credentials: CloudCredentials) -> RoleAssumer:
        """An STS gateway signed with the function's own (rotating) credentials, reused while they hold."""
        key = (settings.model_dump_json(), credentials.access_key_id, credentials.security_token)
        with self._lock:
            gateway = self._gateways.get(key)
            if gateway is None:
                self._gateways.clear()  # the previous credentials have rotated away
                gateway = Cloud.from_settings(settings, credentials).sts
                self._gateways[key] = gateway
            return gateway

    def vend(self, event: Any, context: Any) -> tuple[bool, int, dict[str, str]]:
        """(came over HTTP, status, body)."""
        request_id = request_id_of(context)
        http = False
        try:
            try:
                raw = _decode(event)
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("the event is not JSON") from None
            http = _is_http(raw)
            request = _from_http(HttpEvent.parse(raw)) if http else _from_event(raw)
            settings = Settings.from_env()
            vendor = self.vendor_for(settings)
            outcome = vendor.vend(request, lambda: self.sts_for(settings, CloudCredentials.resolve(context)))
            return http, 200, outcome.credentials.body()
        except Exception as exc:  # a reply, never a stack trace
            failure = failure_of(exc, WHAT)
            log_failure(log, request_id, exc, failure)
            body = {"Code": failure.code, "Message": failure.message, "RequestId": request_id}
            return http, failure.status, body

    def handle(self, event: Any, context: Any) -> Any:
        http, status, body = self.vend(event, context)
        if http:
            extra = {"WWW-Authenticate": 'Bearer realm="ramflow-token-vendor"'} if status == 401 else None
            return http_reply(status, body, extra)
        return json.dumps(body, separators=(",", ":"))


def _decode(event: Any) -> Any:
    if isinstance(event, bytes | bytearray):
        event = event.decode("utf-8")
    if isinstance(event, str):
        return json.loads(event) if event.strip() else {}
    return event


def _is_http(raw: Any) -> bool:
    return isinstance(raw, dict) and "requestContext" in raw and "headers" in raw


def _from_http(event: HttpEvent) -> VendRequest:
    if event.method not in {"GET", "POST"}:
        raise BadRequest("use GET or POST")
    params: dict[str, Any] = {}
    if event.method == "POST" and event.body:
        body = event.body_bytes().decode("utf-8", errors="replace")
        content_type = (event.header("content-type") or "").lower()
        if "json" in content_type:
            try:
                loaded = json.loads(body)
            except ValueError:
                raise BadRequest("the body is not valid JSON") from None
            if not isinstance(loaded, dict):
                raise BadRequest("the body must be a JSON object")
            params.update(loaded)
        elif "x-www-form-urlencoded" in content_type:
            params.update(parse_qsl(body))
    params.update({k: v for k, v in event.query_parameters.items() if k in FIELDS})
    token = params.get("token")
    authorization = event.header("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("the Authorization header must be 'Bearer <JWT>'")
        token = value.strip()
    return _request(token, params.get("role"), params.get("duration"))


def _request(token: Any, role: Any, duration: Any) -> VendRequest:
    if token is not None and not isinstance(token, str):
        raise AuthenticationFailed("the token must be a string")
    if role is not None and not isinstance(role, str):
        raise BadRequest("'role' must be a string")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | str)):
        raise BadRequest("'duration' must be a whole number of seconds")
    return VendRequest(token=token, role=role, duration=duration)


def _from_event(raw: Any) -> VendRequest:
    if not isinstance(raw, dict):
        raise BadRequest('the event must be a JSON object {"token", "role", "duration"}')
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields {unknown[:5]}")
    return _request(raw.get("token"), raw.get("role"), raw.get("duration"))
