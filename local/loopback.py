"""One way to run a loopback HTTP server in a thread, shared by the emulator, the FC runtime and test fakes.

socketserver's default shutdown poll is 0.5 s: every stop would wait for it. A short poll makes a
server that a test starts and stops cost milliseconds, and changes nothing while it serves.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

POLL_INTERVAL_S = 0.05


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server for loopback use: daemon request threads, a deep accept queue, fast stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # contract and load tests open dozens of connections at once
    server_address: tuple[str, int]  # an IPv4 (host, port)

    def serve_forever(self, poll_interval: float = POLL_INTERVAL_S) -> None:
        super().serve_forever(poll_interval)

    def start_thread(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        thread.start()
        return thread

    def stop_thread(self, thread: threading.Thread | None, *, close: bool = True) -> None:
        """Stop serving, wait for the serving thread, and (by default) close the socket."""
        self.shutdown()
        if close:
            self.server_close()
        if thread is not None:
            thread.join(timeout=5)
