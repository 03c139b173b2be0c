"""Ranges: the bounds of every number an event carries, checked where the number is made.

Every event is stored forever and applied by every read model on both backends, so a number
the read side cannot hold must never get into one:
- a priority fits the guide schema's INTEGER on every database (32-bit signed: PostgreSQL's
  INTEGER; SQLite's would take 64 bits, and the two must agree);
- a call's token counts and costs fit 64-bit columns with room to sum a lifetime of calls;
  the per-call bounds are far above anything real (no model has a billion-token context);
- latencies and waits are never negative, and a wait is at most a day.

The same bounds are msgspec types (`Priority`, `TokenCount`, …) so a read model can check an
event it finds in the log before applying it.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from freegin_ai.domain.errors import ValueOutOfRangeError

PRIORITY_MAX = 2**31 - 1
#: Tokens of one call (prompt, completion, total, cached or reasoning).
TOKENS_MAX = 10**9
#: Millionths of a dollar of one call: a billion dollars.
COST_MICROS_MAX = 10**15
#: Millionths of a dollar per 1,000 tokens in a configured price: a thousand dollars.
PRICE_MICROS_MAX = 10**9
#: Milliseconds of one call (INTEGER everywhere): about 24 days.
LATENCY_MS_MAX = 2**31 - 1
#: A quota a provider reports (a limit or what remains, requests or tokens, per minute or day).
QUOTA_COUNT_MAX = 10**12
#: Seconds a provider may ask us to wait; a longer Retry-After is read as this.
RETRY_AFTER_MAX_S = 86_400.0

Priority = Annotated[int, msgspec.Meta(ge=0, le=PRIORITY_MAX)]
TokenCount = Annotated[int, msgspec.Meta(ge=0, le=TOKENS_MAX)]
CostMicros = Annotated[int, msgspec.Meta(ge=0, le=COST_MICROS_MAX)]
LatencyMs = Annotated[int, msgspec.Meta(ge=0, le=LATENCY_MS_MAX)]
RetryAfter = Annotated[float, msgspec.Meta(ge=0, le=RETRY_AFTER_MAX_S)]
QuotaCount = Annotated[int, msgspec.Meta(ge=0, le=QUOTA_COUNT_MAX)]


def check_whole(name: str, value: object, maximum: int) -> int:
    """`value` if it is a whole number from 0 to `maximum`, else ValueOutOfRangeError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueOutOfRangeError(f"{name} must be a whole number, got {show_value(value)}")
    if not 0 <= value <= maximum:
        raise ValueOutOfRangeError(f"{name} must be from 0 to {maximum}, got {show_value(value)}")
    return value


def check_optional(name: str, value: object, maximum: int) -> int | None:
    """None, or `value` checked by check_whole."""
    return None if value is None else check_whole(name, value, maximum)


def check_tokens(name: str, value: object) -> int | None:
    """A token count of one call, or None when unknown."""
    return check_optional(name, value, TOKENS_MAX)


def check_cost(name: str, value: object) -> int | None:
    """A cost of one call in millionths of a dollar, or None when unknown."""
    return check_optional(name, value, COST_MICROS_MAX)


def check_latency(value: object) -> int:
    """A call's latency in milliseconds."""
    return check_whole("latency_ms", value, LATENCY_MS_MAX)


def check_retry_after(value: object) -> float | None:
    """A provider's requested wait in seconds, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueOutOfRangeError(f"retry_after_s must be a number, got {show_value(value)}")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= RETRY_AFTER_MAX_S:
        raise ValueOutOfRangeError(
            f"retry_after_s must be from 0 to {RETRY_AFTER_MAX_S:g}, got {show_value(value)}"
        )
    return number


def clamp_retry_after(seconds: float) -> float:
    """A wait a provider asked for, brought into range (a hostile header asks for centuries)."""
    if not math.isfinite(seconds):
        return RETRY_AFTER_MAX_S if seconds > 0 else 0.0
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def show_value(value: object) -> str:
    """A value for an error message: short, even when it is a 5,000-digit number."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
