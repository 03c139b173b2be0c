"""The quota ledger read model: `quota_ledger`, one row per (provider, bucket, period).

A row counts the requests and tokens logged in the current minute or day of a bucket (a
model, or an account-wide bucket such as OpenRouter's `:free`), and keeps the provider's last
report for that window (limit, remaining, reset) with what was logged since. Only the current
window is kept: an event from a later window starts the row over. Times come from the events,
so a replay gives the same rows and every process on the database sees one ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Integer, PrimaryKeyConstraint, Table, Text, select

from freegin_ai.domain.quota import (
    REQUESTS,
    WINDOWS,
    WindowUsage,
    observations_from_fields,
    window_key,
)
from freegin_ai.domain.quota_limits import day_reset_of, quota_bucket
from freegin_ai.projections import versions
from freegin_ai.projections.base import Key, KeyedRows, Row
from freegin_ai.projections.envelope import USAGE_TOPICS, Envelope
from freegin_ai.projections.tables import _BigInt, metadata

#: Failures that never reached the provider, so they used no quota.
NOT_SENT_KINDS = frozenset({"no_credentials"})

quota_ledger = Table(
    "quota_ledger",
    metadata,
    Column("provider", Text, nullable=False),
    Column("bucket", Text, nullable=False),
    Column("period", Text, nullable=False),  # minute or day
    Column("window_start", Text, nullable=False),  # YYYY-MM-DDTHH:MM:SSZ
    Column("requests", _BigInt, nullable=False),
    Column("tokens", _BigInt, nullable=False),
    Column("observed_request_limit", _BigInt),
    Column("observed_request_remaining", _BigInt),
    Column("observed_request_reset", Text),
    Column("observed_token_limit", _BigInt),
    Column("observed_token_remaining", _BigInt),
    Column("observed_token_reset", Text),
    Column("requests_since_observed", _BigInt, nullable=False),
    Column("tokens_since_observed", _BigInt, nullable=False),
    Column("observed_at", Text),
    Column("last_at", Text, nullable=False),
    Column("calls_seen", Integer, nullable=False),
    PrimaryKeyConstraint("provider", "bucket", "period"),
)

_OBSERVED = {
    REQUESTS: ("observed_request_limit", "observed_request_remaining", "observed_request_reset"),
    "tokens": ("observed_token_limit", "observed_token_remaining", "observed_token_reset"),
}
_SINCE = {REQUESTS: "requests_since_observed", "tokens": "tokens_since_observed"}


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class QuotaLedgerProjection(KeyedRows):
    """Keeps `quota_ledger` from UsageLogged events."""

    name: ClassVar[str] = "quota"
    version: ClassVar[int] = versions.QUOTA
    table = quota_ledger
    key_columns = ("provider", "bucket", "period")
    topics = USAGE_TOPICS

    def key_of(self, event: Envelope) -> Key:
        return self.keys_of(event)[0]

    def keys_of(self, event: Envelope) -> tuple[Key, ...]:
        s = event.state
        bucket = quota_bucket(s["provider"], s.get("model") or "")
        return tuple((s["provider"], bucket, window) for window in WINDOWS)

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        s = event.state
        provider, model = s["provider"], s.get("model")
        if not model or s.get("error_kind") in NOT_SENT_KINDS:
            return
        bucket = quota_bucket(provider, model)
        day_reset = day_reset_of(provider)
        at = datetime.fromisoformat(event.at)
        tokens = int(s.get("total_tokens") or 0)
        observations = observations_from_fields(s.get("rate_limits"))
        for window in WINDOWS:
            key = (provider, bucket, window)
            start = window_key(window, at, day_reset)
            row = rows.get(key)
            if row is None:
                row = rows[key] = _empty(provider, bucket, window, start)
            if start > row["window_start"]:
                row["window_start"], row["requests"], row["tokens"] = start, 0, 0
            if start == row["window_start"]:
                row["requests"] += 1
                row["tokens"] += tokens
            row["requests_since_observed"] += 1
            row["tokens_since_observed"] += tokens
            row["calls_seen"] += 1
            row["last_at"] = max(row["last_at"], event.at)
            for o in observations:
                if o.window != window:
                    continue
                limit_col, remaining_col, reset_col = _OBSERVED[o.measure]
                if o.limit is not None:
                    row[limit_col] = o.limit
                row[remaining_col] = o.remaining
                row[reset_col] = _stamp(o.reset_at)
                row[_SINCE[o.measure]] = 0
                row["observed_at"] = event.at


def _empty(provider: str, bucket: str, window: str, start: str) -> Row:
    return {
        "provider": provider,
        "bucket": bucket,
        "period": window,
        "window_start": start,
        "requests": 0,
        "tokens": 0,
        "observed_request_limit": None,
        "observed_request_remaining": None,
        "observed_request_reset": None,
        "observed_token_limit": None,
        "observed_token_remaining": None,
        "observed_token_reset": None,
        "requests_since_observed": 0,
        "tokens_since_observed": 0,
        "observed_at": None,
        "last_at": "",
        "calls_seen": 0,
    }


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One window of one bucket, as stored."""

    provider: str
    bucket: str
    window: str
    usage: WindowUsage
    last_at: str


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def list_quota_ledger(conn: Connection, provider: str | None = None) -> list[LedgerRow]:
    """Every ledger row (of one provider), by provider, bucket and window."""
    t = quota_ledger
    query = select(t).order_by(t.c.provider, t.c.bucket, t.c.period)
    if provider is not None:
        query = query.where(t.c.provider == provider)
    out = []
    for r in conn.execute(query).mappings():
        start = _time(r["window_start"])
        assert start is not None
        out.append(
            LedgerRow(
                provider=r["provider"],
                bucket=r["bucket"],
                window=r["period"],
                last_at=r["last_at"],
                usage=WindowUsage(
                    window_start=start,
                    requests=int(r["requests"]),
                    tokens=int(r["tokens"]),
                    observed_request_limit=r["observed_request_limit"],
                    observed_request_remaining=r["observed_request_remaining"],
                    observed_request_reset=_time(r["observed_request_reset"]),
                    observed_token_limit=r["observed_token_limit"],
                    observed_token_remaining=r["observed_token_remaining"],
                    observed_token_reset=_time(r["observed_token_reset"]),
                    requests_since_observed=int(r["requests_since_observed"]),
                    tokens_since_observed=int(r["tokens_since_observed"]),
                ),
            )
        )
    return out
