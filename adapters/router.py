"""The router: loads a snapshot of the read side, asks the routing policy
(`domain/routing.py`) for the candidates, calls the providers over HTTP in that order, and
logs every attempt as a UsageLogged event.

The policy (explicit model, pinned provider, catalog ranking, trials, cooldowns) is pure and
documented in `freegin_ai.domain.routing`; `explain()` tells what was considered and skipped,
and why. A failed attempt (429, 5xx, timeout, connection error, malformed reply, …) moves on
to the next candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import anyio
import httpx

from freegin_ai.adapters import bootstrap
from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AllAttemptsFailedError as AllAttemptsFailedError
from freegin_ai.adapters.errors import NoCandidateError as NoCandidateError
from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.pricing import cost_micros, price_for
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatRequest
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.errors import NoRouteError
from freegin_ai.domain.names import check_model_name
from freegin_ai.domain.prompts import check_prompt
from freegin_ai.domain.providers import PROVIDERS, parse_provider
from freegin_ai.domain.routing import Attempt as Attempt
from freegin_ai.domain.routing import Candidate as Candidate
from freegin_ai.domain.routing import (
    Cooldown,
    Listed,
    Route,
    RoutingSnapshot,
    TrialArm,
    decide,
    no_usable_model,
)
from freegin_ai.domain.routing import Decision as Decision
from freegin_ai.domain.routing import Skipped as Skipped
from freegin_ai.domain.topics import TRIAL
from freegin_ai.domain.usage import NO_TOKENS, CallUsage, TokenUsage
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import (
    list_health,
    list_roster,
    list_suggestions,
    list_usage_stats,
)


@dataclass(frozen=True, kw_only=True)
class GenerateRequest:
    """One request to the router."""

    prompt: str
    workload: Workload | str = Workload.CHAT
    provider: str | None = None
    model: str | None = None
    fallback: bool = False
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    #: Identifies a request across retries (trials route the same key to the same arm).
    request_key: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateResult:
    """The answer, who gave it, and everything tried on the way."""

    text: str
    provider: str
    model: str
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_micros: int | None
    attempts: tuple[Attempt, ...]
    decision: Decision = field(repr=False)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A routing snapshot, valid while the log does not move past `position`."""

    position: int
    snapshot: RoutingSnapshot


class Router:
    """Chooses, calls, falls back, logs. Use `async with Router.open() as router:`."""

    def __init__(
        self,
        catalog: Catalog,
        providers: ProviderSet,
        *,
        usage: UsageLog | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        elapsed: Callable[[], float] = time.perf_counter,
        dry_run: bool = False,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.config: Config = providers.config
        self.dry_run = dry_run
        self.usage = usage or bootstrap.usage_log(catalog.store, clock, dry_run=dry_run)
        seconds = timeout if timeout is not None else self.config.timeout_seconds
        self._owns_client = client is None
        self.client = client or bootstrap.http_client(seconds)
        self.clock = clock
        self.elapsed = elapsed
        self._loaded: _Loaded | None = None
        self._secrets = providers.secrets()

    @classmethod
    def open(
        cls,
        env: Mapping[str, str],
        *,
        catalog: Catalog | None = None,
        client: httpx.AsyncClient | None = None,
        dry_run: bool = False,
    ) -> Router:
        """A router configured from the environment, config.toml and the credential store.

        A dry-run router calls providers as usual but logs no usage.
        """
        from freegin_ai.adapters.settings import database_url

        return cls(
            catalog or Catalog.open(database_url(env)),
            bootstrap.provider_set(env),
            client=client,
            dry_run=dry_run,
        )

    def rewired(self, *, client: httpx.AsyncClient | None = None, dry_run: bool = False) -> Router:
        """A router over the same catalog and providers with another HTTP client (not owned)
        and, for a dry run, a usage log that drops everything; this one is left as it is."""
        return Router(
            self.catalog,
            self.providers,
            usage=None if dry_run else self.usage,
            client=client or self.client,
            clock=self.clock,
            elapsed=self.elapsed,
            dry_run=dry_run,
        )

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Append buffered usage and close the HTTP client (if the router made it)."""
        self.usage.flush()
        if self._owns_client:
            await self.client.aclose()

    # -- choosing ---------------------------------------------------------------------

    def explain(self, request: GenerateRequest) -> Decision:
        """The routing decision for a request, without calling anyone."""
        snapshot = self._current()
        route = Route(
            workload=(
                request.workload
                if isinstance(request.workload, Workload)
                else Workload.parse(request.workload)
            ),
            provider=parse_provider(request.provider) if request.provider else None,
            model=check_model_name(request.model) if request.model is not None else None,
            fallback=request.fallback,
            arm_key=request.request_key or uuid4().hex,
        )
        try:
            return decide(
                route,
                snapshot,
                now=self.clock(),
                unavailable=self._unavailable(),
                configured_models={
                    name: settings.models for name, settings in self.config.providers.items()
                },
            )
        except NoRouteError as error:
            raise NoCandidateError(str(error)) from None

    def _unavailable(self) -> dict[str, str]:
        """Why each provider that cannot be called here cannot (resolved once per provider)."""
        reasons = {}
        for name in PROVIDERS:
            why = self.providers.unavailable(name)
            if why is not None:
                reasons[name] = why
        return reasons

    def _current(self) -> RoutingSnapshot:
        position = self.catalog.store.last_position()
        if self._loaded is None or self._loaded.position != position:
            # The position checked before reading: anything appended since reloads next time.
            self._loaded = _Loaded(position, self._load())
        return self._loaded.snapshot

    def _load(self) -> RoutingSnapshot:
        since = (self.clock() - timedelta(days=30)).date().isoformat()
        with self.catalog.reading() as conn:
            rows = list_roster(conn)
            health = list_health(conn)
            stats = list_usage_stats(conn, since_day=since)
            on_trial = list_suggestions(conn, statuses=(TRIAL,))
        trials: dict[str, list[TrialArm]] = {}
        for t in on_trial:
            percent = float(t.metadata.get("trial_percent") or 0)
            if percent > 0:
                trials.setdefault(t.workload, []).append(TrialArm(t.provider, t.model, percent))
        roster: dict[str, list[Listed]] = {}
        for r in rows:
            roster.setdefault(r.workload, []).append(
                Listed(r.provider, r.model, r.priority, r.metadata)
            )
        cooldowns: dict[tuple[str, str], Cooldown] = {}
        failures: dict[tuple[str, str], int] = {}
        for h in health:
            failures[(h.provider, h.model)] = h.consecutive_failures
            if h.cooldown_until:
                cooldowns[(h.provider, h.model)] = Cooldown(
                    until=datetime.fromisoformat(h.cooldown_until),
                    consecutive_failures=h.consecutive_failures,
                    kind=h.last_error_kind or "error",
                )
        cost: dict[tuple[str, str], float] = {}
        for st in stats:
            per_success = st.cost_per_success_micros
            if per_success is not None and st.cost_micros:
                cost[(st.provider, st.model)] = per_success
        return RoutingSnapshot(
            roster={w: tuple(es) for w, es in roster.items()},
            cooldowns=cooldowns,
            failures=failures,
            cost_per_success=cost,
            trials={w: tuple(ts) for w, ts in trials.items()},
        )

    # -- calling ----------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer a request, trying candidates in order until one succeeds.

        A request that is the caller's fault (a prompt that is not UTF-8 text, a model name no
        model can have) raises a DomainError before anything is sent or logged.
        """
        check_prompt(request.prompt)
        if request.system is not None:
            check_prompt(request.system, "system prompt")
        decision = self.explain(request)
        if not decision.candidates:
            raise NoCandidateError(no_usable_model(decision), decision)
        attempts: list[Attempt] = []
        for c in decision.candidates:
            chat = ChatRequest(
                model=c.model,
                prompt=request.prompt,
                system=request.system,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
            )
            started = self.elapsed()
            try:
                reply = await self.providers.adapter(c.provider).complete(self.client, chat)
            except ProviderError as error:
                latency = _ms(self.elapsed() - started)
                message = self._redact(str(error))
                attempts.append(Attempt(c.provider, c.model, False, latency, error.kind, message))
                # A reply that arrived but failed (filtered, empty) still cost its tokens.
                spent = error.usage or NO_TOKENS
                cost_in, cost_out = self._cost(c, decision.workload, spent)
                self.usage.log(
                    self._usage(request, decision, c, False, latency, tokens=spent,
                                input_cost_micros=cost_in, output_cost_micros=cost_out,
                                error=message, error_kind=error.kind,
                                retry_after_s=error.retry_after)
                )  # fmt: skip
                # A failure should reach the health view (and other processes) at once.
                self.usage.flush()
                continue
            latency = _ms(self.elapsed() - started)
            tokens = reply.usage
            cost_in, cost_out = self._cost(c, decision.workload, tokens)
            self.usage.log(
                self._usage(request, decision, c, True, latency, tokens=tokens,
                            input_cost_micros=cost_in, output_cost_micros=cost_out)
            )  # fmt: skip
            attempts.append(Attempt(c.provider, c.model, True, latency))
            if c.consecutive_failures:
                self.usage.flush()  # the success clears a cooldown: let everyone see it now
            total_cost = (
                None if cost_in is None and cost_out is None else ((cost_in or 0) + (cost_out or 0))
            )
            return GenerateResult(
                text=reply.text,
                provider=c.provider,
                model=c.model,
                latency_ms=latency,
                prompt_tokens=tokens.prompt_tokens,
                completion_tokens=tokens.completion_tokens,
                total_tokens=tokens.total_tokens,
                cost_micros=total_cost,
                attempts=tuple(attempts),
                decision=decision,
                cached_tokens=tokens.cached_tokens,
                reasoning_tokens=tokens.reasoning_tokens,
            )
        raise AllAttemptsFailedError(attempts, decision)

    def generate_sync(self, request: GenerateRequest) -> GenerateResult:
        """For scripts: run `generate` on a fresh event loop and HTTP client."""
        return run_sync(self, request)

    def _cost(
        self, c: Candidate, workload: Workload, tokens: TokenUsage
    ) -> tuple[int | None, int | None]:
        """What a reply's tokens cost, input and output (None where unknown)."""
        if tokens == NO_TOKENS:
            return None, None
        return cost_micros(
            price_for(c.provider, c.model, self.config, self._metadata(c, workload)),
            tokens.prompt_tokens,
            tokens.completion_tokens,
        )

    def _metadata(self, c: Candidate, workload: Workload) -> Mapping[str, Any]:
        loaded = self._loaded
        if loaded is None:
            return {}
        entry = loaded.snapshot.listed(workload.value, c.provider, c.model)
        return entry.metadata if entry is not None else {}

    def _redact(self, text: str) -> str:
        return scrub(text, self._secrets)

    @staticmethod
    def _usage(
        request: GenerateRequest,
        decision: Decision,
        c: Candidate,
        success: bool,
        latency_ms: int,
        *,
        tokens: TokenUsage = NO_TOKENS,
        input_cost_micros: int | None = None,
        output_cost_micros: int | None = None,
        error: str | None = None,
        error_kind: str | None = None,
        retry_after_s: float | None = None,
    ) -> CallUsage:
        return CallUsage(
            provider=c.provider,
            workload=decision.workload.value,
            model=c.model,
            success=success,
            latency_ms=latency_ms,
            tokens=tokens,
            input_cost_micros=input_cost_micros,
            output_cost_micros=output_cost_micros,
            error=error,
            error_kind=error_kind,
            retry_after_s=retry_after_s,
            request_key=request.request_key,
            arm=c.arm or None,
        )


def run_sync(router: Router, request: GenerateRequest) -> GenerateResult:
    """Run one request on its own event loop with a client made for it."""

    async def once() -> GenerateResult:
        # An AsyncClient belongs to the event loop it first ran on: this loop gets its own.
        async with httpx.AsyncClient(timeout=router.client.timeout) as client:
            return await router.rewired(client=client, dry_run=router.dry_run).generate(request)

    return anyio.run(once)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
