"""Rate-limit facts: what a provider's response says about its quota, normalized.

One pure function, `rate_limit_facts(provider, status, headers, body, now)`, that every wire
format's adapter calls with the response it got (success or failure). It returns
`domain.quota.Observation`s and never keeps a raw header. Dialects understood:

    x-ratelimit-{limit,remaining,reset}-{requests,tokens}-{minute,day}   Cerebras: window named
    x-ratelimit-{limit,remaining,reset}-{requests,tokens}                OpenAI style; Groq counts
                                                                         requests per DAY and
                                                                         tokens per MINUTE
    X-RateLimit-{Limit,Remaining,Reset}                                  OpenRouter: requests,
                                                                         reset in epoch ms
    anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}        per minute, RFC 3339
    a Gemini 429 body: QuotaFailure quota ids (…PerDay…, …PerMinute…) and RetryInfo.retryDelay

Resets come as durations ("2m59.56s", "7.66s", "6ms"), seconds, epoch seconds or
milliseconds, or RFC 3339 times; every one becomes an absolute UTC time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from freegin_ai.domain.quota import (
    DAY,
    MINUTE,
    REQUESTS,
    TOKENS,
    Observation,
    window_end,
)
from freegin_ai.domain.quota_limits import day_reset_of

_NAMED = re.compile(r"^x-ratelimit-(limit|remaining|reset)-(requests|tokens)-(minute|day)$")
_PLAIN = re.compile(r"^x-ratelimit-(limit|remaining|reset)-(requests|tokens)$")
_ANTHROPIC = re.compile(r"^anthropic-ratelimit-(requests|tokens)-(limit|remaining|reset)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_GOOGLE_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")

#: For `x-ratelimit-*-requests` without a window: the providers that count it per day.
_REQUESTS_PER_DAY = frozenset({"groq"})

#: How far a reported reset may be from now (the longest window is a day).
_HORIZON = timedelta(days=2)

#: Beyond this, a reset without a named window is a daily one.
_MINUTE_HORIZON = timedelta(seconds=90)


def rate_limit_facts(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: str,
    now: datetime,
) -> tuple[Observation, ...]:
    """The quota facts a response carries (empty when it carries none)."""
    if not headers and status != 429:
        return ()  # most replies: no rate-limit header, and no quota failure in the body
    lowered = {k.lower(): v for k, v in headers.items() if "ratelimit" in k.lower()}
    facts: dict[tuple[str, str], dict[str, object]] = {}

    def put(measure: str, window: str, part: str, value: object) -> None:
        if value is not None:
            facts.setdefault((measure, window), {})[part] = value

    for name, value in lowered.items():
        if match := _NAMED.match(name):
            part, measure, window = match.groups()
            put(measure, window, part, _value(part, value, now))
        elif match := _PLAIN.match(name):
            part, measure = match.groups()
            window = DAY if measure == REQUESTS and provider in _REQUESTS_PER_DAY else MINUTE
            if (measure, window) in facts and part in facts[(measure, window)]:
                continue  # a window-named header said it already
            put(measure, window, part, _value(part, value, now))
        elif match := _ANTHROPIC.match(name):
            measure, part = match.groups()
            put(measure, MINUTE, part, _value(part, value, now))
    plain = {p: lowered.get(f"x-ratelimit-{p}") for p in ("limit", "remaining", "reset")}
    if any(v is not None for v in plain.values()):
        reset = _epoch(plain["reset"])
        window = DAY if reset is not None and reset - now > _MINUTE_HORIZON else MINUTE
        put(REQUESTS, window, "reset", reset)
        for part in ("limit", "remaining"):
            text = plain[part]
            if text is not None:
                put(REQUESTS, window, part, _count(text))
    observations = [
        Observation(
            measure=measure,
            window=window,
            limit=_as_int(parts.get("limit")),
            remaining=_as_int(parts.get("remaining")),
            reset_at=_plausible(_as_time(parts.get("reset")), now),
        )
        for (measure, window), parts in sorted(facts.items())
    ]
    if status == 429 and provider == "google":
        observations.extend(gemini_quota_failure(body, now))
    return tuple(observations)


def gemini_quota_failure(body: str, now: datetime) -> list[Observation]:
    """A Gemini 429's QuotaFailure violations as spent windows.

    The body may list minute and day quotas together; a day counts as spent when a per-day
    quota is listed and the retry delay is absent or longer than a minute (ADR 0014).
    """
    try:
        data = json.loads(body)
    except ValueError:
        return []
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return []
    violations: list[dict[str, object]] = []
    delay: float | None = None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("QuotaFailure") and isinstance(detail.get("violations"), list):
            violations.extend(v for v in detail["violations"] if isinstance(v, dict))
        retry = detail.get("retryDelay")
        if isinstance(retry, str) and (match := _GOOGLE_DURATION.match(retry)):
            delay = float(match.group(1))
    spent: dict[tuple[str, str], int | None] = {}
    for violation in violations:
        quota_id = str(violation.get("quotaId", ""))
        measure = TOKENS if "Token" in quota_id else REQUESTS
        window = DAY if "PerDay" in quota_id else MINUTE if "PerMinute" in quota_id else None
        if window is None:
            continue
        spent[(measure, window)] = _count(str(violation.get("quotaValue", "")))
    day_spent = any(w == DAY for _, w in spent) and (delay is None or delay > 60)
    reset_day = window_end(DAY, now, day_reset_of("google"))
    minute_back = now + timedelta(seconds=delay) if delay is not None else None
    observations = []
    for (measure, window), limit in sorted(spent.items()):
        if window == DAY and not day_spent:
            continue
        if window == MINUTE and day_spent:
            continue
        reset = reset_day if window == DAY else (minute_back or window_end(MINUTE, now))
        observations.append(
            Observation(measure=measure, window=window, limit=limit, remaining=0, reset_at=reset)
        )
    return observations


def _value(part: str, text: str, now: datetime) -> object:
    return _reset(text, now) if part == "reset" else _count(text)


def _count(text: str) -> int | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


def _reset(text: str, now: datetime) -> datetime | None:
    """A reset as a duration ("1m2.5s"), seconds ("33011.38"), or an RFC 3339 time."""
    value = text.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
        if seconds > 1e9:  # an epoch, in seconds or milliseconds
            return _epoch(value)
        return now + timedelta(seconds=seconds)
    parts = _DURATION_PART.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return now + timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _epoch(text: str | None) -> datetime | None:
    """Epoch milliseconds (OpenRouter) or seconds, told apart by size."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    seconds = value / 1000.0 if value > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _plausible(reset: datetime | None, now: datetime) -> datetime | None:
    """A reset within the longest window (a day, with a day to spare), else none: a hostile
    or broken header must not keep a model out for years."""
    if reset is None or not now - _HORIZON <= reset <= now + _HORIZON:
        return None
    return reset


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _as_time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None
