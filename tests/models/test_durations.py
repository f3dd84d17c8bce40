"""ISO-8601 durations: fixed-length units only, and a faithful round trip."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT6H", timedelta(days=1, hours=6)),
        ("PT90M", timedelta(minutes=90)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("P2W", timedelta(weeks=2)),
        ("P0D", timedelta(0)),
        ("P3650D", timedelta(days=3650)),
    ],
)
def test_parse(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "1D", "p30d", "P30", "P-1D", "-P1D", "P1.5D", "P1DT1H1M1S1", "P١D", " P1D"],
)
def test_malformed(text):
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M", "P2M3D"])
def test_calendar_units_are_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="months and years"):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 30, 1.5, ["P1D"]])
def test_only_strings(value):
    with pytest.raises(ValueError, match="string"):
        parse_duration(value)


def test_upper_bound():
    with pytest.raises(ValueError, match="ten years"):
        parse_duration("P3651D")


def test_very_long_input_is_refused_quickly():
    with pytest.raises(ValueError, match="too long"):
        parse_duration("P" + "9" * 10_000 + "D")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=30), "P30D"),
        (timedelta(hours=12), "PT12H"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "P1DT2H3M4S"),
        (timedelta(seconds=1.25), "PT1.25S"),
        (timedelta(0), "P0D"),
    ],
)
def test_format_round_trips(value, text):
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_negative_durations_are_not_formatted():
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))
