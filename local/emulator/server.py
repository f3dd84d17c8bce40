"""The emulator on a loopback socket, for the SDK clients, the CLI and other processes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

from local.emulator.core import Emulator, EmulatorRequest
from local.loopback import LoopbackHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    disable_nagle_algorithm = True  # small replies would otherwise wait for delayed ACKs (~40 ms a call)
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = EmulatorRequest.from_raw(self.command, self.path, dict(self.headers.items()), body)
        response = self.server.emulator.handle(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to answer

    do_POST = do_GET = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        """Silence per-request logging: the recorder keeps a redacted trail instead."""


class _Server(LoopbackHTTPServer):
    def __init__(self, address: tuple[str, int], emulator: Emulator):
        super().__init__(address, _Handler)
        self.emulator = emulator


class EmulatorServer:
    """Serve an Emulator on host:port (port 0 picks a free one). Use as a context manager."""

    def __init__(self, emulator: Emulator | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.emulator = emulator or Emulator()
        self._server = _Server((host, port), self.emulator)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = self._server.start_thread("emulator")
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.stop_thread(self._thread)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
