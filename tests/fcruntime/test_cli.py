"""`ramflow serve` and `ramflow dev-token` as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from local.cli import app
from local.dev import DEV_ENTITLEMENTS
from local.testing import serve_process
from shared.entitlements import Entitlements
from shared.tokens import JwtVerifier, load_jwks

ROOT = Path(__file__).resolve().parents[2]


def test_dev_token_is_trusted_by_the_dev_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")  # the development key is trusted in development only
    result = CliRunner().invoke(app, ["dev-token", "--sub", "demo-app", "--ttl", "120"])

    assert result.exit_code == 0, result.output
    token = result.output.strip()
    ents = Entitlements.load(DEV_ENTITLEMENTS)
    claims = JwtVerifier(load_jwks(ents.jwks), issuer=ents.issuer, audience=ents.audience).verify(token)
    assert claims.subject == "demo-app"
    assert 100 <= claims.expires_at - int(claims.raw["iat"]) <= 120


def test_serve_prints_its_endpoints_and_vends() -> None:
    with serve_process() as served:
        text, endpoint = served.startup, served.endpoint
        assert f"{endpoint}/token-vendor/" in text
        assert "/2016-08-15/services/ramflow/functions/<fn>/invocations" in text
        assert "/2023-03-30/functions/<fn>/invocations" in text

        token = CliRunner().invoke(app, ["dev-token", "--sub", "demo-app"]).output.strip()
        reply = requests.get(f"{endpoint}/token-vendor/", params={"token": token}, timeout=30)
        assert reply.status_code == 200 and reply.json()["Code"] == "Success"
    assert served.returncode == 0
    assert "stopped" in served.rest
