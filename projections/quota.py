"""The quota ledger read model: `quota_ledger`, one row per (provider, bucket, period).

A row counts the requests and tokens logged in the current minute or day of a bucket (a
model, or an account-wide bucket such as OpenRouter's `:free`), and keeps the provider's last
report for that window (limit, remaining, reset) with what was logged since. Only the current
window is kept: an event from a later window starts the row over. Times come from the events,
so a replay gives the same rows and every process on the database sees one ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Integer, PrimaryKeyConstraint, Table, Text, select

from freegin_ai.domain.quota import (
    DAY,
    MINUTE,
    REQUESTS,
    WINDOWS,
    WindowUsage,
    stamp_window_keys,
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

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        # The keys of a batch from its distinct (provider, model) pairs: cheaper than per event.
        pairs = {(e.state["provider"], e.state.get("model") or "") for e in events}
        keys: set[Key] = {(p, quota_bucket(p, m), w) for p, m in pairs for w in WINDOWS}
        rows = self._load(conn, keys)
        self.fold_all(events, rows)
        self._replace(conn, keys, rows)

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        # Runs for every usage event: plain dicts and string keys, no datetime parsing.
        s = event.state
        provider, model = s["provider"], s.get("model")
        if not model or s.get("error_kind") in NOT_SENT_KINDS:
            return
        bucket = quota_bucket(provider, model)
        at = event.at
        minute, day = stamp_window_keys(at, day_reset_of(provider))
        tokens = s.get("total_tokens") or 0
        seen = s.get("rate_limits")
        for window, start in ((MINUTE, minute), (DAY, day)):
            key = (provider, bucket, window)
            row = rows.get(key)
            if row is None:
                row = rows[key] = _empty(provider, bucket, window, start)
            current = row["window_start"]
            if start == current:
                row["requests"] += 1
                row["tokens"] += tokens
            elif start > current:
                row["window_start"], row["requests"], row["tokens"] = start, 1, tokens
            row["requests_since_observed"] += 1
            row["tokens_since_observed"] += tokens
            row["calls_seen"] += 1
            if at > row["last_at"]:
                row["last_at"] = at
            if seen:
                _observe(row, seen, window, at)


def _observe(row: Row, seen: list[dict[str, Any]], window: str, at: str) -> None:
    """Keep the provider's last report for this window; counting since starts again."""
    for fact in seen:
        columns = _OBSERVED.get(fact.get("measure") or "")
        if columns is None or fact.get("window") != window:
            continue
        limit_col, remaining_col, reset_col = columns
        limit, remaining, reset = fact.get("limit"), fact.get("remaining"), fact.get("reset_at")
        if isinstance(limit, int):
            row[limit_col] = limit
        row[remaining_col] = remaining if isinstance(remaining, int) else None
        row[reset_col] = reset if isinstance(reset, str) else None
        row[_SINCE[fact["measure"]]] = 0
        row["observed_at"] = at


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
