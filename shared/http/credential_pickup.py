"""`credential-pickup`: a ticket's sealed secret for its requester (HTTP trigger).

`GET /?ticket=<id>` with `Authorization: Bearer <JWT>` from the organisation's identity provider
(RAMFLOW_PICKUP_AUTH). The token is checked before anything is read; the answer holds ciphertext
only (the secret is sealed to the requester's key). 200 the sealed credential, 400 no ticket, 401 no
or bad token, 403 not the ticket's requester, 404 nothing waits (never issued, expired or collected),
405 not GET/POST, 500 misconfigured.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from shared.audit import audit, configure_audit
from shared.config import Settings
from shared.errors import AuthenticationFailed, BadRequest, ConfigError, NotEntitled, RecordNotFound
from shared.fc import HttpEvent, http_reply, request_id_of
from shared.pickup import collect, load_verifier
from shared.store import StateStore
from shared.tokens import JwtVerifier

log = logging.getLogger("ramflow.credential_pickup")

TICKET = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_lock = threading.Lock()
_verifier: tuple[Path | None, JwtVerifier] | None = None
_stores: dict[str, StateStore] = {}


def verifier_for(settings: Settings) -> JwtVerifier:
    """One verifier per warm instance (rebuilt if the configured file changes)."""
    global _verifier
    with _lock:
        if _verifier is None or _verifier[0] != settings.pickup_auth_path:
            _verifier = (settings.pickup_auth_path, load_verifier(settings.pickup_auth_path))
        return _verifier[1]


def store_for(settings: Settings) -> StateStore:
    """The store only: the pickup makes no cloud call, so it needs no cloud credentials."""
    with _lock:
        if settings.store not in _stores:
            _stores[settings.store] = StateStore.from_url(settings.store)
        return _stores[settings.store]


def _token(request: HttpEvent) -> str | None:
    authorization = request.header("authorization")
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationFailed("the Authorization header must be 'Bearer <JWT>'")
    return value.strip()


def _error(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    extra = {"WWW-Authenticate": 'Bearer realm="ramflow-credential-pickup"'} if status == 401 else None
    return http_reply(status, {"Code": code, "Message": message, "RequestId": request_id}, extra)


def handle(request: HttpEvent, context: Any) -> dict[str, Any]:
    request_id = request_id_of(context)
    if request.method not in {"GET", "POST"}:
        return http_reply(
            405,
            {"Code": "MethodNotAllowed", "Message": "use GET", "RequestId": request_id},
            {"Allow": "GET, POST"},
        )
    settings = Settings.from_env()
    if settings.audit_path:
        configure_audit(settings.audit_path)
    source_ip = str(request.request_context.http.get("sourceIp") or "unknown")
    try:
        claims = verifier_for(settings).verify(_token(request))
    except AuthenticationFailed as exc:
        audit("pickup.refused", actor=source_ip, ticket_id=None, outcome="rejected", reason=str(exc))
        code = "MissingToken" if str(exc).startswith("no token") else "InvalidToken"
        message = "send Authorization: Bearer <JWT>" if code == "MissingToken" else str(exc)
        return _error(401, code, message, request_id)
    ticket = request.query_parameters.get("ticket") or request.query_parameters.get("ticket_id") or ""
    if not TICKET.fullmatch(ticket):
        return _error(
            400,
            "InvalidParameter",
            "ticket: give ?ticket=<ticket id> (1-128 of [A-Za-z0-9._:/-])",
            request_id,
        )
    try:
        pickup = collect(store_for(settings).backend, ticket, claims)
    except NotEntitled as exc:
        return _error(403, "NotRequester", str(exc), request_id)
    except RecordNotFound as exc:
        return _error(404, "NothingToCollect", str(exc), request_id)
    return http_reply(200, pickup.body)


def handle_event(event: Any, context: Any) -> dict[str, Any]:
    request_id = request_id_of(context)
    try:
        return handle(HttpEvent.parse(event), context)
    except BadRequest as exc:
        return _error(400, "InvalidRequest", str(exc), request_id)
    except ConfigError as exc:
        log.error("request %s: configuration error: %s", request_id, exc)
        return _error(500, "ConfigError", "credential-pickup is misconfigured", request_id)
    except Exception as exc:  # a reply, never a stack trace or a message that might echo input
        log.error("request %s: unexpected %s", request_id, type(exc).__name__)
        return _error(500, "InternalError", "credential-pickup failed", request_id)
