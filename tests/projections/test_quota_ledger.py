"""The quota ledger: counts per calendar minute and day, observed facts with what was logged
since, shared buckets, Pacific days for Gemini, and a rebuild equal to the incremental rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine

from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.projections.base import Key, Row
from freegin_ai.projections.envelope import Envelope
from freegin_ai.projections.quota import QuotaLedgerProjection, list_quota_ledger
from freegin_ai.projections.tables import metadata


def usage(
    position: int, at: str, provider: str = "groq", model: str = "m", **extra: Any
) -> Envelope:
    state = {"timestamp": at, "provider": provider, "workload": "chat", "model": model,
             "success": True, "latency_ms": 5, "total_tokens": 100, **extra}  # fmt: skip
    return Envelope(position=position, version=1, topic=USAGE_LOGGED, state=state)


def fold(*events: Envelope) -> dict[Key, Row]:
    return QuotaLedgerProjection().fold_all(events)


def test_counts_per_minute_and_day_and_a_new_minute_starts_over() -> None:
    rows = fold(
        usage(1, "2026-11-24T12:00:01Z"),
        usage(2, "2026-11-24T12:00:59Z"),
        usage(3, "2026-11-24T12:01:00Z"),
    )
    minute, day = rows[("groq", "m", "minute")], rows[("groq", "m", "day")]
    assert (minute["window_start"], minute["requests"], minute["tokens"]) == (
        "2026-11-24T12:01:00Z", 1, 100)  # fmt: skip
    assert (day["window_start"], day["requests"], day["tokens"]) == ("2026-11-24T00:00:00Z", 3, 300)


def test_a_new_utc_day_starts_over_and_gemini_days_start_at_pacific_midnight() -> None:
    rows = fold(
        usage(1, "2026-11-24T23:59:59Z"),
        usage(2, "2026-11-25T00:00:00Z"),
        usage(3, "2026-11-25T07:59:59Z", provider="google", model="g"),
        usage(4, "2026-11-25T08:00:00Z", provider="google", model="g"),
    )
    assert rows[("groq", "m", "day")]["requests"] == 1
    gemini = rows[("google", "g", "day")]
    assert (gemini["window_start"], gemini["requests"]) == ("2026-11-25T08:00:00Z", 1)


def test_observed_facts_are_kept_with_what_was_logged_since() -> None:
    seen = [{"measure": "requests", "window": "day", "limit": 1000, "remaining": 3,
             "reset_at": "2026-11-24T12:03:00Z"}]  # fmt: skip
    rows = fold(
        usage(1, "2026-11-24T12:00:00Z", rate_limits=seen),
        usage(2, "2026-11-24T12:00:10Z"),
        usage(3, "2026-11-24T12:00:20Z", error_kind="no_credentials", success=False),
    )
    day = rows[("groq", "m", "day")]
    assert day["observed_request_limit"] == 1000
    assert day["observed_request_remaining"] == 3
    assert day["requests_since_observed"] == 1  # the unsent call counts nothing
    assert day["requests"] == 2


def test_openrouter_free_models_count_in_one_bucket() -> None:
    rows = fold(
        usage(1, "2026-11-24T12:00:00Z", provider="openrouter", model="a/x:free"),
        usage(2, "2026-11-24T12:00:01Z", provider="openrouter", model="b/y:free"),
        usage(3, "2026-11-24T12:00:02Z", provider="openrouter", model="c/paid"),
    )
    assert rows[("openrouter", ":free", "day")]["requests"] == 2
    assert rows[("openrouter", "c/paid", "day")]["requests"] == 1


def test_incremental_batches_and_a_rebuild_give_the_same_rows() -> None:
    events = [usage(i, f"2026-11-24T12:{i // 60:02d}:{i % 60:02d}Z", model=f"m{i % 3}")
              for i in range(1, 200)]  # fmt: skip
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    projection = QuotaLedgerProjection()
    with engine.begin() as conn:
        for start in range(0, len(events), 37):
            projection.apply(conn, events[start : start + 37])
        incremental = list_quota_ledger(conn)
    rebuilt = fold(*events)
    assert {(r.provider, r.bucket, r.window): r.usage.requests for r in incremental} == {
        key: row["requests"] for key, row in rebuilt.items()
    }
    assert {r.usage.window_start for r in incremental if r.window == "day"} == {
        datetime(2026, 11, 24, tzinfo=UTC)
    }


@pytest.mark.parametrize("model", ["", None])
def test_legacy_rows_without_a_model_count_nothing(model: str | None) -> None:
    assert fold(usage(1, "2026-11-24T12:00:00Z", model=model or "")) == {}
