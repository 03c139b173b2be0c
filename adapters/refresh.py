"""Refresh: the `refresh-models` handler. It asks a reliable LLM, through the router, for new
candidate models of a provider, checks the answer against the models the provider lists, and
proposes what it keeps as pending suggestions.

One run asks once per workload, then records every kept suggestion, and one `RefreshRun` per
workload, with a single `Catalog.propose`: all of it or nothing. A dry run asks the same way,
through a dry-run router whose usage log drops everything, and writes nothing.

Its dependencies come in one `RefreshDeps`; the scheduled `--all` run is
`adapters.scheduled_refresh`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from freegin_ai.adapters.catalog import Catalog, ProposeOutcome
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import (
    AllAttemptsFailedError,
    NoCandidateError,
    ProviderError,
)
from freegin_ai.adapters.errors import RefreshFailedError as RefreshFailedError
from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.router import GenerateRequest, GenerateResult, Router
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
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import ModelStats
from freegin_ai.projections.rows import RosterRow

#: The recent usage window sent with the context, in days (today included).
WINDOW_DAYS = 7
#: The raw answer kept in each suggestion's provenance is cut to this many characters.
MAX_STORED_RESPONSE = 20_000
#: A failure message is cut to this many characters, so it stays one readable line.
MAX_ERROR = 600

Progress = Callable[[int, int], None]
Clock = Callable[[], datetime]


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


# -- one provider ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RefreshDeps:
    """Everything a refresh uses, handed in: nothing is reached through another object."""

    #: Where the roster and usage for the context come from, and the suggestions go.
    catalog: Catalog
    #: Who answers (a dry run asks through a dry-run router, which logs no usage).
    router: Router
    #: Which providers can be called here, to ask for their model lists.
    providers: ProviderSet
    client: HttpClient
    config: Config
    clock: Clock

    @classmethod
    def of(cls, router: Router) -> RefreshDeps:
        """The dependencies a router was wired with (`adapters.bootstrap`)."""
        return cls(
            catalog=router.catalog,
            router=router,
            providers=router.providers,
            client=router.client,
            config=router.config,
            clock=router.clock,
        )


async def refresh(
    deps: RefreshDeps,
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
    via = via if via is not None else Via.choose(None, deps.config)
    listing = await list_provider_models(deps, provider)
    return await refresh_workloads(deps, provider, workloads, via, dry_run, listing, progress)


async def refresh_workloads(
    deps: RefreshDeps,
    provider: str,
    workloads: Sequence[Workload],
    via: Via,
    dry_run: bool,
    listing: Listing,
    progress: Progress | None,
) -> RefreshReport:
    """Ask about each workload, then record everything kept in one transaction (unless a
    dry run, which asks through a dry-run router and records nothing)."""
    answers: list[Answer] = []
    seen: set[tuple[Workload, str]] = set()
    if progress is not None:
        progress(0, len(workloads))
    asker = deps.router.rewired(dry_run=True) if dry_run else deps.router
    try:
        for done, workload in enumerate(workloads, 1):
            answer = await _ask(deps, asker, provider, workload, via, listing)
            answers.append(_checked(answer, listing, seen))
            if progress is not None:
                progress(done, len(workloads))
    finally:
        if asker is not deps.router:
            asker.usage.close()
    report = RefreshReport(
        provider=provider, dry_run=dry_run, via=str(via), answers=answers, listing=listing
    )
    if dry_run:
        return report
    outcome = _record(deps.catalog, provider, answers)
    return dataclasses.replace(report, outcome=outcome)


async def list_provider_models(deps: RefreshDeps, provider: str) -> Listing:
    """The models `provider` lists, when it can be called here and answers."""
    why = deps.providers.unavailable(provider)
    if why is not None:
        return Listing(None, f"{provider} cannot be asked for its models: {why}")
    try:
        models = await deps.providers.adapter(provider).list_models(deps.client)
    except ProviderError as error:
        return Listing(None, f"listing {provider}'s models failed: {_one_line(str(error))}")
    if not models:
        return Listing(None, f"{provider} listed no models")
    return Listing(tuple(models))


async def _ask(
    deps: RefreshDeps,
    asker: Router,
    provider: str,
    workload: Workload,
    via: Via,
    listing: Listing,
) -> Answer:
    """Ask the LLM about one workload and parse its answer; raise RefreshFailedError."""
    catalog = deps.catalog
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
        recent=_totals(
            catalog.usage_stats(provider, workload, since_day=_window_start(deps.clock))
        ),
        window_days=WINDOW_DAYS,
        constraints=Constraints(
            max_cost_per_1k_tokens=deps.config.max_cost_per_1k_tokens,
            max_latency_ms=deps.config.max_latency_ms,
        ),
        known_models=listing.models,
    )
    system, user = build_prompt(context)
    result = await _generate(asker, provider, workload, via, system, user)
    # An answer is stored and printed; no key in use may ride along in it.
    response = scrub(result.text, deps.providers.secrets())
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
        at=deps.clock().isoformat(),
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


def _window_start(clock: Clock) -> str:
    return (clock() - timedelta(days=WINDOW_DAYS - 1)).date().isoformat()


def _active(roster: list[RosterRow]) -> list[tuple[Workload, str]]:
    return [(Workload(r.workload), r.model) for r in roster]


def _one_line(text: str) -> str:
    return clean_text(text, MAX_ERROR)
