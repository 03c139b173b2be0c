"""The health fold: backoff that grows, Retry-After honoured, provider-wide sidelines, resets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.projections.base import Key, Row
from freegin_ai.projections.envelope import Envelope
from freegin_ai.projections.health import HealthProjection

T0 = datetime.fromisoformat("2026-11-01T12:00:00+00:00")


def usage(position: int, success: bool, kind: str | None = None, **extra: Any) -> Envelope:
    at = (T0 + timedelta(seconds=position)).isoformat().replace("+00:00", "Z")
    state = {"timestamp": at, "provider": "groq", "workload": "chat", "model": "m",
             "success": success, "latency_ms": 5, "error_kind": kind, **extra}  # fmt: skip
    return Envelope(position=position, version=1, topic=USAGE_LOGGED, state=state)


def seconds_until(row: Row, position: int) -> float:
    until = datetime.fromisoformat(row["cooldown_until"])
    return (until - (T0 + timedelta(seconds=position))).total_seconds()


def test_consecutive_failures_lengthen_the_cooldown_and_a_success_resets() -> None:
    projection = HealthProjection()
    rows: dict[Key, Row] = {}
    projection.fold_all([usage(1, False, "server"), usage(2, False, "timeout")], rows)
    row = rows[("groq", "m")]
    assert row["consecutive_failures"] == 2
    assert seconds_until(row, 2) == 60
    projection.fold_all([usage(3, False, "rate_limited", retry_after_s=900)], rows)
    assert seconds_until(rows[("groq", "m")], 3) == 900
    projection.fold_all([usage(4, True)], rows)
    assert rows[("groq", "m")]["consecutive_failures"] == 0
    assert rows[("groq", "m")]["cooldown_until"] is None


def test_auth_failures_sideline_the_provider_not_the_model_and_bad_requests_count_nothing() -> None:
    projection = HealthProjection()
    rows = projection.fold_all([usage(1, False, "auth"), usage(2, False, "bad_request")])
    assert set(rows) == {("groq", "")}
    assert rows[("groq", "")]["last_error_kind"] == "auth"
    projection.fold_all([usage(3, True)], rows)
    assert rows[("groq", "")]["cooldown_until"] is None


def test_usage_without_a_model_says_nothing_about_health() -> None:
    rows = HealthProjection().fold_all([usage(1, False, "server", model=None)])
    assert rows == {}
