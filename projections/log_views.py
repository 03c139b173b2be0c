"""Views over the event log itself, for questions the read tables do not keep: the audit
trail, the roster and suggestions as they stood at a past time, and when each (provider,
workload) was last refreshed. They read through the `EventSource` port, never the adapters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from freegin_ai.domain.topics import (
    MODEL_PRIORITY_CHANGED,
    MODEL_REINSTATED,
    MODEL_RETIRED,
    MODEL_RETIREMENT_PROPOSED,
    REFRESH_COMPLETED,
)
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.envelope import CATALOG_TOPICS, ROSTER_TOPICS, Envelope, EventSource
from freegin_ai.projections.roster import RosterProjection
from freegin_ai.projections.rows import RosterRow, SuggestionRow, roster_row, suggestion_row
from freegin_ai.projections.schemas import event_problem
from freegin_ai.projections.suggestions import SuggestionProjection

#: Events read from the log per query.
_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of the audit trail."""

    position: int
    at: str
    kind: str
    provider: str
    workload: str
    model: str
    details: dict[str, Any]


_KEY_FIELDS = {"timestamp", "provider", "workload", "model", "originator_topic"}


def history_entry(event: Envelope) -> HistoryEntry:
    """An audit-trail line from a catalog event."""
    s = event.state
    return HistoryEntry(
        position=event.position,
        at=event.at,
        kind=event.kind,
        provider=s.get("provider", ""),
        workload=s.get("workload", "") or "",
        model=s.get("model", "") or "",
        details={k: v for k, v in s.items() if k not in _KEY_FIELDS},
    )


def read_all(source: EventSource, topics: frozenset[str]) -> Iterator[Envelope]:
    """Every event of these topics, oldest first, read in batches."""
    position = 0
    while batch := source.read(position, _BATCH, topics=topics):
        yield from batch
        position = batch[-1].position


def catalog_events(source: EventSource) -> Iterator[Envelope]:
    """Every roster and suggestion event, oldest first (usage events are left out)."""
    return read_all(source, CATALOG_TOPICS)


def list_history(
    source: EventSource,
    *,
    provider: str | None = None,
    workload: Workload | None = None,
    model: str | None = None,
) -> list[HistoryEntry]:
    """The audit trail of the roster and suggestions, oldest first."""
    entries = []
    for event in catalog_events(source):
        entry = history_entry(event)
        if provider and entry.provider != provider:
            continue
        if workload and entry.workload != workload.value:
            continue
        if model and entry.model != model:
            continue
        entries.append(entry)
    return entries


@dataclass(frozen=True, slots=True)
class RetirementProposal:
    """A proposal to retire an active roster entry that no person has decided on yet."""

    provider: str
    workload: str
    model: str
    at: str
    cause: str  # "delisted" (sync-models) or "gone" (a 410)
    reason: str


#: What a person does that settles a proposal (retire it, or keep it with a new priority or
#: rationale, or reinstate it), as RosterEntry does.
_SETTLING = frozenset({MODEL_RETIRED, MODEL_PRIORITY_CHANGED, MODEL_REINSTATED})


def list_retirement_proposals(
    source: EventSource, *, provider: str | None = None
) -> list[RetirementProposal]:
    """Retirement proposals still waiting for a person, by provider, workload and model
    (ADR 0016). Folded from the roster's events: the read table does not keep them."""
    pending: dict[tuple[str, str, str], RetirementProposal] = {}
    for event in read_all(source, ROSTER_TOPICS):
        if event_problem(event) is not None:
            continue
        s = event.state
        key = (s["provider"], s["workload"], s["model"])
        if event.topic == MODEL_RETIREMENT_PROPOSED:
            pending[key] = RetirementProposal(
                *key, at=event.at, cause=s.get("cause", "delisted"), reason=s["reason"]
            )
        elif event.topic in _SETTLING:
            pending.pop(key, None)
    return [p for k, p in sorted(pending.items()) if provider is None or k[0] == provider]


def list_roster_as_of(
    source: EventSource,
    at: datetime,
    *,
    provider: str | None = None,
    workload: Workload | None = None,
    include_retired: bool = False,
) -> list[RosterRow]:
    """The roster as it stood at a past time, folded from the log."""
    result = [
        roster_row(r)
        for r in _rows_as_of(source, RosterProjection(), at, provider, workload)
        if include_retired or r["status"] == "active"
    ]
    return sorted(result, key=lambda r: (r.provider, r.workload, r.priority, r.model))


def list_suggestions_as_of(
    source: EventSource,
    at: datetime,
    *,
    provider: str | None = None,
    workload: Workload | None = None,
) -> list[SuggestionRow]:
    """The suggestions as they stood at a past time, folded from the log."""
    rows = [
        suggestion_row(r)
        for r in _rows_as_of(source, SuggestionProjection(), at, provider, workload)
    ]
    return sorted(rows, key=lambda r: (r.provider, r.workload, r.status, r.model))


def _rows_as_of(
    source: EventSource,
    projection: RosterProjection | SuggestionProjection,
    at: datetime,
    provider: str | None,
    workload: Workload | None,
) -> list[dict[str, Any]]:
    """A read model's rows folded from the events up to `at`, filtered by key."""
    # Events the read side cannot apply are left out here as in the tables (ADR 0009).
    events = (
        e
        for e in catalog_events(source)
        if e.topic in projection.topics
        and event_problem(e) is None
        and datetime.fromisoformat(e.at) <= at
    )
    return [
        r
        for r in projection.fold_all(events, skipped=[]).values()
        if (provider is None or r["provider"] == provider)
        and (workload is None or r["workload"] == workload.value)
    ]


def get_last_refreshes(source: EventSource) -> dict[tuple[str, str], datetime]:
    """When each (provider, stored workload name) was last refreshed for real."""
    latest: dict[tuple[str, str], datetime] = {}
    for event in read_all(source, frozenset({REFRESH_COMPLETED})):
        if event.state.get("dry_run"):
            continue
        key = (event.state["provider"], event.state["workload"])
        at = datetime.fromisoformat(event.at)
        if key not in latest or at > latest[key]:
            latest[key] = at
    return latest
