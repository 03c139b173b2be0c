"""Catalog: the command side (handlers that load aggregates, decide and append) and the query
side (read tables kept by the projector) of the model catalog, over one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid4

from sqlalchemy import Connection, distinct, select

from freegin_ai.adapters.errors import ConcurrentWriteError

if TYPE_CHECKING:
    from freegin_ai.adapters.legacy import ImportReport
from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion, RejectSuggestion, RetireModel
from freegin_ai.domain.defaults import DEFAULT_MODELS, DefaultModel
from freegin_ai.domain.names import check_model_name, check_priority, roster_entry_id, suggestion_id
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.topics import PENDING, TRIAL
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.envelope import CATALOG_TOPICS, Envelope
from freegin_ai.projections.health import HealthProjection
from freegin_ai.projections.projector import NotApplied, Progress, Projector, RebuildReport
from freegin_ai.projections.queries import (
    ModelStats,
    get_usage_summary,
    list_roster,
    list_suggestions,
    list_usage_stats,
)
from freegin_ai.projections.quota import QuotaLedgerProjection
from freegin_ai.projections.roster import RosterProjection
from freegin_ai.projections.rows import RosterRow, SuggestionRow, roster_row, suggestion_row
from freegin_ai.projections.schemas import event_problem
from freegin_ai.projections.suggestions import SuggestionProjection
from freegin_ai.projections.tables import provider_models
from freegin_ai.projections.usage import UsageRowsProjection, UsageStatsProjection

Clock = Callable[[], datetime]
A = TypeVar("A")
T = TypeVar("T")

_MAX_ATTEMPTS = 8


def utc_now() -> datetime:
    """The real clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AdoptOutcome:
    """What adopting did: `action` is adopted, reinstated, reprioritised or unchanged."""

    action: str
    provider: str
    workload: Workload
    model: str
    priority: int
    suggestion_marked: bool


@dataclass(frozen=True, slots=True)
class ProposeOutcome:
    """What proposing did to each suggestion: proposed, revised, or skipped with a reason."""

    proposed: list[str] = field(default_factory=list)
    revised: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


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


class Catalog:
    """The model catalog over one database: commands append events, queries read projections.

    Command methods import the aggregate classes when they run: a query-only process
    (`list-models`) then starts without building them.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self.store = store
        self.imported: ImportReport | None = None  # set when open() migrated a legacy database
        self.clock = clock
        self.new_id = new_id
        self.roster = RosterProjection()
        self.projector = Projector(
            store.engine,
            store,
            [
                self.roster,
                SuggestionProjection(),
                UsageRowsProjection(),
                UsageStatsProjection(),
                HealthProjection(),
                QuotaLedgerProjection(),
            ],
        )

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Clock = utc_now,
        progress: Progress | None = None,
        seed: bool = True,
    ) -> Catalog:
        """Open (creating if needed) the catalog at a database URL, caught up and seeded."""
        catalog = cls(EventStore(url), clock=clock)
        catalog.imported = catalog.store.ensure_log(progress=progress)
        catalog.projector.setup(progress=progress)
        catalog.projector.catch_up()
        if seed and catalog.seed_defaults():
            catalog.projector.catch_up()
        return catalog

    def close(self) -> None:
        self.store.close()

    # -- commands ---------------------------------------------------------------------

    def clear_provider(self, provider: str, model: str = "", reason: str | None = None) -> None:
        """Clear a sidelined provider (out of credit), or with `model` a model marked gone, so
        the router tries it again; appends ProviderCleared and leaves the tables current."""
        from freegin_ai.domain.availability import provider_cleared

        name = parse_provider(provider)
        if model:
            model = check_model_name(model)
        event = provider_cleared(
            id=self.new_id(), at=self.clock(), provider=name, model=model, reason=reason
        )
        self.store.append_new_streams([event])
        self.projector.catch_up()

    def seed_defaults(self, defaults: tuple[DefaultModel, ...] = DEFAULT_MODELS) -> int:
        """Adopt the defaults of every (provider, workload) that never had a roster entry."""

        def attempt() -> int:
            with self.store.engine.connect() as conn:
                query = select(distinct(provider_models.c.provider), provider_models.c.workload)
                seen = {(str(p), str(w)) for p, w in conn.execute(query)}
            missing = [d for d in defaults if (d.provider, d.workload.value) not in seen]
            if not missing:
                return 0
            from freegin_ai.domain.roster import RosterEntry

            at = self.clock()
            self.store.save(
                *(
                    RosterEntry.adopt(
                        provider=d.provider,
                        workload=d.workload.value,
                        model=d.model,
                        priority=d.priority,
                        rationale=d.rationale,
                        metadata=None,
                        source="default",
                        at=at,
                    )
                    for d in missing
                )
            )
            return len(missing)

        return self._retrying(attempt)

    def adopt_model(self, command: AdoptModel) -> AdoptOutcome:
        """Adopt a model (new, priority change or reinstatement); marks its suggestion adopted."""
        from freegin_ai.domain.roster import RosterEntry
        from freegin_ai.domain.suggestions import Suggestion

        provider = parse_provider(command.provider)
        workload = Workload.parse(command.workload)
        model = check_model_name(command.model)
        if command.priority is not None:
            check_priority(command.priority)

        def attempt() -> AdoptOutcome:
            at = self.clock()
            entry = self._get(RosterEntry, roster_entry_id(provider, workload.value, model))
            suggestion = self._get(Suggestion, suggestion_id(provider, workload.value, model))
            open_suggestion = (
                suggestion if suggestion and suggestion.status in (PENDING, TRIAL) else None
            )
            rationale = command.rationale
            if rationale is None and open_suggestion is not None and entry is None:
                rationale = open_suggestion.rationale
            source = (
                "suggestion" if open_suggestion and command.source == "manual" else command.source
            )
            if entry is None:
                entry = RosterEntry.adopt(
                    provider=provider,
                    workload=workload.value,
                    model=model,
                    priority=command.priority,
                    rationale=rationale,
                    metadata=command.metadata,
                    source=source,
                    at=at,
                )
                action = "adopted"
            else:
                was_active, old_priority = entry.is_active, entry.priority
                entry.adopt_again(
                    priority=command.priority,
                    rationale=rationale,
                    metadata=command.metadata,
                    source=source,
                    at=at,
                )
                if not was_active:
                    action = "reinstated"
                elif entry.priority != old_priority or entry.pending_events:
                    action = "reprioritised"
                else:
                    action = "unchanged"
            if open_suggestion is not None:
                open_suggestion.mark_adopted(priority=entry.priority, at=at)
            self.store.save(entry, open_suggestion)
            return AdoptOutcome(
                action=action,
                provider=provider,
                workload=workload,
                model=model,
                priority=entry.priority,
                suggestion_marked=open_suggestion is not None,
            )

        outcome = self._retrying(attempt)
        self.projector.catch_up()
        return outcome

    def retire_model(self, command: RetireModel) -> None:
        """Retire an active roster entry."""
        from freegin_ai.domain.errors import NotActiveError
        from freegin_ai.domain.roster import RosterEntry

        provider = parse_provider(command.provider)
        workload = Workload.parse(command.workload)
        model = command.model.strip()

        self._update(
            RosterEntry,
            roster_entry_id(provider, workload.value, model),
            lambda: NotActiveError(
                f"model {model!r} is not in the roster for provider {provider!r} "
                f"and workload {workload.value!r}"
            ),
            lambda entry: entry.retire(reason=command.reason, at=self.clock()),
        )

    def propose(
        self,
        commands: list[ProposeSuggestion],
        *,
        extra: Callable[[], Sequence[Any]] | None = None,
    ) -> ProposeOutcome:
        """Record suggestions, all in one transaction: new ones proposed, pending ones revised.

        Adopted, rejected and on-trial suggestions are left as they are and reported skipped.
        `extra` makes further aggregates to append in the same transaction (a refresh's run
        record); it is called on every attempt, since saving consumes their pending events.
        """
        from freegin_ai.domain.suggestions import Suggestion

        normalised = [
            (
                parse_provider(c.provider),
                Workload.parse(c.workload).value,
                check_model_name(c.model),
                c,
            )
            for c in commands
        ]

        def attempt() -> ProposeOutcome:
            at = self.clock()
            outcome = ProposeOutcome()
            changed: list[Suggestion] = []
            for provider, workload, model, c in normalised:
                existing = self._get(Suggestion, suggestion_id(provider, workload, model))
                details: dict[str, Any] = {
                    "rationale": c.rationale,
                    "metadata": c.metadata,
                    "production_ready": c.production_ready,
                    "notes": c.notes,
                    "provenance": c.provenance,
                }
                if existing is None:
                    changed.append(
                        Suggestion.propose(
                            provider=provider, workload=workload, model=model, at=at, **details
                        )
                    )
                    outcome.proposed.append(model)
                elif existing.status == PENDING:
                    existing.propose_again(at=at, **details)
                    changed.append(existing)
                    outcome.revised.append(model)
                else:
                    outcome.skipped.append((model, f"already {existing.status}"))
            others = list(extra()) if extra is not None else []
            if changed or others:
                self.store.save(*changed, *others)
            return outcome

        outcome = self._retrying(attempt)
        self.projector.catch_up()
        return outcome

    def reject_suggestion(self, command: RejectSuggestion) -> None:
        """Turn a suggestion down."""
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.suggestions import Suggestion

        provider = parse_provider(command.provider)
        workload = Workload.parse(command.workload)
        model = command.model.strip()

        self._update(
            Suggestion,
            suggestion_id(provider, workload.value, model),
            lambda: SuggestionStateError(
                f"no suggestion {model!r} for provider {provider!r} and workload {workload.value!r}"
            ),
            lambda suggestion: suggestion.reject(reason=command.reason, at=self.clock()),
        )

    def start_trial(self, *, provider: str, workload: str, model: str, percent: float) -> bool:
        """Put a suggestion on trial (proposing it first if nobody had); True if it was new.

        A model already in the active roster is refused (SuggestionStateError).
        """
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.roster import RosterEntry
        from freegin_ai.domain.suggestions import Suggestion

        provider = parse_provider(provider)
        workload_value = Workload.parse(workload).value
        model = check_model_name(model)

        def attempt() -> bool:
            at = self.clock()
            entry = self._get(RosterEntry, roster_entry_id(provider, workload_value, model))
            if entry is not None and entry.is_active:
                raise SuggestionStateError(
                    f"model {model!r} is already active for provider {provider!r} and workload "
                    f"{workload_value!r}: there is nothing to put on trial"
                )
            suggestion = self._get(Suggestion, suggestion_id(provider, workload_value, model))
            created = suggestion is None
            if suggestion is None:
                suggestion = Suggestion.propose(
                    provider=provider,
                    workload=workload_value,
                    model=model,
                    rationale="put on trial by hand",
                    metadata=None,
                    production_ready=None,
                    notes=None,
                    provenance={"source": "manual"},
                    at=at,
                )
            suggestion.start_trial(percent=percent, at=at)
            self.store.save(suggestion)
            return created

        created = self._retrying(attempt)
        self.projector.catch_up()
        return created

    def end_trial(
        self,
        *,
        provider: str,
        workload: str,
        model: str,
        adopt: bool,
        priority: int | None = None,
        reason: str = "",
    ) -> AdoptOutcome | None:
        """End a trial: adopt the model into the roster, or reject it."""
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.suggestions import Suggestion

        provider = parse_provider(provider)
        workload_value = Workload.parse(workload).value
        model = model.strip()
        current = self._get(Suggestion, suggestion_id(provider, workload_value, model))
        if current is None or current.status != TRIAL:
            raise SuggestionStateError(
                f"model {model!r} is not on trial for provider {provider!r} and workload "
                f"{workload_value!r}"
            )
        if adopt:
            return self.adopt_model(
                AdoptModel(
                    provider=provider,
                    workload=workload_value,
                    model=model,
                    priority=priority,
                    rationale=current.rationale,
                    source="suggestion",
                )
            )

        self._update(
            Suggestion,
            suggestion_id(provider, workload_value, model),
            lambda: SuggestionStateError(f"suggestion {model!r} disappeared"),
            lambda suggestion: suggestion.end_trial(adopt=False, reason=reason, at=self.clock()),
        )
        return None

    def log_usage(self, **fields: Any) -> None:
        """Append one UsageLogged event (its own stream, so loggers never contend)."""
        from freegin_ai.domain.usage import usage_logged

        self.store.save(usage_logged(id=self.new_id(), at=self.clock(), **fields))

    # -- queries ----------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection to read the tables after catching up with every appended event."""
        self.projector.catch_up()
        with self.store.engine.connect() as conn:
            yield conn

    def list_models(
        self,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        include_retired: bool = False,
    ) -> list[RosterRow]:
        with self.reading() as conn:
            return list_roster(
                conn,
                provider=provider,
                workload=workload.value if workload else None,
                include_retired=include_retired,
            )

    def list_suggestions(
        self, *, provider: str | None = None, workload: Workload | None = None
    ) -> list[SuggestionRow]:
        with self.reading() as conn:
            return list_suggestions(
                conn, provider=provider, workload=workload.value if workload else None
            )

    def usage_stats(
        self, provider: str, workload: Workload | None = None, since_day: str | None = None
    ) -> ModelStats:
        """Totals for a provider (and workload): calls, success rate, average latency."""
        with self.reading() as conn:
            return get_usage_summary(
                conn,
                provider=provider,
                workload=workload.value if workload else None,
                since_day=since_day,
            )

    def model_stats(
        self,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        model: str | None = None,
        since_day: str | None = None,
    ) -> list[ModelStats]:
        with self.reading() as conn:
            return list_usage_stats(
                conn,
                provider=provider,
                workload=workload.value if workload else None,
                model=model,
                since_day=since_day,
            )

    def catalog_events(self) -> Iterator[Envelope]:
        """Every roster and suggestion event, oldest first (usage events are left out)."""
        position = 0
        while True:
            batch = self.store.read(position, 5_000, topics=CATALOG_TOPICS)
            if not batch:
                return
            yield from batch
            position = batch[-1].position

    def history(
        self,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        model: str | None = None,
    ) -> list[HistoryEntry]:
        """The audit trail of the roster and suggestions, oldest first."""
        entries = []
        for event in self.catalog_events():
            entry = history_entry(event)
            if provider and entry.provider != provider:
                continue
            if workload and entry.workload != workload.value:
                continue
            if model and entry.model != model:
                continue
            entries.append(entry)
        return entries

    def roster_as_of(
        self,
        at: datetime,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        include_retired: bool = False,
    ) -> list[RosterRow]:
        """The roster as it stood at a past time, folded from the log."""
        result = [
            roster_row(r)
            for r in self._rows_as_of(RosterProjection(), at, provider, workload)
            if include_retired or r["status"] == "active"
        ]
        return sorted(result, key=lambda r: (r.provider, r.workload, r.priority, r.model))

    def suggestions_as_of(
        self,
        at: datetime,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
    ) -> list[SuggestionRow]:
        """The suggestions as they stood at a past time, folded from the log."""
        rows = [
            suggestion_row(r)
            for r in self._rows_as_of(SuggestionProjection(), at, provider, workload)
        ]
        return sorted(rows, key=lambda r: (r.provider, r.workload, r.status, r.model))

    def _rows_as_of(
        self,
        projection: RosterProjection | SuggestionProjection,
        at: datetime,
        provider: str | None,
        workload: Workload | None,
    ) -> list[dict[str, Any]]:
        """A read model's rows folded from the events up to `at`, filtered by key."""
        # Events the read side cannot apply are left out here as in the tables (ADR 0009).
        events = (
            e
            for e in self.catalog_events()
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

    def not_applied(self) -> list[NotApplied]:
        """Events the read side recorded as not applied, after catching up (ADR 0009)."""
        with self.reading() as conn:
            return self.projector.not_applied(conn)

    def replay(self, progress: Progress | None = None) -> RebuildReport:
        """Rebuild every read table from the log and compare with what was there."""
        return self.projector.rebuild(progress=progress)

    # -- helpers ----------------------------------------------------------------------

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        from eventsourcing.application import AggregateNotFoundError

        try:
            aggregate: Any = self.store.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, cls)
        return aggregate

    def _update(
        self,
        cls: type[A],
        aggregate_id: UUID,
        missing: Callable[[], Exception],
        change: Callable[[A], None],
    ) -> None:
        """Load an existing aggregate, change it, append, retrying on conflicts; catch up."""

        def attempt() -> None:
            aggregate = self._get(cls, aggregate_id)
            if aggregate is None:
                raise missing()
            change(aggregate)
            self.store.save(aggregate)

        self._retrying(attempt)
        self.projector.catch_up()

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run a load-decide-append attempt again when another writer got there first."""
        for _ in range(_MAX_ATTEMPTS):
            try:
                return attempt()
            except Exception as error:
                if not _is_conflict(error):
                    raise
                self.projector.catch_up()
        raise ConcurrentWriteError("other writers kept changing the same entries; try again")


def _is_conflict(error: Exception) -> bool:
    """Whether an append failed because another writer appended to the same stream first."""
    # Imported here: queries never need the persistence module, and it costs start-up time.
    from eventsourcing.persistence import IntegrityError

    return isinstance(error, IntegrityError)
