"""Query functions over the read tables: what the CLI and the router ask."""

# RosterRow, SuggestionRow, roster_row and suggestion_row live in projections.rows (no
# SQLAlchemy there) and are re-exported here.

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from freegin_ai.projections.health import model_health
from freegin_ai.projections.rows import RosterRow, SuggestionRow, roster_row, suggestion_row
from freegin_ai.projections.tables import (
    provider_model_suggestions,
    provider_models,
    provider_usage_stats,
)
from freegin_ai.projections.usage import BUCKETS, decode_histogram, histogram_percentile


@dataclass(slots=True)
class ModelStats:
    """Usage totals of one model (or of several, for a total line)."""

    provider: str
    workload: str
    model: str
    arm: str = ""
    calls: int = 0
    successes: int = 0
    latency_sum_ms: int = 0
    latency_min_ms: int = 0
    latency_max_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micros: int = 0
    last_used_at: str | None = None
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    #: Streamed calls that reached a first token, and their time to it.
    ttft_calls: int = 0
    ttft_sum_ms: int = 0
    ttft_min_ms: int = 0
    ttft_max_ms: int = 0
    ttft_histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    @property
    def success_rate(self) -> float:
        """Percentage of calls that succeeded (0 when there were none)."""
        return 100.0 * self.successes / self.calls if self.calls else 0.0

    @property
    def avg_latency_ms(self) -> float:
        return self.latency_sum_ms / self.calls if self.calls else 0.0

    @property
    def p50_latency_ms(self) -> float:
        return histogram_percentile(self.histogram, 0.5, self.latency_min_ms, self.latency_max_ms)

    @property
    def p95_latency_ms(self) -> float:
        return histogram_percentile(self.histogram, 0.95, self.latency_min_ms, self.latency_max_ms)

    @property
    def p50_ttft_ms(self) -> float | None:
        """Median time to first token of streamed calls (None when none was streamed)."""
        if not self.ttft_calls:
            return None
        return histogram_percentile(self.ttft_histogram, 0.5, self.ttft_min_ms, self.ttft_max_ms)

    @property
    def p95_ttft_ms(self) -> float | None:
        if not self.ttft_calls:
            return None
        return histogram_percentile(self.ttft_histogram, 0.95, self.ttft_min_ms, self.ttft_max_ms)

    @property
    def cost_per_success_micros(self) -> float | None:
        return self.cost_micros / self.successes if self.successes else None

    def as_row(self) -> dict[str, Any]:
        """These totals in the shape of a stats row, to merge into another ModelStats."""
        return {
            "calls": self.calls,
            "successes": self.successes,
            "latency_sum_ms": self.latency_sum_ms,
            "latency_min_ms": self.latency_min_ms,
            "latency_max_ms": self.latency_max_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_micros": self.cost_micros,
            "last_used_at": self.last_used_at,
            "latency_histogram": self.histogram,
            "ttft_calls": self.ttft_calls,
            "ttft_sum_ms": self.ttft_sum_ms,
            "ttft_min_ms": self.ttft_min_ms,
            "ttft_max_ms": self.ttft_max_ms,
            "ttft_histogram": self.ttft_histogram,
        }

    def add(self, row: dict[str, Any]) -> None:
        """Merge a stats row (or another ModelStats' fields) into this one."""
        if self.calls == 0:
            self.latency_min_ms = int(row["latency_min_ms"])
            self.latency_max_ms = int(row["latency_max_ms"])
        else:
            self.latency_min_ms = min(self.latency_min_ms, int(row["latency_min_ms"]))
            self.latency_max_ms = max(self.latency_max_ms, int(row["latency_max_ms"]))
        self.calls += int(row["calls"])
        self.successes += int(row["successes"])
        self.latency_sum_ms += int(row["latency_sum_ms"])
        self.prompt_tokens += int(row["prompt_tokens"])
        self.completion_tokens += int(row["completion_tokens"])
        self.total_tokens += int(row["total_tokens"])
        self.cached_tokens += int(row.get("cached_tokens") or 0)
        self.reasoning_tokens += int(row.get("reasoning_tokens") or 0)
        self.cost_micros += int(row["cost_micros"])
        last = row["last_used_at"]
        if last and (self.last_used_at is None or last > self.last_used_at):
            self.last_used_at = last
        for index, count in enumerate(decode_histogram(row["latency_histogram"])):
            self.histogram[index] += count
        ttft_calls = int(row.get("ttft_calls") or 0)
        if ttft_calls:
            low, high = int(row["ttft_min_ms"]), int(row["ttft_max_ms"])
            first = self.ttft_calls == 0
            self.ttft_min_ms = low if first else min(self.ttft_min_ms, low)
            self.ttft_max_ms = high if first else max(self.ttft_max_ms, high)
            self.ttft_calls += ttft_calls
            self.ttft_sum_ms += int(row["ttft_sum_ms"])
            for index, count in enumerate(decode_histogram(row["ttft_histogram"])):
                self.ttft_histogram[index] += count


def list_roster(
    conn: Connection,
    *,
    provider: str | None = None,
    workload: str | None = None,
    include_retired: bool = False,
) -> list[RosterRow]:
    """Roster rows ordered by provider, workload, priority, model; retired ones only if asked."""
    t = provider_models
    query = select(t).order_by(t.c.provider, t.c.workload, t.c.priority, t.c.model)
    if provider:
        query = query.where(t.c.provider == provider)
    if workload:
        query = query.where(t.c.workload == workload)
    if not include_retired:
        query = query.where(t.c.status == "active")
    return [roster_row(dict(r)) for r in conn.execute(query).mappings()]


def list_suggestions(
    conn: Connection,
    *,
    provider: str | None = None,
    workload: str | None = None,
    statuses: tuple[str, ...] | None = None,
) -> list[SuggestionRow]:
    """Suggestions ordered by provider, workload, status, model."""
    t = provider_model_suggestions
    query = select(t).order_by(t.c.provider, t.c.workload, t.c.status, t.c.model)
    if provider:
        query = query.where(t.c.provider == provider)
    if workload:
        query = query.where(t.c.workload == workload)
    if statuses:
        query = query.where(t.c.status.in_(statuses))
    return [suggestion_row(dict(r)) for r in conn.execute(query).mappings()]


def list_usage_stats(
    conn: Connection,
    *,
    provider: str | None = None,
    workload: str | None = None,
    model: str | None = None,
    since_day: str | None = None,
) -> list[ModelStats]:
    """Per (provider, workload, model, arm) totals from the stats table, ordered by those keys."""
    t = provider_usage_stats
    query = select(t)
    if provider:
        query = query.where(t.c.provider == provider)
    if workload:
        query = query.where(t.c.workload == workload)
    if model:
        query = query.where(t.c.model == model)
    if since_day:
        query = query.where(t.c.day >= since_day)
    merged: dict[tuple[str, str, str, str], ModelStats] = {}
    for row in conn.execute(query).mappings():
        key = (row["provider"], row["workload"], row["model"], row["arm"])
        stats = merged.get(key)
        if stats is None:
            stats = merged[key] = ModelStats(
                provider=key[0], workload=key[1], model=key[2], arm=key[3]
            )
        stats.add(dict(row))
    return [merged[k] for k in sorted(merged)]


def get_usage_summary(
    conn: Connection,
    *,
    provider: str,
    workload: str | None = None,
    since_day: str | None = None,
) -> ModelStats:
    """All calls of a provider (and workload) folded into one total, as the guide's usage_stats."""
    total = ModelStats(provider=provider, workload=workload or "", model="")
    for stats in list_usage_stats(conn, provider=provider, workload=workload, since_day=since_day):
        total.add(stats.as_row())
    return total


@dataclass(frozen=True, slots=True)
class HealthRow:
    """A row of `model_health`: `model` is '' for the provider as a whole."""

    provider: str
    model: str
    consecutive_failures: int
    cooldown_until: str | None
    last_error_kind: str | None
    last_error: str | None
    last_failure_at: str | None
    last_success_at: str | None


def list_health(conn: Connection, *, provider: str | None = None) -> list[HealthRow]:
    """Health rows ordered by provider and model."""
    query = select(model_health).order_by(model_health.c.provider, model_health.c.model)
    if provider:
        query = query.where(model_health.c.provider == provider)
    return [HealthRow(**dict(r)) for r in conn.execute(query).mappings()]
