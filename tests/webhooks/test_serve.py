"""`ramflow serve` hosts webhook-ingress with a development secret, or the one it is given."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from local.testing import serve_process
from shared.webhooks import DEV_SECRET
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, encode, sample, sign

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    environment = {k: v for k, v in os.environ.items() if k != "RAMFLOW_WEBHOOK_SECRET"}
    with serve_process(*args, env={**environment, **(env or {})}) as served:
        for secret in (DEV_SECRET, NEW_SECRET, OLD_SECRET):
            assert secret[6:] not in served.startup, "serve never prints a webhook secret"
        yield f"{served.endpoint}/webhook-ingress/"


def deliver(url: str, secret: str, webhook_id: str) -> requests.Response:
    body = encode(sample("access-revoked.json", ticket_id="NO-SUCH-TICKET"))
    headers = {**sign(secret, webhook_id, body), "Content-Type": "application/cloudevents+json"}
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_serve_uses_the_development_secret_by_default() -> None:
    with serving() as url:
        accepted = deliver(url, DEV_SECRET, "msg_dev")
        refused = deliver(url, NEW_SECRET, "msg_other")

    assert accepted.status_code != 401, accepted.text
    assert json.loads(accepted.text)["status"] in {"completed", "rejected", "pending_request"}
    assert refused.status_code == 401


@pytest.mark.slow
def test_serve_takes_the_secret_from_the_option_or_the_environment() -> None:
    with serving("--webhook-secret", f"{NEW_SECRET},{OLD_SECRET}") as url:
        assert deliver(url, OLD_SECRET, "msg_opt").status_code != 401
        assert deliver(url, DEV_SECRET, "msg_dev").status_code == 401
    with serving(env={"RAMFLOW_WEBHOOK_SECRET": NEW_SECRET}) as url:
        assert deliver(url, NEW_SECRET, "msg_env").status_code != 401
        assert deliver(url, DEV_SECRET, "msg_dev").status_code == 401
