"""The quota policy: calendar windows, Pacific midnight, and routable / why / back at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freegin_ai.domain.quota import (
    DAY,
    MINUTE,
    PACIFIC_MIDNIGHT,
    REQUESTS,
    TOKENS,
    UTC_MIDNIGHT,
    Observation,
    QuotaLimits,
    WindowUsage,
    check,
    estimate_tokens,
    observation_fields,
    observations_from_fields,
    pacific_offset,
    stamp_window_keys,
    window_end,
    window_key,
    window_start,
    window_states,
)
from freegin_ai.domain.quota_limits import (
    PUBLISHED_LIMITS,
    published_limits,
    quota_bucket,
)

LA = ZoneInfo("America/Los_Angeles")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_pacific_offset_matches_the_tz_database_every_hour_for_seven_years() -> None:
    moment = at("2024-01-01T00:30:00")
    end = at("2031-01-01T00:00:00")
    while moment < end:
        assert pacific_offset(moment) == moment.astimezone(LA).utcoffset(), moment
        moment += timedelta(hours=1)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # Winter: midnight Pacific is 08:00 UTC.
        ("2026-01-15T07:59:59", "2026-01-14T08:00:00", "2026-01-15T08:00:00"),
        ("2026-01-15T08:00:00", "2026-01-15T08:00:00", "2026-01-16T08:00:00"),
        # Summer: midnight Pacific is 07:00 UTC.
        ("2026-07-04T12:00:00", "2026-07-04T07:00:00", "2026-07-05T07:00:00"),
        # The day daylight time starts (8 Mar 2026) has 23 hours.
        ("2026-03-08T12:00:00", "2026-03-08T08:00:00", "2026-03-09T07:00:00"),
        # The day it ends (1 Nov 2026) has 25 hours.
        ("2026-11-01T12:00:00", "2026-11-01T07:00:00", "2026-11-02T08:00:00"),
    ],
)
def test_gemini_days_run_from_pacific_midnight(now: str, start: str, end: str) -> None:
    assert window_start(DAY, at(now), PACIFIC_MIDNIGHT) == at(start)
    assert window_end(DAY, at(now), PACIFIC_MIDNIGHT) == at(end)
    # Cross-check with the tz database: the start is a local midnight.
    local = at(start).astimezone(LA)
    assert (local.hour, local.minute) == (0, 0)


def test_minute_and_utc_day_windows() -> None:
    now = at("2026-11-24T23:59:30.5")
    assert window_start(MINUTE, now) == at("2026-11-24T23:59:00")
    assert window_end(MINUTE, now) == at("2026-11-25T00:00:00")
    assert window_start(DAY, now, UTC_MIDNIGHT) == at("2026-11-24T00:00:00")
    assert window_end(DAY, now) == at("2026-11-25T00:00:00")
    assert window_key(MINUTE, now) == "2026-11-24T23:59:00Z"


LIMITS = QuotaLimits(requests_per_minute=10, requests_per_day=100, tokens_per_minute=1000)


def usage(window: str, now: datetime, requests: int = 0, tokens: int = 0) -> dict[str, WindowUsage]:
    start = window_start(window, now)
    return {window: WindowUsage(window_start=start, requests=requests, tokens=tokens)}


def test_routable_below_every_limit() -> None:
    now = at("2026-11-24T12:00:30")
    verdict = check(LIMITS, usage(MINUTE, now, requests=9), now, 100)
    assert verdict.routable and verdict.reason is None


def test_a_spent_minute_comes_back_at_the_next_minute() -> None:
    now = at("2026-11-24T12:00:30")
    verdict = check(LIMITS, usage(MINUTE, now, requests=10), now)
    assert not verdict.routable
    assert verdict.back_at == at("2026-11-24T12:01:00")
    assert verdict.reason == "minute requests spent, back at 12:01:00 UTC"


def test_a_spent_day_comes_back_at_midnight_utc() -> None:
    now = at("2026-11-24T15:00:00")
    verdict = check(LIMITS, usage(DAY, now, requests=100), now)
    assert verdict.back_at == at("2026-11-25T00:00:00")
    assert verdict.reason == "daily requests spent, back at 00:00 UTC"


def test_a_spent_minute_is_forgotten_when_the_minute_is_over() -> None:
    then = at("2026-11-24T12:00:30")
    rows = usage(MINUTE, then, requests=10)
    assert check(LIMITS, rows, then + timedelta(seconds=31)).routable


def test_the_request_estimate_must_fit_the_tokens_left() -> None:
    now = at("2026-11-24T12:00:30")
    rows = usage(MINUTE, now, requests=1, tokens=900)
    assert check(LIMITS, rows, now, 100).routable
    verdict = check(LIMITS, rows, now, 101)
    assert not verdict.routable
    assert verdict.reason is not None and verdict.reason.startswith("minute tokens too few")


def test_an_observed_remaining_corrects_the_count_until_its_reset() -> None:
    now = at("2026-11-24T12:00:00")
    # The table says 100 a day; the provider said 2 left, and 2 were sent since.
    row = WindowUsage(
        window_start=window_start(DAY, now),
        requests=5,
        observed_request_remaining=2,
        observed_request_reset=at("2026-11-24T12:03:00"),
        requests_since_observed=2,
    )
    verdict = check(LIMITS, {DAY: row}, now)
    assert not verdict.routable
    assert verdict.back_at == at("2026-11-24T12:03:00")
    assert check(LIMITS, {DAY: row}, at("2026-11-24T12:03:01")).routable


def test_an_observed_limit_replaces_the_configured_one() -> None:
    now = at("2026-11-24T12:00:00")
    row = WindowUsage(window_start=window_start(MINUTE, now), requests=3, observed_request_limit=3)
    states = {(s.measure, s.window): s for s in window_states(LIMITS, {MINUTE: row}, now)}
    assert states[(REQUESTS, MINUTE)].limit == 3
    assert states[(REQUESTS, MINUTE)].remaining == 0
    assert states[(TOKENS, DAY)].limit is None


def test_gemini_daily_quota_comes_back_at_pacific_midnight() -> None:
    limits = QuotaLimits(requests_per_day=250, day_reset=PACIFIC_MIDNIGHT)
    now = at("2026-11-24T20:00:00")
    rows = {DAY: WindowUsage(window_start=window_start(DAY, now, PACIFIC_MIDNIGHT), requests=250)}
    verdict = check(limits, rows, now)
    assert verdict.back_at == at("2026-11-25T08:00:00")
    assert verdict.reason == "daily requests spent, back at 08:00 UTC"


def test_the_latest_return_wins_when_several_windows_are_spent() -> None:
    now = at("2026-11-24T12:00:30")
    rows = {
        MINUTE: WindowUsage(window_start=window_start(MINUTE, now), requests=10),
        DAY: WindowUsage(window_start=window_start(DAY, now), requests=100),
    }
    assert check(LIMITS, rows, now).back_at == at("2026-11-25T00:00:00")


def test_estimate_counts_prompt_and_answer_cap() -> None:
    assert estimate_tokens(400, 50) == 150
    assert estimate_tokens(0, None) == 256


def test_observations_round_trip_through_the_stored_form() -> None:
    seen = [
        Observation(
            measure=REQUESTS,
            window=DAY,
            limit=1000,
            remaining=0,
            reset_at=at("2026-11-25T00:00:00"),
        ),
        Observation(measure=TOKENS, window=MINUTE, remaining=5),
    ]
    stored = observation_fields(seen)
    assert stored[0] == {
        "measure": "requests",
        "window": "day",
        "limit": 1000,
        "remaining": 0,
        "reset_at": "2026-11-25T00:00:00Z",
    }
    assert observations_from_fields(stored) == seen


def test_the_published_table_names_a_source_and_date_for_every_entry() -> None:
    for entry in PUBLISHED_LIMITS:
        assert entry.limits.source.startswith("https://"), entry
        assert len(entry.limits.checked) == 10, entry


def test_openrouter_free_models_share_one_account_bucket() -> None:
    assert quota_bucket("openrouter", "a/b:free") == quota_bucket("openrouter", "c/d:free")
    assert quota_bucket("openrouter", "a/b") == "a/b"
    assert published_limits("openrouter", "x/y:free").requests_per_day == 50
    assert quota_bucket("groq", "llama-3.1-8b-instant") == "llama-3.1-8b-instant"
    assert published_limits("google", "gemini-x").day_reset == PACIFIC_MIDNIGHT


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from([UTC_MIDNIGHT, PACIFIC_MIDNIGHT]),
)
def test_window_keys_sliced_from_a_stamp_equal_the_computed_ones(
    moment: datetime, day_reset: str
) -> None:
    for stamp in (moment.isoformat(), moment.isoformat().replace("+00:00", "Z")):
        assert stamp_window_keys(stamp, day_reset) == (
            window_key(MINUTE, moment),
            window_key(DAY, moment, day_reset),
        )
