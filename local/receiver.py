"""A webhook receiver on loopback that verifies Standard Webhooks with the `standardwebhooks` library.

It stands for a ticket system receiving ramflow's results and notices: the tests and the demo point
a destination at it and read what arrived. Every verified arrival is kept (duplicates too, so a test
can count them); a bad signature gets 401 and is only counted.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from local.loopback import LoopbackHTTPServer


@dataclass
class Arrival:
    webhook_id: str
    event: dict[str, Any]
    body: bytes = field(repr=False)


def free_port() -> int:
    """A port nobody listens on now (for a receiver that comes up later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WebhookReceiver:
    """`with WebhookReceiver(secret) as receiver: ... receiver.url ... receiver.arrivals`."""

    def __init__(self, secret: str, *, port: int = 0, status: int = 204):
        self.secret = secret
        self.status = status
        self.arrivals: list[Arrival] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the base class's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._receive(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = LoopbackHTTPServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/ramflow"

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(self.secret).verify(body.decode("utf-8"), lowered)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.refused += 1
            return 401
        arrival = Arrival(lowered["webhook-id"], json.loads(body), body)
        with self._arrived:
            self.arrivals.append(arrival)
            self._arrived.notify_all()
        return self.status

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list[Arrival]:
        """Block until at least `count` arrivals (or the timeout); the arrivals so far."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.arrivals) >= count, timeout=timeout)
            return list(self.arrivals)

    def start(self) -> WebhookReceiver:
        self._thread = self._server.start_thread("webhook-receiver")
        return self

    def stop(self) -> None:
        self._server.stop_thread(self._thread)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
