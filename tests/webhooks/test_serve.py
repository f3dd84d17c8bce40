"""`ramflow serve` hosts webhook-ingress with a development secret, or the one it is given."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from shared.webhooks import DEV_SECRET
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, encode, sample, sign

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    environment = {k: v for k, v in os.environ.items() if k != "RAMFLOW_WEBHOOK_SECRET"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from local.cli import app; app()", "serve", "--port", "0", *args],
        cwd=ROOT,
        env={**environment, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "try: curl" in line:
                break
        text = "".join(lines)
        endpoint = re.search(r"ready on (http://127\.0\.0\.1:\d+)", text)
        assert endpoint, text
        for secret in (DEV_SECRET, NEW_SECRET, OLD_SECRET):
            assert secret[6:] not in text, "serve never prints a webhook secret"
        yield f"{endpoint.group(1)}/webhook-ingress/"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def deliver(url: str, secret: str, webhook_id: str) -> requests.Response:
    body = encode(sample("access-revoked.json", ticket_id="NO-SUCH-TICKET"))
    headers = {**sign(secret, webhook_id, body), "Content-Type": "application/cloudevents+json"}
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_serve_uses_the_development_secret_by_default() -> None:
    with serving() as url:
        accepted = deliver(url, DEV_SECRET, "msg_dev")
        refused = deliver(url, NEW_SECRET, "msg_other")

    assert accepted.status_code != 401, accepted.text
    assert json.loads(accepted.text)["status"] in {"completed", "rejected"}
    assert refused.status_code == 401


def test_serve_takes_the_secret_from_the_option_or_the_environment() -> None:
    with serving("--webhook-secret", f"{NEW_SECRET},{OLD_SECRET}") as url:
        assert deliver(url, OLD_SECRET, "msg_opt").status_code != 401
        assert deliver(url, DEV_SECRET, "msg_dev").status_code == 401
    with serving(env={"RAMFLOW_WEBHOOK_SECRET": NEW_SECRET}) as url:
        assert deliver(url, NEW_SECRET, "msg_env").status_code != 401
        assert deliver(url, DEV_SECRET, "msg_dev").status_code == 401
