"""Reading times people type: ISO dates and times, or an age such as `7d`, `12h`, `30m`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimeFormatError(ValueError):
    """Raised when a time or age cannot be read."""


def parse_age(text: str) -> timedelta:
    """`7d` → 7 days; an age too large for a time span is a TimeFormatError."""
    match = _AGE.match(text)
    if not match:
        raise TimeFormatError(f"cannot read {text!r} as an age (use e.g. 30m, 12h, 7d, 2w)")
    try:
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise TimeFormatError(f"the age {text.strip()!r} is too large") from None


def before(now: datetime, age: str) -> datetime:
    """The time `age` (e.g. `7d`) before `now`; one before year 1 is a TimeFormatError."""
    try:
        return now - parse_age(age)
    except OverflowError:
        raise TimeFormatError(f"the age {age.strip()!r} reaches before year 1") from None


def parse_duration(text: str) -> float:
    """`30s`, `2m`, `1h` or a bare number of seconds → seconds (for `--wait`)."""
    stripped = text.strip()
    try:
        seconds = float(stripped)
    except ValueError:
        return parse_age(stripped).total_seconds()
    if not seconds >= 0 or seconds == float("inf"):
        raise TimeFormatError(f"cannot read {text!r} as a duration (use e.g. 30s, 2m or 1h)")
    return seconds


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO date or date-time (UTC unless it says otherwise), or an age before `now`."""
    if _AGE.match(text):
        return before(now, text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeFormatError(
            f"cannot read {text!r} as a time (use e.g. 2026-11-24, 2026-11-24T18:00Z or 7d)"
        ) from None
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
            if len(text.strip()) == 10:  # a bare date means the end of that day
                value += timedelta(days=1, microseconds=-1)
        return value.astimezone(UTC)
    except OverflowError:
        raise TimeFormatError(f"the time {text.strip()!r} is out of range") from None
