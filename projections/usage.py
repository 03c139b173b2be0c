"""The usage read models: `provider_usage` (one row per call) and `provider_usage_stats`
(running totals and a latency histogram per provider, workload, model, UTC day and arm)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec
from sqlalchemy import Connection, Table

from freegin_ai.projections import versions
from freegin_ai.projections.base import Key, KeyedRows, Row, Skip, bulk_insert
from freegin_ai.projections.envelope import USAGE_TOPICS, Envelope
from freegin_ai.projections.tables import provider_usage, provider_usage_stats

#: Upper bounds (ms) of the latency histogram's buckets; the last bucket is open-ended.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000,
    30000, 60000,
)  # fmt: skip
BUCKETS = len(LATENCY_BOUNDS_MS) + 1


def bucket_of(latency_ms: int) -> int:
    """The histogram bucket a latency falls in: the first whose upper bound it does not pass."""
    return bisect_left(LATENCY_BOUNDS_MS, latency_ms)


USAGE_COLUMNS = (
    "id",
    "provider",
    "model",
    "success",
    "latency_ms",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_cost_micros",
    "output_cost_micros",
    "total_cost_micros",
    "created_at",
)


def usage_row(event: Envelope) -> tuple[Any, ...]:
    """The `provider_usage` row of a UsageLogged event, in USAGE_COLUMNS order."""
    s = event.state
    get = s.get
    return (
        event.position,
        s["provider"],
        get("model"),
        1 if s["success"] else 0,
        s["latency_ms"],
        get("error"),
        get("prompt_tokens"),
        get("completion_tokens"),
        get("total_tokens"),
        get("input_cost_micros"),
        get("output_cost_micros"),
        get("total_cost_micros"),
        s["timestamp"],
    )


class UsageStatsProjection(KeyedRows):
    """Keeps `provider_usage_stats`, folded incrementally so stats never scan usage rows."""

    name: ClassVar[str] = "usage_stats"
    version: ClassVar[int] = versions.USAGE_STATS
    table = provider_usage_stats
    key_columns = ("provider", "workload", "model", "day", "arm")
    topics = USAGE_TOPICS

    def key_of(self, event: Envelope) -> Key:
        s = event.state
        return (
            s["provider"],
            s.get("workload") or "",
            s.get("model") or "",
            event.at[:10],
            s.get("arm") or "",
        )

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        # Runs for every usage event (catch-up and replay): locals, and no work for what a
        # call did not report.
        s = event.state
        get = s.get
        at: str = s["timestamp"]
        key = (s["provider"], get("workload") or "", get("model") or "", at[:10], get("arm") or "")
        latency = int(s["latency_ms"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = _new_stats_row(key, latency, at)
        row["calls"] += 1
        if s["success"]:
            row["successes"] += 1
        row["latency_sum_ms"] += latency
        if latency < row["latency_min_ms"]:
            row["latency_min_ms"] = latency
        if latency > row["latency_max_ms"]:
            row["latency_max_ms"] = latency
        for name in _COUNTED:
            value = get(name)
            if value:
                row[name] += value
        cost = get("total_cost_micros")
        if cost:
            row["cost_micros"] += cost
        row["latency_histogram"][bisect_left(LATENCY_BOUNDS_MS, latency)] += 1
        if at > row["last_used_at"]:
            row["last_used_at"] = at
        ttft = get("ttft_ms")
        if ttft is not None:
            ttft = int(ttft)
            if row["ttft_calls"] == 0:
                row["ttft_min_ms"] = row["ttft_max_ms"] = ttft
            elif ttft < row["ttft_min_ms"]:
                row["ttft_min_ms"] = ttft
            elif ttft > row["ttft_max_ms"]:
                row["ttft_max_ms"] = ttft
            row["ttft_calls"] += 1
            row["ttft_sum_ms"] += ttft
            row["ttft_histogram"][bisect_left(LATENCY_BOUNDS_MS, ttft)] += 1

    def _load(self, conn: Connection, keys: set[Key]) -> dict[Key, Row]:
        rows = super()._load(conn, keys)
        for row in rows.values():  # folds count into lists; the table keeps JSON text
            for name in _HISTOGRAMS:
                counts = decode_histogram(row[name])
                row[name] = counts + [0] * (BUCKETS - len(counts))
        return rows

    def _ordered(self, rows: dict[Key, Row]) -> list[Row]:
        ordered = []
        for key in sorted(rows):
            row = dict(rows[key])
            for name in _HISTOGRAMS:
                row[name] = msgspec.json.encode(row[name]).decode()
            ordered.append(row)
        return ordered


#: Token counts a stats row sums as the events report them.
_COUNTED = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
            "reasoning_tokens")  # fmt: skip
_HISTOGRAMS = ("latency_histogram", "ttft_histogram")


def _new_stats_row(key: Key, latency: int, at: str) -> Row:
    """A stats row before its first call is counted."""
    return {
        "provider": key[0],
        "workload": key[1],
        "model": key[2],
        "day": key[3],
        "arm": key[4],
        "calls": 0,
        "successes": 0,
        "latency_sum_ms": 0,
        "latency_min_ms": latency,
        "latency_max_ms": latency,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micros": 0,
        "latency_histogram": [0] * BUCKETS,
        "last_used_at": at,
        "ttft_calls": 0,
        "ttft_sum_ms": 0,
        "ttft_min_ms": 0,
        "ttft_max_ms": 0,
        "ttft_histogram": [0] * BUCKETS,
    }


class UsageRowsProjection:
    """Keeps `provider_usage`: append-only, one row per UsageLogged event."""

    name: ClassVar[str] = "usage"
    version: ClassVar[int] = versions.USAGE

    @property
    def tables(self) -> tuple[Table, ...]:
        return (provider_usage,)

    topics: ClassVar[frozenset[str]] = USAGE_TOPICS

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        if events:
            bulk_insert(conn, provider_usage, USAGE_COLUMNS, [usage_row(e) for e in events])

    def rebuild_batch(self, conn: Connection, events: Sequence[Envelope]) -> list[Skip]:
        self.apply(conn, events)
        return []

    def finish_rebuild(self, conn: Connection) -> None:
        """Rows were written batch by batch; nothing is left in memory."""

    def abandon_rebuild(self) -> None:
        """Nothing is kept in memory."""


def histogram_percentile(histogram: list[int], fraction: float, low: int, high: int) -> float:
    """Estimate a latency percentile from bucket counts, clamped to the seen min and max."""
    total = sum(histogram)
    if total == 0:
        return 0.0
    target = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= target:
            lower = 0 if index == 0 else LATENCY_BOUNDS_MS[index - 1]
            upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else high
            lower, upper = max(lower, low), min(upper, high)
            share = (target - seen) / count
            return float(lower + (upper - lower) * share) if upper >= lower else float(high)
        seen += count
    return float(high)


def decode_histogram(text: str | list[Any]) -> list[int]:
    """The stored histogram as a list of counts."""
    if isinstance(text, list):
        return [int(x) for x in text]
    values: list[int] = msgspec.json.decode(text)
    return values
