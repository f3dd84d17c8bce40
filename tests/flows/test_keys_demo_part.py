"""The AccessKey hygiene part of `make demo` runs on its own and shows what it claims."""

from __future__ import annotations

import pytest

from local.demo import key_hygiene, run_parts
from shared.flows.keys import RULES


def test_the_demo_part_shows_the_three_rules_and_a_finished_rotation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_parts([key_hygiene])
    out = capsys.readouterr().out
    for rule in RULES:
        assert rule in out
    assert "after the overlap: the old key is Inactive" in out
    assert "Rotation of billing-etl: completed; its AccessKey findings now: none." in out
    assert "rotation held" in out
    assert "the new secret arrives by callback, verified with standardwebhooks" in out
    assert '"requestsource": "ramflow.reconcile"' in out
    assert "Callbacks carrying a secret: 1." in out, "the rotated key's secret arrived exactly once"
