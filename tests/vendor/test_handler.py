"""The `token-vendor` handler called directly, as FC calls it: bytes in, a reply out, never a traceback."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.fc import FcContext, FcFunction
from tests.vendor.conftest import Mint

INDEX = Path(__file__).resolve().parents[2] / "functions" / "token_vendor" / "index.py"


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch, entitlements_file: Path) -> ModuleType:
    """A fresh instance of the handler module (its warm state starts empty)."""
    monkeypatch.setenv("RAMFLOW_ENTITLEMENTS", str(entitlements_file))
    spec = importlib.util.spec_from_file_location("token_vendor_under_test", INDEX)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context() -> FcContext:
    return FcContext(function=FcFunction("token-vendor", timeout=30))


def call(index: ModuleType, event: Any) -> dict[str, Any]:
    raw = index.handler(event if isinstance(event, bytes) else json.dumps(event).encode(), context())
    return json.loads(raw)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (b"not json", "InvalidParameter"),
        ([1, 2], "InvalidParameter"),
        ({"token": "x", "extra": 1}, "InvalidParameter"),
        ({"token": 42}, "InvalidToken"),
        ({}, "MissingToken"),
    ],
)
def test_bad_events(index: ModuleType, event: Any, code: str) -> None:
    assert call(index, event)["Code"] == code


def test_event_role_and_duration_types_are_checked(index: ModuleType, mint: Mint) -> None:
    assert call(index, {"token": mint(), "role": 7})["Code"] == "InvalidParameter"
    assert call(index, {"token": mint(), "duration": True})["Code"] == "InvalidParameter"
    assert call(index, {"token": mint(), "duration": 60})["Code"] == "InvalidParameter"


def test_missing_configuration_is_a_500_without_details(
    index: ModuleType, monkeypatch: pytest.MonkeyPatch, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RAMFLOW_ENTITLEMENTS")
    reply = call(index, {"token": mint()})
    assert reply["Code"] == "ConfigError"
    assert reply["Message"] == "the token vendor is misconfigured"
    assert "RAMFLOW_ENTITLEMENTS" in caplog.text  # the operator finds the reason in the log


def test_http_event_with_form_body_and_bearer(index: ModuleType, mint: Mint) -> None:
    event = {
        "version": "v1",
        "rawPath": "/",
        "headers": {"Authorization": "Bearer " + mint(), "Content-Type": "application/x-www-form-urlencoded"},
        "queryParameters": {},
        "body": "role=kafka-operator&duration=900",
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": "POST"}},
    }
    reply = index.handler(json.dumps(event).encode(), context())
    assert reply["statusCode"] == 403  # demo-app may not have kafka-operator: the body was read
    assert json.loads(reply["body"])["Code"] == "NotEntitled"
    assert reply["headers"]["Content-Type"] == "application/json"


def test_http_401_names_the_scheme(index: ModuleType) -> None:
    event = {"headers": {}, "queryParameters": {}, "requestContext": {"http": {"method": "GET"}}}
    reply = index.handler(json.dumps(event).encode(), context())
    assert reply["statusCode"] == 401
    assert reply["headers"]["WWW-Authenticate"].startswith("Bearer")


def test_unexpected_errors_are_a_generic_500(
    index: ModuleType, mint: Mint, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any) -> Any:
        raise RuntimeError("secret-looking detail that must not reach the caller")

    monkeypatch.setattr(index.handler.__wrapped__.__self__, "vendor_for", explode)
    reply = call(index, {"token": mint()})
    assert reply["Code"] == "InternalError"
    assert "secret-looking" not in json.dumps(reply)
