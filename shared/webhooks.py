"""Standard Webhooks (https://www.standardwebhooks.com) for the webhook ingress.

The `standardwebhooks` library does the cryptography (HMAC-SHA256 over `id.timestamp.body`,
constant-time comparison, the ±5 minute window). This module adds what the library leaves to its
caller: several secrets at once (rotation), a reason for every refusal, and checks that turn the
library's crashes on malformed headers (a signature without a comma, a non-UTF-8 body) into
refusals. Secrets and signatures never appear in a reason, a log line or an exception.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as _secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.config import DEV_MODE_ENV, dev_mode
from shared.errors import ConfigError

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # Standard Webhooks: secrets are 24 to 64 random bytes
MAX_SECRET_BYTES = 64
TOLERANCE_SECONDS = 5 * 60  # the library's fixed window; stated here for the README and the tests
MAX_BODY_BYTES = 256 * 1024  # one CloudEvent; the same bound as shared.models.events.MAX_EVENT_BYTES
MAX_SIGNATURES = 8

# A development secret for `ramflow serve` and `make demo`: published in the README, never deployed.
DEV_SECRET = "whsec_cmFtZmxvdy1kZXZlbG9wbWVudC1vbmx5LXNlY3JldCE="
WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,256}")  # visible ASCII: it becomes an idempotency key
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # integer seconds since the epoch, as the spec says
_ENTRY = re.compile(r"[a-z0-9]{1,8},[A-Za-z0-9+/=]{1,1024}")  # `<version>,<base64>`
_V1_SIGNATURE = re.compile(r"v1,[A-Za-z0-9+/]{43}=")  # base64 of the 32 bytes of HMAC-SHA256

RefusalCode = Literal[
    "missing_headers",
    "malformed_id",
    "malformed_timestamp",
    "expired",
    "future",
    "malformed_signature",
    "no_matching_signature",
]


@dataclass(frozen=True)
class Refusal:
    """Why a delivery was not accepted; `header` names the header at fault."""

    code: RefusalCode
    header: str
    reason: str


@dataclass(frozen=True)
class Delivery:
    """A delivery whose signature verified: its id (the idempotency key) and its exact body."""

    webhook_id: str
    timestamp: int
    body: bytes = field(repr=False)


class WebhookVerifier:
    """Verifies deliveries against every configured secret; the first that matches wins."""

    def __init__(self, secrets: Sequence[str]):
        if not secrets:
            raise ConfigError("RAMFLOW_WEBHOOK_SECRET is not set: the webhook ingress accepts no delivery")
        development = dev_mode()
        self._webhooks = [
            Webhook(_checked_secret(secret, index, development)) for index, secret in enumerate(secrets)
        ]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Refusal:
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id = lowered.get("webhook-id", "")
        stamp = lowered.get("webhook-timestamp", "")
        signature = lowered.get("webhook-signature", "")
        present = (("webhook-id", webhook_id), ("webhook-timestamp", stamp), ("webhook-signature", signature))
        missing = [name for name, value in present if not value]
        if missing:
            return Refusal("missing_headers", missing[0], f"missing header(s): {', '.join(missing)}")
        if not WEBHOOK_ID.fullmatch(webhook_id):
            return Refusal(
                "malformed_id", "webhook-id", "webhook-id must be 1 to 256 visible ASCII characters"
            )
        if not _TIMESTAMP.fullmatch(stamp):
            return Refusal(
                "malformed_timestamp", "webhook-timestamp", "webhook-timestamp must be integer seconds"
            )
        entries = signature.split(" ")
        # Entries of other versions (e.g. `v1a` asymmetric ones) are skipped, as the spec asks; a
        # `v1` entry that is not 32 bytes of base64 is malformed, not merely wrong.
        if (
            len(entries) > MAX_SIGNATURES
            or not all(_ENTRY.fullmatch(e) for e in entries)
            or not all(_V1_SIGNATURE.fullmatch(e) for e in entries if e.startswith("v1,"))
        ):
            return Refusal(
                "malformed_signature",
                "webhook-signature",
                "webhook-signature must be space-separated 'v1,<base64 HMAC-SHA256>' entries",
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # Signatures are computed over text; a body that is not UTF-8 cannot have been signed.
            return Refusal("no_matching_signature", "webhook-signature", "the body is not UTF-8 text")
        checked = {"webhook-id": webhook_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        last: Refusal | None = None
        for webhook in self._webhooks:
            try:
                webhook.verify(text, checked, json_parse=False)
            except WebhookVerificationError as exc:
                last = _refusal(str(exc))
                if last.code != "no_matching_signature":
                    return last  # a timestamp outside the window fails the same way for every secret
                continue
            except (ValueError, binascii.Error):
                return Refusal("malformed_signature", "webhook-signature", "webhook-signature is malformed")
            return Delivery(webhook_id, int(stamp), body)
        assert last is not None
        return last


def _refusal(message: str) -> Refusal:
    """The library's messages, mapped to codes (its exception carries no other detail)."""
    if "too old" in message:
        return Refusal(
            "expired", "webhook-timestamp", f"webhook-timestamp is more than {TOLERANCE_SECONDS}s in the past"
        )
    if "too new" in message:
        return Refusal(
            "future",
            "webhook-timestamp",
            f"webhook-timestamp is more than {TOLERANCE_SECONDS}s in the future",
        )
    if "Invalid Signature Headers" in message:
        return Refusal("malformed_timestamp", "webhook-timestamp", "webhook-timestamp is not a valid time")
    if "Missing required headers" in message:
        return Refusal("missing_headers", "webhook-signature", "missing header(s)")
    return Refusal("no_matching_signature", "webhook-signature", "no signature matches a configured secret")


def _checked_secret(secret: str, index: int, development: bool) -> str:
    """`whsec_` + base64 of 24 to 64 bytes, and not the published development secret outside
    development. The message names the position, never the value."""
    where = f"RAMFLOW_WEBHOOK_SECRET entry {index + 1}"
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(f"{where} must start with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not {SECRET_PREFIX}<base64>") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ConfigError(f"{where} must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    if secret == DEV_SECRET and not development:
        raise ConfigError(
            f"{where} is the development secret published in the README, so anyone can sign with it: "
            f"it is accepted only with {DEV_MODE_ENV}=1 (local development). Make a new one as in the "
            "README's runbook (shared.webhooks.new_secret)"
        )
    return secret


def new_secret(size: int = 32) -> str:
    """A fresh `whsec_` secret (`ramflow`'s rotation runbook uses it)."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(size)).decode("ascii")


def signed_headers(
    secret: str, webhook_id: str, body: bytes, timestamp: float | None = None
) -> dict[str, str]:
    """The three headers a sender adds; for the demo, `ramflow` tooling and replaying by hand."""
    stamp = int(time.time() if timestamp is None else timestamp)
    signature = Webhook(secret).sign(
        webhook_id, datetime.fromtimestamp(stamp, tz=timezone.utc), body.decode()
    )
    return {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
