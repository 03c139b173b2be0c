"""Quota: free-tier windows, what is left in them, and whether a model can take a request.

Pure policy over plain data: the limits (published table, config.toml, or what responses
said), what the ledger counted in the current windows, what the provider last reported, the
time, and the request's estimated tokens. Nothing here reads a clock, a file or the network.

Windows are calendar windows: a minute starts at second 0 (UTC); a day starts at midnight UTC,
or at midnight Pacific time for providers that count that way (Gemini). Pacific time is
computed from the United States daylight-saving rule (second Sunday of March to the first
Sunday of November, 02:00 local), not from the tz database, so the domain opens no tzdata
file (ADR 0014); a test checks it against `zoneinfo` hour by hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from freegin_ai.domain.capabilities import tokens_in_chars
from freegin_ai.domain.ranges import QUOTA_COUNT_MAX

MINUTE = "minute"
DAY = "day"
WINDOWS: tuple[str, ...] = (MINUTE, DAY)

REQUESTS = "requests"
TOKENS = "tokens"
MEASURES: tuple[str, ...] = (REQUESTS, TOKENS)

#: When a provider's daily counts reset.
UTC_MIDNIGHT = "utc"
PACIFIC_MIDNIGHT = "pacific"
DAY_RESETS: tuple[str, ...] = (UTC_MIDNIGHT, PACIFIC_MIDNIGHT)

#: Tokens assumed for the answer when a request sets no max_tokens.
DEFAULT_ANSWER_TOKENS = 256

_PST = timedelta(hours=-8)
_PDT = timedelta(hours=-7)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaLimits:
    """A model's free-tier limits (None: no such limit known) and where they came from.

    `bucket` names the counter the model shares: its own name, or an account-wide bucket
    such as OpenRouter's `:free` (every free model of the account counts against it).
    """

    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    day_reset: str = UTC_MIDNIGHT
    bucket: str | None = None
    source: str = ""
    checked: str = ""

    def limit(self, measure: str, window: str) -> int | None:
        """The limit of one measure in one window."""
        if measure == REQUESTS:
            return self.requests_per_minute if window == MINUTE else self.requests_per_day
        return self.tokens_per_minute if window == MINUTE else self.tokens_per_day

    @property
    def known(self) -> bool:
        """Whether any limit is known."""
        return any(self.limit(m, w) is not None for m in MEASURES for w in WINDOWS)

    def overridden_by(self, other: QuotaLimits) -> QuotaLimits:
        """These limits with every value `other` sets taking precedence."""
        return QuotaLimits(
            requests_per_minute=_first(other.requests_per_minute, self.requests_per_minute),
            requests_per_day=_first(other.requests_per_day, self.requests_per_day),
            tokens_per_minute=_first(other.tokens_per_minute, self.tokens_per_minute),
            tokens_per_day=_first(other.tokens_per_day, self.tokens_per_day),
            day_reset=other.day_reset if other.source else self.day_reset,
            bucket=other.bucket or self.bucket,
            source=other.source or self.source,
            checked=other.checked or self.checked,
        )


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What a provider said about one measure in one window (normalized, never raw headers).

    `remaining` 0 with a `reset_at` is how a 429 that names its quota is recorded.
    """

    measure: str
    window: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUsage:
    """The ledger's row for one window of one bucket.

    `requests`/`tokens` count the calls logged in the window that starts at `window_start`.
    The observed fields are the provider's last report for this window, and
    `*_since_observed` what was logged after that report.
    """

    window_start: datetime
    requests: int = 0
    tokens: int = 0
    observed_request_limit: int | None = None
    observed_request_remaining: int | None = None
    observed_request_reset: datetime | None = None
    observed_token_limit: int | None = None
    observed_token_remaining: int | None = None
    observed_token_reset: datetime | None = None
    requests_since_observed: int = 0
    tokens_since_observed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowState:
    """One measure in one window as the router sees it now."""

    measure: str
    window: str
    used: int
    limit: int | None
    remaining: int | None
    resets_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Whether a model can take a request now; if not, why and when it comes back."""

    routable: bool
    reason: str | None = None
    back_at: datetime | None = None


ROUTABLE = Verdict(routable=True)


# -- time arithmetic -----------------------------------------------------------------------


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


@lru_cache(maxsize=64)
def _dst_span(year: int) -> tuple[datetime, datetime]:
    """When US Pacific daylight time starts and ends in a year, in UTC."""
    start = datetime.combine(_nth_sunday(year, 3, 2), time(10), UTC)  # 02:00 PST
    end = datetime.combine(_nth_sunday(year, 11, 1), time(9), UTC)  # 02:00 PDT
    return start, end


def pacific_offset(at: datetime) -> timedelta:
    """The UTC offset of US Pacific time at an instant (−7 h in daylight time, else −8 h)."""
    moment = at.astimezone(UTC)
    start, end = _dst_span(moment.year)
    return _PDT if start <= moment < end else _PST


def _pacific_midnight(day: date) -> datetime:
    """Midnight at the start of a Pacific calendar day, in UTC."""
    naive = datetime.combine(day, time(0), UTC)
    # Midnight is two hours from any transition, so the offset 8 hours later is the same.
    return naive - pacific_offset(naive + timedelta(hours=8))


def window_start(window: str, at: datetime, day_reset: str = UTC_MIDNIGHT) -> datetime:
    """The start (UTC) of the window holding `at`."""
    moment = at.astimezone(UTC)
    if window == MINUTE:
        return moment.replace(second=0, microsecond=0)
    if day_reset == PACIFIC_MIDNIGHT:
        return _pacific_midnight((moment + pacific_offset(moment)).date())
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def window_end(window: str, at: datetime, day_reset: str = UTC_MIDNIGHT) -> datetime:
    """When the window holding `at` resets (UTC): the start of the next one."""
    start = window_start(window, at, day_reset)
    if window == MINUTE:
        return start + timedelta(minutes=1)
    if day_reset == PACIFIC_MIDNIGHT:
        local_day = (start + pacific_offset(start)).date()
        return _pacific_midnight(local_day + timedelta(days=1))
    return start + timedelta(days=1)


def window_key(window: str, at: datetime, day_reset: str = UTC_MIDNIGHT) -> str:
    """The window's start as stored: `YYYY-MM-DDTHH:MM:SSZ` (sorts in time order)."""
    return window_start(window, at, day_reset).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_window_keys(stamp: str, day_reset: str = UTC_MIDNIGHT) -> tuple[str, str]:
    """The minute and day window keys of an RFC 3339 UTC timestamp, by slicing the text.

    The ledger folds every usage event, so this skips parsing: a UTC stamp already says its
    minute and its UTC day, and Pacific days change on a whole UTC hour (cached per hour).
    Anything that is not a plain UTC stamp goes the long way (`window_key`).
    """
    if len(stamp) >= 16 and stamp[10] == "T" and stamp.endswith(("Z", "+00:00")):
        minute = stamp[:16] + ":00Z"
        if day_reset == PACIFIC_MIDNIGHT:
            return minute, _pacific_day_key(stamp[:13])
        return minute, stamp[:10] + "T00:00:00Z"
    at = datetime.fromisoformat(stamp)
    return window_key(MINUTE, at), window_key(DAY, at, day_reset)


@lru_cache(maxsize=4096)
def _pacific_day_key(hour: str) -> str:
    at = datetime.fromisoformat(hour + ":00:00+00:00")
    return window_key(DAY, at, PACIFIC_MIDNIGHT)


def estimate_tokens(prompt_chars: int, max_tokens: int | None) -> int:
    """Tokens a request of `prompt_chars` characters may use (see `request_tokens`)."""
    return request_tokens(tokens_in_chars(prompt_chars), max_tokens)


def request_tokens(prompt_tokens: int, max_tokens: int | None) -> int:
    """Tokens a request may use: its prompt's estimate (capabilities.prompt_token_estimate,
    the one estimate of a prompt's length) plus the answer's cap.

    Providers that reserve the whole `max_completion_tokens` up front (Cerebras) count the
    same way, so the estimate errs on the side of not sending.
    """
    answer = max_tokens if max_tokens is not None and max_tokens > 0 else DEFAULT_ANSWER_TOKENS
    return max(0, prompt_tokens) + answer


# -- the policy ------------------------------------------------------------------------------


def window_states(
    limits: QuotaLimits,
    usage: Mapping[str, WindowUsage],
    now: datetime,
) -> list[WindowState]:
    """Every (measure, window) with its use, limit and what remains now."""
    return [
        WindowState(measure=m, window=w, used=u, limit=lim, remaining=r, resets_at=at)
        for m, w, u, lim, r, at in _states(limits, usage, now)
    ]


_State = tuple[str, str, int, int | None, int | None, datetime]


@lru_cache(maxsize=256)
def _bounds(window: str, now: datetime, day_reset: str) -> tuple[datetime, datetime]:
    # A decision asks the same window of the same instant for every candidate: cached.
    return window_start(window, now, day_reset), window_end(window, now, day_reset)


def _states(limits: QuotaLimits, usage: Mapping[str, WindowUsage], now: datetime) -> list[_State]:
    states: list[_State] = []
    for window in WINDOWS:
        start, end = _bounds(window, now, limits.day_reset)
        row = usage.get(window)
        current = row is not None and row.window_start == start
        for measure in MEASURES:
            used = 0
            if row is not None and current:
                used = row.requests if measure == REQUESTS else row.tokens
            limit = limits.limit(measure, window)
            remaining = None if limit is None else limit - used
            resets_at = end
            seen = _observed(row, measure) if row is not None else None
            if seen is not None:
                seen_limit, seen_remaining, seen_reset, since = seen
                if seen_limit is not None and current:
                    limit = seen_limit
                    remaining = seen_limit - used
                if seen_remaining is not None and seen_reset is not None and now < seen_reset:
                    left = seen_remaining - since
                    if remaining is None or left < remaining:
                        remaining = left
                        resets_at = seen_reset
            if remaining is not None and remaining < 0:
                remaining = 0
            states.append((measure, window, used, limit, remaining, resets_at))
    return states


def _observed(
    row: WindowUsage, measure: str
) -> tuple[int | None, int | None, datetime | None, int] | None:
    if measure == REQUESTS:
        if row.observed_request_limit is None and row.observed_request_remaining is None:
            return None
        return (
            row.observed_request_limit,
            row.observed_request_remaining,
            row.observed_request_reset,
            row.requests_since_observed,
        )
    if row.observed_token_limit is None and row.observed_token_remaining is None:
        return None
    return (
        row.observed_token_limit,
        row.observed_token_remaining,
        row.observed_token_reset,
        row.tokens_since_observed,
    )


def check(
    limits: QuotaLimits,
    usage: Mapping[str, WindowUsage],
    now: datetime,
    estimated_tokens: int = 0,
) -> Verdict:
    """Whether a request of `estimated_tokens` fits what remains; if not, why and until when.

    A spent day keeps the model out until the day resets; a spent minute only until the
    minute does. When several windows are spent, the latest return wins.
    """
    if not usage and not _could_block(limits, estimated_tokens):
        return ROUTABLE  # nothing counted yet and every limit takes this request
    blocked: list[tuple[datetime, str]] = []
    for measure, window, _, _, remaining, resets_at in _states(limits, usage, now):
        if remaining is None:
            continue
        need = 1 if measure == REQUESTS else estimated_tokens
        if measure == TOKENS and need == 0:
            continue
        if remaining < need:
            blocked.append((resets_at, _why(measure, window, remaining, need)))
    if not blocked:
        return ROUTABLE
    back_at, why = max(blocked)
    return Verdict(routable=False, reason=f"{why}, back at {format_back(back_at, now)}",
                   back_at=back_at)  # fmt: skip


def _could_block(limits: QuotaLimits, tokens: int) -> bool:
    for window in WINDOWS:
        requests = limits.limit(REQUESTS, window)
        if requests is not None and requests < 1:
            return True
        cap = limits.limit(TOKENS, window)
        if cap is not None and cap < tokens:
            return True
    return False


def _why(measure: str, window: str, remaining: int, need: int) -> str:
    period = "daily" if window == DAY else "minute"
    if measure == TOKENS and remaining:
        return f"{period} tokens too few ({remaining} left, about {need} needed)"
    return f"{period} {measure} spent"


def format_back(back_at: datetime, now: datetime) -> str:
    """`00:00 UTC` within a day, with seconds when under an hour, with the date beyond."""
    at = back_at.astimezone(UTC)
    if at - now < timedelta(hours=1):
        return at.strftime("%H:%M:%S UTC")
    if at - now <= timedelta(hours=24):
        return at.strftime("%H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


def earliest_back(verdicts: Mapping[tuple[str, str], Verdict]) -> datetime | None:
    """The first time any of the blocked candidates comes back (None if none will)."""
    times = [v.back_at for v in verdicts.values() if not v.routable and v.back_at is not None]
    return min(times) if times else None


# -- the stored form of observations ---------------------------------------------------------


def observation_fields(
    observations: tuple[Observation, ...] | list[Observation],
) -> list[dict[str, Any]]:
    """Observations as UsageLogged stores them: plain JSON, absent values left out."""
    out: list[dict[str, Any]] = []
    for o in observations:
        if o.measure not in MEASURES or o.window not in WINDOWS:
            continue
        item: dict[str, Any] = {"measure": o.measure, "window": o.window}
        # A count no quota could be (a hostile or broken header) is left out, not stored.
        if o.limit is not None and 0 <= o.limit <= QUOTA_COUNT_MAX:
            item["limit"] = int(o.limit)
        if o.remaining is not None and 0 <= o.remaining <= QUOTA_COUNT_MAX:
            item["remaining"] = int(o.remaining)
        if o.reset_at is not None:
            item["reset_at"] = o.reset_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out.append(item)
    return out


def observations_from_fields(items: list[dict[str, Any]] | None) -> list[Observation]:
    """The observations of a stored UsageLogged event (unknown entries skipped)."""
    out: list[Observation] = []
    for item in items or ():
        measure, window = item.get("measure"), item.get("window")
        if measure not in MEASURES or window not in WINDOWS:
            continue
        reset = item.get("reset_at")
        out.append(
            Observation(
                measure=str(measure),
                window=str(window),
                limit=_int_or_none(item.get("limit")),
                remaining=_int_or_none(item.get("remaining")),
                reset_at=datetime.fromisoformat(reset) if isinstance(reset, str) else None,
            )
        )
    return out


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
