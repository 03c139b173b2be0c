"""The scheduled refresh (`refresh-models --all`): every provider with credentials, every
workload, skipping the pairs refreshed within a maximum age; one pair failing does not stop
the others. Nothing here asks anything of a person: it is meant for cron and systemd timers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from freegin_ai.adapters.errors import RefreshFailedError
from freegin_ai.adapters.refresh import (
    Listing,
    RefreshDeps,
    RefreshReport,
    Via,
    list_provider_models,
    refresh_workloads,
)
from freegin_ai.domain.workloads import ALL_WORKLOADS, Workload

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class PairResult:
    """What the scheduled refresh did with one (provider, workload)."""

    provider: str
    workload: Workload
    status: str  # refreshed, recent (skipped) or failed
    report: RefreshReport | None = None
    last_refreshed: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduledReport:
    """Every pair the scheduled refresh looked at, in provider then workload order."""

    providers: list[str]
    results: list[PairResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


async def refresh_all(
    deps: RefreshDeps,
    *,
    max_age: timedelta = timedelta(days=7),
    via: Via | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ScheduledReport:
    """Refresh every workload of every provider with credentials, each pair on its own.

    A pair refreshed within `max_age` is skipped; a pair that fails is reported and the rest
    go on. Nothing here asks anything of a person: it is meant for cron and systemd timers.
    """
    via = via if via is not None else Via.choose(None, deps.config)
    providers = deps.providers.available()
    report = ScheduledReport(providers=providers)
    latest = deps.catalog.last_refreshes()
    cutoff = deps.clock() - max_age
    total = len(providers) * len(ALL_WORKLOADS)
    for p_index, provider in enumerate(providers):
        listing: Listing | None = None
        for w_index, workload in enumerate(ALL_WORKLOADS):
            last = latest.get((provider, workload.value))
            if last is not None and last > cutoff:
                report.results.append(
                    PairResult(provider, workload, "recent", last_refreshed=last.isoformat())
                )
            else:
                if listing is None:
                    listing = await list_provider_models(deps, provider)
                report.results.append(
                    await _refresh_pair(deps, provider, workload, via, dry_run, listing)
                )
            if progress is not None:
                progress(p_index * len(ALL_WORKLOADS) + w_index + 1, total)
    return report


async def _refresh_pair(
    deps: RefreshDeps,
    provider: str,
    workload: Workload,
    via: Via,
    dry_run: bool,
    listing: Listing,
) -> PairResult:
    try:
        pair = await refresh_workloads(deps, provider, (workload,), via, dry_run, listing, None)
    except RefreshFailedError as error:
        return PairResult(provider, workload, "failed", error=str(error))
    return PairResult(provider, workload, "refreshed", report=pair)
