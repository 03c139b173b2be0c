"""Rate-limit facts from each provider's headers and 429 bodies, normalized."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freegin_ai.adapters.providers.rate_limits import rate_limit_facts
from freegin_ai.domain.quota import DAY, MINUTE, REQUESTS, TOKENS, Observation, observation_fields
from tests.fakes.provider_server import (
    anthropic_headers,
    cerebras_headers,
    gemini_quota_body,
    groq_headers,
    openrouter_headers,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def by_key(facts: tuple[Observation, ...]) -> dict[tuple[str, str], Observation]:
    return {(o.measure, o.window): o for o in facts}


def test_groq_counts_requests_per_day_and_tokens_per_minute() -> None:
    headers = dict(
        groq_headers(requests_limit=1000, requests_left=990, tokens_limit=8000, tokens_left=7500)
    )
    facts = by_key(rate_limit_facts("groq", 200, headers, "", NOW))
    assert set(facts) == {(REQUESTS, DAY), (TOKENS, MINUTE)}
    assert facts[(REQUESTS, DAY)].limit == 1000
    assert facts[(REQUESTS, DAY)].remaining == 990
    assert facts[(REQUESTS, DAY)].reset_at == NOW + timedelta(minutes=2, seconds=59.56)
    assert facts[(TOKENS, MINUTE)].reset_at == NOW + timedelta(seconds=7.66)


def test_openai_style_requests_are_per_minute_elsewhere() -> None:
    headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-reset-requests": "1s"}
    facts = by_key(rate_limit_facts("together", 200, headers, "", NOW))
    assert facts[(REQUESTS, MINUTE)].limit == 60


def test_cerebras_names_the_window_in_the_header() -> None:
    headers = dict(
        cerebras_headers(
            requests_day=14400, requests_left=14000, tokens_minute=60000, tokens_left=59000
        )
    )
    facts = by_key(rate_limit_facts("cerebras", 200, headers, "", NOW))
    assert facts[(REQUESTS, DAY)].remaining == 14000
    assert facts[(TOKENS, MINUTE)].limit == 60000
    assert facts[(REQUESTS, DAY)].reset_at == NOW + timedelta(seconds=33011.382867097855)


def test_openrouter_reset_is_epoch_milliseconds_and_picks_the_window() -> None:
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    daily = dict(
        openrouter_headers(limit=50, left=0, reset_epoch_ms=int(midnight.timestamp() * 1000))
    )
    facts = by_key(rate_limit_facts("openrouter", 429, daily, "", NOW))
    assert facts == {
        (REQUESTS, DAY): Observation(
            measure=REQUESTS, window=DAY, limit=50, remaining=0, reset_at=midnight
        )
    }
    soon = int((NOW + timedelta(seconds=20)).timestamp() * 1000)
    minute = dict(openrouter_headers(limit=20, left=0, reset_epoch_ms=soon))
    assert set(by_key(rate_limit_facts("openrouter", 429, minute, "", NOW))) == {(REQUESTS, MINUTE)}


def test_anthropic_resets_are_rfc3339_times() -> None:
    headers = dict(
        anthropic_headers(requests_limit=50, requests_left=49, reset="2026-11-24T12:00:59Z")
    )
    facts = by_key(rate_limit_facts("anthropic", 200, headers, "", NOW))
    assert facts[(REQUESTS, MINUTE)].reset_at == datetime(2026, 11, 24, 12, 0, 59, tzinfo=UTC)
    assert facts[(TOKENS, MINUTE)].remaining == 95000


def test_gemini_daily_quota_failure_resets_at_pacific_midnight() -> None:
    body = gemini_quota_body(["GenerateRequestsPerDayPerProjectPerModel-FreeTier"], None, "g")
    facts = rate_limit_facts("google", 429, {}, body.decode(), NOW)
    assert facts == (
        Observation(
            measure=REQUESTS,
            window=DAY,
            limit=250,
            remaining=0,
            reset_at=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
        ),
    )


def test_gemini_minute_quota_with_a_short_retry_delay_is_not_a_spent_day() -> None:
    ids = [
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ]
    body = gemini_quota_body(ids, "37s", "g").decode()
    facts = by_key(rate_limit_facts("google", 429, {}, body, NOW))
    assert set(facts) == {(REQUESTS, MINUTE), (TOKENS, MINUTE)}
    assert facts[(REQUESTS, MINUTE)].reset_at == NOW + timedelta(seconds=37)
    assert facts[(REQUESTS, MINUTE)].remaining == 0


def test_nothing_when_there_is_nothing_or_it_is_garbage() -> None:
    assert rate_limit_facts("groq", 200, {"content-type": "application/json"}, "", NOW) == ()
    junk = {"x-ratelimit-remaining-requests": "lots", "x-ratelimit-reset-requests": "soon"}
    facts = rate_limit_facts("groq", 200, junk, "", NOW)
    assert all(o.remaining is None and o.reset_at is None for o in facts)
    assert rate_limit_facts("google", 429, {}, "not json", NOW) == ()


def test_implausible_counts_and_resets_are_dropped_before_they_reach_an_event() -> None:
    hostile = {
        "x-ratelimit-limit-requests": "1e30",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "99999999999999",  # an epoch in the year 5138
    }
    facts = rate_limit_facts("groq", 200, hostile, "", NOW)
    assert facts[0].reset_at is None
    stored = observation_fields(facts)
    assert stored == [{"measure": "requests", "window": "day", "remaining": 0}]
