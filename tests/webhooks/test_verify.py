"""Signature verification: the accepted delivery and every way a delivery is refused."""

from __future__ import annotations

import base64
import time

import pytest

from shared.errors import ConfigError
from shared.webhooks import DEV_SECRET, Delivery, Refusal, WebhookVerifier, new_secret, signed_headers
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, STRANGER_SECRET, sign

BODY = b'{"specversion":"1.0","id":"e-1","source":"itsm","type":"ramflow.access.revoked","data":{}}'


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier([NEW_SECRET, OLD_SECRET])


def refused(outcome: Delivery | Refusal) -> str:
    assert isinstance(outcome, Refusal), outcome
    return outcome.code


def test_a_delivery_signed_with_a_configured_secret_is_accepted(verifier: WebhookVerifier) -> None:
    headers = sign(NEW_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", BODY)

    outcome = verifier.verify(BODY, headers)

    assert outcome == Delivery("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int(headers["webhook-timestamp"]), BODY)


def test_rotation_accepts_the_old_and_the_new_secret(verifier: WebhookVerifier) -> None:
    assert isinstance(verifier.verify(BODY, sign(OLD_SECRET, "msg_old", BODY)), Delivery)
    assert isinstance(verifier.verify(BODY, sign(NEW_SECRET, "msg_new", BODY)), Delivery)
    assert refused(WebhookVerifier([NEW_SECRET]).verify(BODY, sign(OLD_SECRET, "m", BODY))) == (
        "no_matching_signature"
    ), "once the old secret is removed, its signatures stop working"


def test_a_sender_signing_with_both_secrets_during_rotation_is_accepted(verifier: WebhookVerifier) -> None:
    headers = sign(OLD_SECRET, "msg_both", BODY)
    stranger = sign(STRANGER_SECRET, "msg_both", BODY, at=int(headers["webhook-timestamp"]))
    headers["webhook-signature"] = f"{stranger['webhook-signature']} {headers['webhook-signature']}"

    assert isinstance(verifier.verify(BODY, headers), Delivery)


def test_header_names_are_case_insensitive(verifier: WebhookVerifier) -> None:
    headers = {k.title(): v for k, v in sign(NEW_SECRET, "msg_case", BODY).items()}

    assert isinstance(verifier.verify(BODY, headers), Delivery)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(verifier: WebhookVerifier, missing: str) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)
    del headers[missing]

    outcome = verifier.verify(BODY, headers)

    assert refused(outcome) == "missing_headers"
    assert isinstance(outcome, Refusal) and missing in outcome.reason


@pytest.mark.parametrize("webhook_id", ["msg with space", "x" * 257, "msg\x00", "é"])
def test_a_malformed_id_is_refused(verifier: WebhookVerifier, webhook_id: str) -> None:
    headers = sign(NEW_SECRET, "placeholder", BODY)
    headers["webhook-id"] = webhook_id

    assert refused(verifier.verify(BODY, headers)) == "malformed_id"


@pytest.mark.parametrize("stamp", ["1e9", "nan", "inf", "-5", "1700000000.5", "yesterday", "9" * 13])
def test_a_malformed_timestamp_is_refused(verifier: WebhookVerifier, stamp: str) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)
    headers["webhook-timestamp"] = stamp

    assert refused(verifier.verify(BODY, headers)) == "malformed_timestamp"


def test_a_timestamp_older_than_five_minutes_is_refused_even_when_signed(verifier: WebhookVerifier) -> None:
    assert refused(verifier.verify(BODY, sign(NEW_SECRET, "m", BODY, at=time.time() - 310))) == "expired"
    assert isinstance(verifier.verify(BODY, sign(NEW_SECRET, "m", BODY, at=time.time() - 280)), Delivery)


def test_a_timestamp_more_than_five_minutes_ahead_is_refused(verifier: WebhookVerifier) -> None:
    assert refused(verifier.verify(BODY, sign(NEW_SECRET, "m", BODY, at=time.time() + 310))) == "future"
    assert isinstance(verifier.verify(BODY, sign(NEW_SECRET, "m", BODY, at=time.time() + 280)), Delivery)


@pytest.mark.parametrize(
    "signature",
    [
        "v1",  # no comma: the library itself would crash on this
        "v1,not base64!",
        "v1,a,b",
        "v1,c2hvcnQ=",  # valid base64, but not 32 bytes
        " ".join(["v2,AAAA"] * 9),  # more entries than anyone sends
        "",
    ],
)
def test_a_malformed_signature_is_refused(verifier: WebhookVerifier, signature: str) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)
    headers["webhook-signature"] = signature

    assert refused(verifier.verify(BODY, headers)) in {"malformed_signature", "missing_headers"}


def test_a_signature_by_an_unknown_secret_is_refused(verifier: WebhookVerifier) -> None:
    assert refused(verifier.verify(BODY, sign(STRANGER_SECRET, "msg_1", BODY))) == "no_matching_signature"


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp"])
def test_changing_anything_signed_breaks_the_signature(verifier: WebhookVerifier, tamper: str) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"e-1", b"e-2")
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    else:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)

    assert refused(verifier.verify(body, headers)) == "no_matching_signature"


def test_only_versions_it_knows_count(verifier: WebhookVerifier) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)
    headers["webhook-signature"] = "v1a," + headers["webhook-signature"][3:]

    assert refused(verifier.verify(BODY, headers)) == "no_matching_signature"


def test_a_body_that_is_not_utf8_is_refused(verifier: WebhookVerifier) -> None:
    headers = sign(NEW_SECRET, "msg_1", BODY)

    assert refused(verifier.verify(b"\xff\xfe" + BODY, headers)) == "no_matching_signature"


def test_refusals_never_carry_the_secret_or_the_signature(verifier: WebhookVerifier) -> None:
    headers = sign(STRANGER_SECRET, "msg_1", BODY)
    outcome = verifier.verify(BODY, headers)

    assert isinstance(outcome, Refusal)
    text = repr(outcome)
    for secret in (NEW_SECRET, OLD_SECRET, STRANGER_SECRET, headers["webhook-signature"]):
        assert secret not in text
        assert secret[6:] not in text


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ([], "not set"),
        (["c2VjcmV0LXdpdGhvdXQtcHJlZml4LXRoYXQtaXMtbG9uZw=="], "must start with 'whsec_'"),
        (["whsec_***not-base64***"], "not whsec_<base64>"),
        (["whsec_" + base64.b64encode(b"too-short").decode()], "24 to 64 bytes"),
    ],
)
def test_misconfigured_secrets_are_refused_without_echoing_them(secrets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        WebhookVerifier([NEW_SECRET, *secrets] if secrets else [])

    for secret in secrets:
        assert secret not in str(raised.value)


def test_the_helpers_interoperate_with_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """ramflow's own signing helper (demo, runbook) and a fresh secret verify like any sender's."""
    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")
    secret = new_secret()
    headers = signed_headers(secret, "msg_helper", BODY)

    assert isinstance(WebhookVerifier([secret]).verify(BODY, headers), Delivery)
    assert headers == sign(secret, "msg_helper", BODY, at=int(headers["webhook-timestamp"]))
    assert isinstance(
        WebhookVerifier([DEV_SECRET]).verify(BODY, signed_headers(DEV_SECRET, "m", BODY)), Delivery
    )


@pytest.mark.parametrize("flag", [None, "0", "true", ""])
def test_the_published_development_secret_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, flag: str | None
) -> None:
    """`DEV_SECRET` is in the README: a deployment configured with it would accept anyone's events."""
    if flag is None:
        monkeypatch.delenv("RAMFLOW_DEV_MODE", raising=False)
    else:
        monkeypatch.setenv("RAMFLOW_DEV_MODE", flag)

    for secrets in ([DEV_SECRET], [NEW_SECRET, DEV_SECRET]):
        with pytest.raises(ConfigError, match="development secret") as raised:
            WebhookVerifier(secrets)
        assert "RAMFLOW_DEV_MODE=1" in str(raised.value)
        assert DEV_SECRET[len("whsec_") :] not in str(raised.value)
    assert isinstance(WebhookVerifier([NEW_SECRET]).verify(BODY, sign(NEW_SECRET, "m", BODY)), Delivery)

    monkeypatch.setenv("RAMFLOW_DEV_MODE", "1")
    assert isinstance(
        WebhookVerifier([NEW_SECRET, DEV_SECRET]).verify(BODY, sign(DEV_SECRET, "m", BODY)), Delivery
    )
