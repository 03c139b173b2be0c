"""Catalog: the model catalog of one database as a library, a thin façade over the command
handlers (`adapters.application`) and the views (`projections.queries`, `log_views`).

`Catalog.open(url)` starts in the composition root (`adapters.bootstrap`). Commands append
events and leave the read tables current; queries catch the tables up, then read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy import Connection

from freegin_ai.adapters import bootstrap
from freegin_ai.adapters.application.roster import AdoptOutcome as AdoptOutcome
from freegin_ai.adapters.application.roster import propose_retirements
from freegin_ai.adapters.application.suggestions import ProposeOutcome as ProposeOutcome
from freegin_ai.adapters.application.writer import utc_now as utc_now
from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion, RejectSuggestion, RetireModel
from freegin_ai.domain.defaults import DEFAULT_MODELS, DefaultModel
from freegin_ai.domain.model_info import ListingChanges, ModelInfo
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections import log_views
from freegin_ai.projections.envelope import Envelope
from freegin_ai.projections.log_views import HistoryEntry as HistoryEntry
from freegin_ai.projections.log_views import RetirementProposal as RetirementProposal
from freegin_ai.projections.log_views import history_entry as history_entry
from freegin_ai.projections.projector import NotApplied, Progress, RebuildReport
from freegin_ai.projections.queries import (
    ModelStats,
    get_usage_summary,
    list_roster,
    list_suggestions,
    list_usage_stats,
)
from freegin_ai.projections.rows import RosterRow, SuggestionRow

if TYPE_CHECKING:
    from freegin_ai.adapters.legacy import ImportReport
    from freegin_ai.domain.usage import CallUsage

Clock = Callable[[], datetime]


class Catalog:
    """The model catalog over one database: commands append events, queries read projections.

    Command handlers import the aggregate classes when they run: a query-only process
    (`list-models`) then starts without building them.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], UUID] = uuid4,
        parts: bootstrap.CatalogParts | None = None,
    ) -> None:
        wired = parts or bootstrap.wire_catalog(store, clock=clock, new_id=new_id)
        self.store = wired.store
        self.projector = wired.projector
        self.clock = wired.writer.clock
        self.new_id = wired.writer.new_id
        #: Set when opening imported a database of the earlier freegin-ai.
        self.imported: ImportReport | None = wired.imported
        self._roster = wired.roster
        self._suggestions = wired.suggestions
        self._writer = wired.writer

    @property
    def commands(self) -> int:
        """Commands that appended through this catalog; a router reloads its snapshot when
        this moves (the log itself moves on every call)."""
        return self._writer.commands

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
        parts = bootstrap.start_catalog(url, clock=clock, progress=progress, seed=seed)
        return cls(parts.store, parts=parts)

    def close(self) -> None:
        self.store.close()

    # -- commands (adapters.application) ----------------------------------------------

    def clear_provider(self, provider: str, model: str = "", reason: str | None = None) -> None:
        """Clear a sidelined provider (out of credit), or with `model` a model marked gone, so
        the router tries it again; appends ProviderCleared and leaves the tables current."""
        from freegin_ai.domain.availability import provider_cleared
        from freegin_ai.domain.names import check_model_name
        from freegin_ai.domain.providers import parse_provider

        name = parse_provider(provider)
        if model:
            model = check_model_name(model)
        event = provider_cleared(
            id=self.new_id(), at=self.clock(), provider=name, model=model, reason=reason
        )
        self.store.append_new_streams([event])
        self._writer.commands += 1
        self.projector.catch_up()

    def seed_defaults(self, defaults: tuple[DefaultModel, ...] = DEFAULT_MODELS) -> int:
        """Adopt the defaults of every (provider, workload) that never had a roster entry."""
        return self._roster.seed_defaults(defaults)

    def adopt_model(self, command: AdoptModel) -> AdoptOutcome:
        """Adopt a model (new, priority change or reinstatement); marks its suggestion adopted."""
        return self._roster.adopt_model(command)

    def retire_model(self, command: RetireModel) -> None:
        """Retire an active roster entry."""
        self._roster.retire_model(command)

    def propose(
        self,
        commands: list[ProposeSuggestion],
        *,
        extra: Callable[[], Sequence[Any]] | None = None,
    ) -> ProposeOutcome:
        """Record suggestions in one transaction (see SuggestionCommands.propose)."""
        return self._suggestions.propose(commands, extra=extra)

    def reject_suggestion(self, command: RejectSuggestion) -> None:
        """Turn a suggestion down."""
        self._suggestions.reject_suggestion(command)

    def start_trial(self, *, provider: str, workload: str, model: str, percent: float) -> bool:
        """Put a suggestion on trial (proposing it first if nobody had); True if it was new."""
        return self._suggestions.start_trial(
            provider=provider, workload=workload, model=model, percent=percent
        )

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
        return self._suggestions.end_trial(
            provider=provider,
            workload=workload,
            model=model,
            adopt=adopt,
            priority=priority,
            reason=reason,
        )

    def log_usage(self, usage: CallUsage) -> None:
        """Append one UsageLogged event (its own stream, so loggers never contend)."""
        from freegin_ai.domain.usage import usage_logged

        self.store.save(usage_logged(id=self.new_id(), at=self.clock(), usage=usage))
        self.projector.catch_up()

    # -- queries (projections) --------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection to read the tables after catching up with every appended event."""
        self.projector.catch_up()
        with self.store.reader.connect() as conn:
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

    def not_listed(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Of these (provider, model) pairs, those their synced provider no longer lists,
        with since when (sync-models)."""
        from freegin_ai.projections.listing_flags import LISTING_FLAGS_SQL, not_listed

        with self.reading() as conn:
            rows = [tuple(r) for r in conn.exec_driver_sql(LISTING_FLAGS_SQL)]
        return not_listed(rows, pairs)

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
        return log_views.catalog_events(self.store)

    def history(
        self,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        model: str | None = None,
    ) -> list[HistoryEntry]:
        """The audit trail of the roster and suggestions, oldest first."""
        return log_views.list_history(self.store, provider=provider, workload=workload, model=model)

    def retirement_proposals(self, *, provider: str | None = None) -> list[RetirementProposal]:
        """Retirement proposals no person has decided on yet (a delisting or a 410)."""
        return log_views.list_retirement_proposals(self.store, provider=provider)

    def roster_as_of(
        self,
        at: datetime,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
        include_retired: bool = False,
    ) -> list[RosterRow]:
        """The roster as it stood at a past time, folded from the log."""
        return log_views.list_roster_as_of(
            self.store, at, provider=provider, workload=workload, include_retired=include_retired
        )

    def suggestions_as_of(
        self,
        at: datetime,
        *,
        provider: str | None = None,
        workload: Workload | None = None,
    ) -> list[SuggestionRow]:
        """The suggestions as they stood at a past time, folded from the log."""
        return log_views.list_suggestions_as_of(
            self.store, at, provider=provider, workload=workload
        )

    def last_refreshes(self) -> dict[tuple[str, str], datetime]:
        """When each (provider, stored workload name) was last refreshed for real."""
        return log_views.get_last_refreshes(self.store)

    def not_applied(self) -> list[NotApplied]:
        """Events the read side recorded as not applied, after catching up (ADR 0009)."""
        with self.reading() as conn:
            return self.projector.not_applied(conn)

    def replay(self, progress: Progress | None = None) -> RebuildReport:
        """Rebuild every read table from the log and compare with what was there."""
        return self.projector.rebuild(progress=progress)

    # -- provider listings (sync-models) ---------------------------------------------

    def listing_changes(self, provider: str, models: Mapping[str, ModelInfo]) -> ListingChanges:
        """What recording this listing would change (for a dry run); writes nothing."""
        from freegin_ai.domain.listing import ProviderListing, listing_id

        listing = self._writer.get(ProviderListing, listing_id(provider))
        if listing is None:
            return ListingChanges(tuple(sorted(models)), (), ())
        return listing.changes(models)

    def record_listing(
        self, provider: str, models: Mapping[str, ModelInfo], *, source: str
    ) -> tuple[ListingChanges, list[RosterRow]]:
        """Record a provider's fresh listing, and propose retiring every active roster entry
        of that provider whose model it no longer lists; all in one append.

        Returns the changes and the entries whose retirement was proposed now.
        """
        from freegin_ai.domain.listing import ProviderListing, listing_id

        provider = parse_provider(provider)

        def attempt() -> tuple[ListingChanges, list[RosterRow]]:
            at = self.clock()
            listing = self._writer.get(ProviderListing, listing_id(provider))
            if listing is None:
                listing = ProviderListing.start(provider, at)
            changes = listing.record(models, source=source, at=at)
            proposed = propose_retirements(
                self._writer,
                [r for r in self.list_models(provider=provider) if r.model not in models],
                why=lambda r: f"{provider} no longer lists {r.model} (sync-models {at.date()})",
                cause="delisted",
                source="sync-models",
                at=at,
            )
            self.store.save(listing, *(entry for _, entry in proposed))
            return changes, [row for row, _ in proposed]

        return self._writer.run(attempt)

    def propose_retirement(self, provider: str, model: str, *, reason: str) -> list[RosterRow]:
        """A provider answered 410 Gone for a model: propose retiring each of its active
        roster entries (once each, until a person decides); returns those proposed now.

        A model outside the roster has nothing to retire: nothing is appended."""
        provider = parse_provider(provider)

        def attempt() -> list[RosterRow]:
            at = self.clock()
            proposed = propose_retirements(
                self._writer,
                [r for r in self.list_models(provider=provider) if r.model == model],
                why=lambda _: reason,
                cause="gone",
                source="router",
                at=at,
            )
            if proposed:
                self.store.save(*(entry for _, entry in proposed))
            return [row for row, _ in proposed]

        return self._writer.run(attempt)
