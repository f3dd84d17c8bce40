"""The webhooks part of `make demo` runs on its own and shows what it claims."""

from __future__ import annotations

import pytest

from local.demo import run_parts, webhooks


def test_the_demo_part_provisions_through_signed_webhooks(capsys: pytest.CaptureFixture[str]) -> None:
    run_parts([webhooks])

    out = capsys.readouterr().out
    assert "POST user.requested ITSM-1077 → HTTP 202" in out
    assert "POST access.approved ITSM-1077 → HTTP 200" in out
    assert "GetCallerIdentity → acs:ram::5123456789012345:user/payments-reporter" in out
    assert "exactly 1 AccessKey" in out
    assert "INFO:ramflow.audit" not in out
