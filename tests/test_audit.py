"""The audit trail: one JSON line per event, to the logger and a file, with secrets masked."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
from pydantic import BaseModel

from shared.audit import LOGGER_NAME, audit, configure_audit
from shared.redact import MASK, is_secret_key, redact

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
TOKEN = "CAIS-security-token-value"


@pytest.fixture(autouse=True)
def no_file_sink():
    configure_audit(None)
    yield
    configure_audit(None)


def logged_lines(caplog) -> list[dict]:
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == LOGGER_NAME]


class TestAuditLine:
    def test_one_json_line_with_the_fields(self, caplog):
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            record = audit(
                "user.create", actor="fc:user-requested", ticket_id="ITSM-1042", outcome="ok", user="alice"
            )
        [line] = logged_lines(caplog)
        assert line == record
        assert list(line) == [
            "ts",
            "action",
            "actor",
            "ticket",
            "outcome",
            "request_id",
            "function",
            "event_id",
            "details",
        ]
        assert (line["action"], line["actor"], line["ticket"], line["outcome"]) == (
            "user.create",
            "fc:user-requested",
            "ITSM-1042",
            "ok",
        )
        assert line["details"] == {"user": "alice"}

    def test_timestamp_is_utc(self, caplog):
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            audit("x", actor="a", ticket_id=None, outcome="ok")
        [line] = logged_lines(caplog)
        assert (
            line["ts"].endswith("Z")
            and datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).utcoffset().seconds == 0
        )
        assert line["ticket"] is None

    def test_logged_even_when_the_root_logger_is_quiet(self):
        class Collect(logging.Handler):
            def __init__(self):
                super().__init__()
                self.messages: list[str] = []

            def emit(self, record):
                self.messages.append(record.getMessage())

        root, handler = logging.getLogger(), Collect()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        try:
            audit("quiet", actor="a", ticket_id=None, outcome="ok")
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        assert [json.loads(message)["action"] for message in handler.messages] == ["quiet"]

    def test_values_json_cannot_hold_are_written_as_text(self, caplog):
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            audit("x", actor="a", ticket_id=None, outcome="ok", when=datetime(2025, 1, 1))
        assert logged_lines(caplog)[0]["details"]["when"] == "2025-01-01 00:00:00"

    def test_a_line_is_one_line(self, caplog):
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            audit("x", actor="a\nforged: line", ticket_id=None, outcome="ok", note="two\nlines")
        [record] = [r for r in caplog.records if r.name == LOGGER_NAME]
        assert "\n" not in record.getMessage()


class TestFileSink:
    def test_lines_are_appended_to_the_configured_file(self, tmp_path):
        path = tmp_path / "nested" / "audit.jsonl"
        configure_audit(path)
        audit("a", actor="x", ticket_id="T-1", outcome="ok")
        audit("b", actor="x", ticket_id="T-1", outcome="denied")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line["action"] for line in lines] == ["a", "b"]

    def test_no_file_once_unconfigured(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        configure_audit(str(path))
        audit("a", actor="x", ticket_id=None, outcome="ok")
        configure_audit(None)
        audit("b", actor="x", ticket_id=None, outcome="ok")
        assert len(path.read_text().splitlines()) == 1


class TestNoSecretInTheTrail:
    def details(self):
        return {
            "AccessKeySecret": SECRET,
            "credential": {
                "kind": "access_key",
                "access_key_id": "LTAI5tExample",
                "sealed_secret": "c2VhbGVk",
            },
            "headers": {
                "Authorization": f"ACS3-HMAC-SHA256 Credential=LTAI5t,Signature={SECRET}",
                "x-acs-security-token": TOKEN,
            },
            "sts": [
                {"SecurityToken": TOKEN, "AccessKeySecret": SECRET, "Expiration": "2025-01-01T00:00:00Z"}
            ],
            "login": {"password": SECRET, "password_reset_required": True},
            "note": f"Bearer {TOKEN}",
        }

    def test_not_in_the_log(self, caplog):
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            audit("access_key.create", actor="fc", ticket_id="ITSM-1043", outcome="ok", **self.details())
        text = caplog.text
        assert SECRET not in text and TOKEN not in text
        details = logged_lines(caplog)[0]["details"]
        assert details["credential"]["sealed_secret"] == "c2VhbGVk"
        assert details["credential"]["access_key_id"] == "LTAI5tExample"
        assert details["sts"][0]["Expiration"] == "2025-01-01T00:00:00Z"
        assert details["login"] == {"password": MASK, "password_reset_required": True}

    def test_not_in_the_file(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        configure_audit(path)
        audit("access_key.create", actor="fc", ticket_id="ITSM-1043", outcome="ok", **self.details())
        text = path.read_text()
        assert SECRET not in text and TOKEN not in text and MASK in text

    def test_the_caller_s_details_are_not_modified(self):
        details = self.details()
        audit("x", actor="a", ticket_id=None, outcome="ok", **details)
        assert details["AccessKeySecret"] == SECRET and details["sts"][0]["SecurityToken"] == TOKEN


class TestRedact:
    @pytest.mark.parametrize(
        "key",
        [
            "AccessKeySecret",
            "ACCESSKEYSECRET",
            "access_key_secret",
            "secret",
            "ClientSecret",
            "password",
            "NewPassword",
            "SecurityToken",
            "x-acs-security-token",
            "token",
            "refresh_token",
            "Authorization",
            "signature",
            "webhook-signature",
            "private_key",
            "PrivateKey",
            "api_key",
            "Cookie",
            "jwt",
        ],
    )
    def test_secret_keys(self, key):
        assert is_secret_key(key)
        assert redact({key: "value"}) == {key: MASK}

    @pytest.mark.parametrize(
        "key",
        [
            "sealed_secret",
            "sealed_password",
            "Sealed_Secret",
            "AccessKeyId",
            "UserName",
            "PasswordResetRequired",
            "MFABindRequired",
            "MinimumPasswordLength",
            "MaxPasswordAge",
            "PasswordReusePrevention",
            "SignatureMethod",
            "x-acs-signature-nonce",
        ],
    )
    def test_keys_that_are_not_secrets(self, key):
        assert not is_secret_key(key)
        assert redact({key: "value"}) == {key: "value"}

    def test_nested_lists_and_tuples(self):
        value = {"a": [{"b": ({"Password": SECRET},)}], "c": [[{"token": TOKEN}]]}
        assert redact(value) == {"a": [{"b": [{"Password": MASK}]}], "c": [[{"token": MASK}]]}

    def test_whole_subtrees_under_a_secret_key_are_masked(self):
        assert redact({"secret": {"value": SECRET}}) == {"secret": MASK}

    def test_flags_and_absent_values_under_secret_keys_stay(self):
        assert redact({"password": None, "token_present": True}) == {"password": None, "token_present": True}

    @pytest.mark.parametrize(
        "value",
        [
            f"Bearer {TOKEN}",
            f"bearer {TOKEN}",
            f"ACS3-HMAC-SHA256 Credential=x,Signature={SECRET}",
            "Basic dXNlcjpwYXNz",
        ],
    )
    def test_credential_values_under_any_key(self, value):
        assert redact({"note": value}) == {"note": MASK}

    def test_models_are_redacted_as_their_json(self):
        class Reply(BaseModel):
            AccessKeyId: str
            AccessKeySecret: str

        assert redact(Reply(AccessKeyId="LTAI", AccessKeySecret=SECRET)) == {
            "AccessKeyId": "LTAI",
            "AccessKeySecret": MASK,
        }

    def test_bytes_are_summarised(self):
        assert redact({"body": SECRET.encode()}) == {"body": f"<{len(SECRET)} bytes>"}

    def test_self_referencing_structures_do_not_recurse_forever(self):
        loop: list = []
        loop.append(loop)
        assert "…" in json.dumps(redact(loop), ensure_ascii=False)

    def test_non_string_keys(self):
        assert redact({1: "x", None: "y"}) == {1: "x", None: "y"}

    def test_input_is_not_modified(self):
        value = {"password": SECRET, "list": [{"token": TOKEN}]}
        redact(value)
        assert value == {"password": SECRET, "list": [{"token": TOKEN}]}
