"""ISO-8601 durations (`P30D`, `PT12H`) as ramflow reads and writes them.

Only units with a fixed length are accepted: weeks, days, hours, minutes, seconds. Months and years
vary in length, so an expiry computed from them would depend on the calendar; requests say `P30D`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

# Sanity bound: ten years. Keeps expiry arithmetic far from datetime's limits on hostile input.
MAX_DURATION = timedelta(days=3650)

_ISO_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]{1,4})W)?(?:(?P<days>[0-9]{1,5})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,6})H)?(?:(?P<minutes>[0-9]{1,8})M)?(?:(?P<seconds>[0-9]{1,9}(?:\.[0-9]{1,6})?)S)?)?"
)
_CALENDAR_UNITS = re.compile(r"P(?:[0-9.]+Y)|P(?:[0-9.]+Y)?[0-9.]+M", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """`P30D` → 30 days. Raises ValueError with a reason that never repeats the input."""
    if not isinstance(text, str):
        raise ValueError("must be an ISO-8601 duration string such as 'P30D' or 'PT12H'")
    if len(text) > 40:
        raise ValueError("is too long for an ISO-8601 duration")
    match = _ISO_DURATION.fullmatch(text)
    if match is None or text in {"P", "PT"} or text.endswith("T"):
        if _CALENDAR_UNITS.match(text):
            raise ValueError("months and years have no fixed length; use days, e.g. 'P30D'")
        raise ValueError("must be an ISO-8601 duration such as 'P30D', 'PT12H' or 'P1DT6H'")
    parts = {unit: float(value) for unit, value in match.groupdict().items() if value is not None}
    duration = timedelta(**parts)
    if duration > MAX_DURATION:
        raise ValueError("must not exceed ten years (P3650D)")
    return duration


def format_duration(value: timedelta) -> str:
    """30 days → `P30D`; 12 hours → `PT12H`; zero → `P0D`. The inverse of `parse_duration`."""
    if value < timedelta(0):
        raise ValueError("negative durations have no ISO-8601 form here")
    days, remainder = value.days, value.seconds
    hours, remainder = divmod(remainder, 3600)
    minutes, seconds = divmod(remainder, 60)
    date_part = f"{days}D" if days else ""
    time_part = "".join(f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount)
    if seconds or value.microseconds:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        time_part += f"{seconds}{fraction}S"
    if not date_part and not time_part:
        return "P0D"
    return f"P{date_part}" + (f"T{time_part}" if time_part else "")


def _coerce(value: object) -> object:
    return value if isinstance(value, timedelta) else parse_duration(value)  # type: ignore[arg-type]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


_serialise = PlainSerializer(format_duration, return_type=str, when_used="json")

IsoDuration = Annotated[timedelta, BeforeValidator(_coerce), AfterValidator(_not_negative), _serialise]
"""A duration of zero or more, read from and written as ISO-8601."""

PositiveDuration = Annotated[timedelta, BeforeValidator(_coerce), AfterValidator(_positive), _serialise]
"""A duration longer than zero, read from and written as ISO-8601."""
