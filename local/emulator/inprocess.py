"""The emulator inside the test process: `responses` intercepts the SDK's `requests` transport."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import responses
from requests import PreparedRequest

from local.emulator.core import Emulator, EmulatorRequest

IN_PROCESS_HOST = "emulator.ramflow.invalid"
IN_PROCESS_ENDPOINT = f"http://{IN_PROCESS_HOST}"


@contextmanager
def mock_cloud(emulator: Emulator | None = None, *, host: str = IN_PROCESS_HOST) -> Iterator[Emulator]:
    """Route every request to `host` into `emulator`; other hosts pass through untouched."""
    emulator = emulator or Emulator()

    def callback(prepared: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(str(prepared.url))
        raw_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):  # the SDK sends whole bodies, never streams
            raise TypeError("a streamed request body cannot reach the emulator")
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
        request = EmulatorRequest.from_raw(str(prepared.method), raw_path, headers, body)
        response = emulator.handle(request)
        return response.status, response.headers, response.body

    pattern = re.compile(rf"https?://{re.escape(host)}(:\d+)?(/.*)?$")
    with responses.RequestsMock(assert_all_requests_are_fired=False, passthru_prefixes=()) as mock:
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mock.add_callback(method, pattern, callback=callback)
        mock.add_passthru(re.compile(r"http://127\.0\.0\.1(:\d+)?/"))
        yield emulator
