"""Refresh: the `refresh-models` handler. It asks a reliable LLM, through the router, for new
candidate models of a provider, checks the answer against the models the provider lists, and
proposes what it keeps as pending suggestions.

One run asks once per workload, then records every kept suggestion, and one `RefreshRun` per
workload, with a single `Catalog.propose`: all of it or nothing. A dry run asks the same way
but writes nothing: the router's usage is discarded while it runs.

`refresh_all` is the scheduled refresh: every provider with credentials, every workload,
skipping the pairs refreshed within a maximum age; one pair failing does not stop the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from freegin_ai.adapters.catalog import Catalog, ProposeOutcome
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AdapterError, ProviderError
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    GenerateRequest,
    GenerateResult,
    NoCandidateError,
    Router,
)
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.commands import ProposeSuggestion
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.refresh import (
    Constraints,
    CurrentModel,
    Dropped,
    ParsedSuggestion,
    UnusableResponseError,
    UsageTotals,
    build_context,
    build_prompt,
    parse_suggestions,
    prompt_hash,
)
from freegin_ai.domain.refresh_parsing import MAX_SHOWN_MODEL, clean_text
from freegin_ai.domain.refresh_runs import RefreshRun
from freegin_ai.domain.topics import REFRESH_COMPLETED
from freegin_ai.domain.workloads import ALL_WORKLOADS, Workload
from freegin_ai.projections.queries import ModelStats
from freegin_ai.projections.rows import RosterRow

#: The recent usage window sent with the context, in days (today included).
WINDOW_DAYS = 7
#: The raw answer kept in each suggestion's provenance is cut to this many characters.
MAX_STORED_RESPONSE = 20_000
#: A failure message is cut to this many characters, so it stays one readable line.
MAX_ERROR = 600

Progress = Callable[[int, int], None]


class RefreshFailedError(AdapterError):
    """Raised when the answering LLM fails, times out or says nothing usable.

    No suggestion and no run record is written; the failed call's usage is logged like any call's.
    """


class DiscardingUsageLog(UsageLog):
    """A usage log that drops every event: a dry run must leave the database as it was."""

    def log(self, **fields: Any) -> None:
        """Drop the event."""

    def flush(self) -> int:
        """Nothing is ever buffered, so nothing is appended (not even at exit)."""
        return 0


@dataclass(frozen=True, slots=True)
class Via:
    """Who answers a refresh: a provider and maybe a model; neither means the router chooses."""

    provider: str | None = None
    model: str | None = None

    @classmethod
    def parse(cls, text: str) -> Via:
        """`groq` or `groq/llama-3.3-70b-versatile` (the model may hold slashes itself)."""
        provider, _, model = text.strip().partition("/")
        return cls(provider=parse_provider(provider), model=model.strip() or None)

    @classmethod
    def choose(cls, option: str | None, config: Config) -> Via:
        """`--via` if given, else `[refresh] via` from config.toml, else the router's choice."""
        text = option if option and option.strip() else config.refresh_via
        return cls.parse(text) if text else cls()

    def __str__(self) -> str:
        if self.provider is None:
            return "the router's choice"
        return f"{self.provider}/{self.model}" if self.model else self.provider


@dataclass(frozen=True, slots=True)
class Listing:
    """The models a provider lists, or why they are unknown (`models` is then None)."""

    models: tuple[str, ...] | None
    problem: str | None = None

    def listed(self, model: str) -> bool | None:
        """Whether the provider lists `model` (case aside); None when the list is unknown."""
        if self.models is None:
            return None
        return model.casefold() in {name.casefold() for name in self.models}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the LLM said about one workload, and what was kept of it."""

    workload: Workload
    provider: str
    model: str
    at: str
    prompt_sha256: str
    response: str
    kept: list[ParsedSuggestion]
    dropped: list[Dropped]


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """One run: the answers per workload and, unless a dry run, what the catalog did."""

    provider: str
    dry_run: bool
    via: str
    answers: list[Answer]
    listing: Listing
    outcome: ProposeOutcome | None = None

    @property
    def kept(self) -> list[ParsedSuggestion]:
        return [s for a in self.answers for s in a.kept]

    @property
    def dropped(self) -> list[Dropped]:
        return [d for a in self.answers for d in a.dropped]


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


# -- one provider ---------------------------------------------------------------------------


async def refresh(
    router: Router,
    *,
    provider: str,
    workloads: Sequence[Workload] = (Workload.CHAT,),
    via: Via | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RefreshReport:
    """Refresh the suggestions of one provider for `workloads`, in one transaction.

    Raises RefreshFailedError, with no suggestion written, when any answer is missing or
    unusable.
    """
    provider = parse_provider(provider)
    via = via if via is not None else Via.choose(None, router.config)
    listing = await list_provider_models(router, provider)
    return await _refresh(router, provider, workloads, via, dry_run, listing, progress)


async def _refresh(
    router: Router,
    provider: str,
    workloads: Sequence[Workload],
    via: Via,
    dry_run: bool,
    listing: Listing,
    progress: Progress | None,
) -> RefreshReport:
    answers: list[Answer] = []
    seen: set[tuple[Workload, str]] = set()
    if progress is not None:
        progress(0, len(workloads))
    with _usage_discarded(router, dry_run):
        for done, workload in enumerate(workloads, 1):
            answer = await _ask(router, provider, workload, via, listing)
            answers.append(_checked(answer, listing, seen))
            if progress is not None:
                progress(done, len(workloads))
    report = RefreshReport(
        provider=provider, dry_run=dry_run, via=str(via), answers=answers, listing=listing
    )
    if dry_run:
        return report
    outcome = _record(router.catalog, provider, answers)
    router.usage.flush()
    return dataclasses.replace(report, outcome=outcome)


async def list_provider_models(router: Router, provider: str) -> Listing:
    """The models `provider` lists, when it can be called here and answers."""
    why = router.providers.unavailable(provider)
    if why is not None:
        return Listing(None, f"{provider} cannot be asked for its models: {why}")
    try:
        models = await router.providers.adapter(provider).list_models(router.client)
    except ProviderError as error:
        return Listing(None, f"listing {provider}'s models failed: {_one_line(str(error))}")
    if not models:
        return Listing(None, f"{provider} listed no models")
    return Listing(tuple(models))


@contextmanager
def _usage_discarded(router: Router, dry_run: bool) -> Iterator[None]:
    """In a dry run, give the router a usage log that drops everything, then put it back."""
    if not dry_run:
        yield
        return
    saved = router.usage
    router.usage = DiscardingUsageLog(router.catalog.store, router.clock)
    try:
        yield
    finally:
        router.usage.close()
        router.usage = saved


async def _ask(
    router: Router, provider: str, workload: Workload, via: Via, listing: Listing
) -> Answer:
    """Ask the LLM about one workload and parse its answer; raise RefreshFailedError."""
    catalog = router.catalog
    roster = catalog.list_models(provider=provider)
    context = build_context(
        provider=provider,
        workload=workload,
        current_models=[
            CurrentModel(model=r.model, priority=r.priority, rationale=r.rationale)
            for r in roster
            if r.workload == workload.value
        ],
        totals=_totals(catalog.usage_stats(provider, workload)),
        recent=_totals(catalog.usage_stats(provider, workload, since_day=_window_start(router))),
        window_days=WINDOW_DAYS,
        constraints=Constraints(
            max_cost_per_1k_tokens=router.config.max_cost_per_1k_tokens,
            max_latency_ms=router.config.max_latency_ms,
        ),
        known_models=listing.models,
    )
    system, user = build_prompt(context)
    result = await _generate(router, provider, workload, via, system, user)
    response = _scrubbed(router, result.text)
    try:
        parsed = parse_suggestions(
            response,
            provider=provider,
            default_workload=workload,
            active_models=_active(roster),
        )
    except UnusableResponseError as error:
        raise RefreshFailedError(
            f"{result.provider}/{result.model} gave no usable answer about "
            f"{provider}/{workload.value}: {error}"
        ) from None
    return Answer(
        workload=workload,
        provider=result.provider,
        model=result.model,
        at=router.clock().isoformat(),
        prompt_sha256=prompt_hash(system, user),
        response=response,
        kept=parsed.kept,
        dropped=parsed.dropped,
    )


async def _generate(
    router: Router, provider: str, workload: Workload, via: Via, system: str, user: str
) -> GenerateResult:
    request = GenerateRequest(
        prompt=user, system=system, workload=Workload.CHAT, provider=via.provider, model=via.model
    )
    about = f"{provider}/{workload.value}"
    try:
        return await router.generate(request)
    except NoCandidateError as error:
        raise RefreshFailedError(
            _one_line(f"no model to ask about {about} via {via}: {error}")
        ) from None
    except AllAttemptsFailedError as error:
        tried = "; ".join(f"{a.provider}/{a.model}: {a.error}" for a in error.attempts)
        raise RefreshFailedError(
            _one_line(f"asking about {about} via {via} failed: {tried}")
        ) from None


def _checked(answer: Answer, listing: Listing, seen: set[tuple[Workload, str]]) -> Answer:
    """Mark each kept suggestion listed or not, and drop those already kept in this run."""
    kept: list[ParsedSuggestion] = []
    dropped = list(answer.dropped)
    for suggestion in answer.kept:
        key = (suggestion.workload, suggestion.model.casefold())
        if key in seen:
            dropped.append(
                Dropped(
                    model=clean_text(suggestion.model, MAX_SHOWN_MODEL),
                    reason=f"already suggested for {suggestion.workload.display} in this run",
                )
            )
            continue
        seen.add(key)
        listed = listing.listed(suggestion.model)
        if listed is not None:
            metadata = {**suggestion.metadata, "listed_by_provider": listed}
            suggestion = msgspec.structs.replace(suggestion, metadata=metadata)
        kept.append(suggestion)
    return dataclasses.replace(answer, kept=kept, dropped=dropped)


def _record(catalog: Catalog, provider: str, answers: list[Answer]) -> ProposeOutcome:
    """Propose every kept suggestion and record one run per workload, in one transaction."""
    commands = [
        ProposeSuggestion(
            provider=provider,
            workload=s.workload.value,
            model=s.model,
            rationale=s.rationale or None,
            metadata=dict(s.metadata) or None,
            production_ready=s.production_ready,
            notes=s.notes or None,
            provenance=_provenance(provider, answer),
        )
        for answer in answers
        for s in answer.kept
    ]
    ids = [catalog.new_id() for _ in answers]
    at = catalog.clock()

    def runs() -> list[RefreshRun]:
        return [
            RefreshRun.complete(
                id=run_id,
                provider=provider,
                workload=answer.workload.value,
                via_provider=answer.provider,
                via_model=answer.model,
                kept=len(answer.kept),
                dropped=len(answer.dropped),
                at=at,
            )
            for run_id, answer in zip(ids, answers, strict=True)
        ]

    return catalog.propose(commands, extra=runs)


def _provenance(provider: str, answer: Answer) -> dict[str, Any]:
    return {
        "provider": answer.provider,
        "model": answer.model,
        "at": answer.at,
        "prompt_sha256": answer.prompt_sha256,
        "response": answer.response[:MAX_STORED_RESPONSE],
        "refreshed_provider": provider,
        "workload": answer.workload.value,
    }


def _totals(stats: ModelStats) -> UsageTotals:
    return UsageTotals(
        calls=stats.calls, successes=stats.successes, latency_ms_sum=stats.latency_sum_ms
    )


def _window_start(router: Router) -> str:
    return (router.clock() - timedelta(days=WINDOW_DAYS - 1)).date().isoformat()


def _active(roster: list[RosterRow]) -> list[tuple[Workload, str]]:
    return [(Workload(r.workload), r.model) for r in roster]


def _scrubbed(router: Router, text: str) -> str:
    # An answer is stored and printed; no key in use may ride along in it.
    return scrub(text, router.providers.secrets())


def _one_line(text: str) -> str:
    return clean_text(text, MAX_ERROR)


# -- the scheduled refresh ------------------------------------------------------------------


def last_refreshes(catalog: Catalog) -> dict[tuple[str, str], datetime]:
    """When each (provider, stored workload name) was last refreshed for real."""
    latest: dict[tuple[str, str], datetime] = {}
    position = 0
    topics = frozenset({REFRESH_COMPLETED})
    while batch := catalog.store.read(position, 5_000, topics=topics):
        for event in batch:
            if event.state.get("dry_run"):
                continue
            key = (event.state["provider"], event.state["workload"])
            at = datetime.fromisoformat(event.at)
            if key not in latest or at > latest[key]:
                latest[key] = at
        position = batch[-1].position
    return latest


async def refresh_all(
    router: Router,
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
    via = via if via is not None else Via.choose(None, router.config)
    providers = router.providers.available()
    report = ScheduledReport(providers=providers)
    latest = last_refreshes(router.catalog)
    cutoff = router.clock() - max_age
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
                    listing = await list_provider_models(router, provider)
                report.results.append(
                    await _refresh_pair(router, provider, workload, via, dry_run, listing)
                )
            if progress is not None:
                progress(p_index * len(ALL_WORKLOADS) + w_index + 1, total)
    return report


async def _refresh_pair(
    router: Router,
    provider: str,
    workload: Workload,
    via: Via,
    dry_run: bool,
    listing: Listing,
) -> PairResult:
    try:
        pair = await _refresh(router, provider, (workload,), via, dry_run, listing, None)
    except RefreshFailedError as error:
        return PairResult(provider, workload, "failed", error=str(error))
    return PairResult(provider, workload, "refreshed", report=pair)
