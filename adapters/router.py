"""The router: picks the model for each request from the catalog, calls the provider over
HTTP, falls back on failure, and logs every attempt as a UsageLogged event.

Selection, as the guide says:
1. an explicit `model` is used as given: on the pinned provider, or on every configured
   provider whose catalog lists it;
2. a pinned `provider` is used as given (its active models for the workload, by priority),
   and only that provider unless `fallback=True`;
3. otherwise every configured provider's active models for the workload are ranked: catalog
   priority first, then health (fewer consecutive failures), then cost per successful call.
A candidate cooling down after failures, or on a sidelined provider, is skipped (explicit
choices are not). A failed attempt (429, 5xx, timeout, connection error, malformed reply, …)
moves on to the next candidate. `explain()` tells what was considered and skipped, and why.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import uuid4

import anyio
import httpx

from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AdapterError, ProviderError
from freegin_ai.adapters.follower import LogFollower
from freegin_ai.adapters.pricing import cost_micros, price_for
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatRequest
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.names import check_model_name
from freegin_ai.domain.prompts import check_prompt
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.topics import TRIAL
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import (
    list_health,
    list_roster,
    list_suggestions,
    list_usage_stats,
)


class NoCandidateError(AdapterError):
    """Raised when no model can be chosen for a request (nothing configured or all cooling)."""

    def __init__(self, message: str, decision: Decision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


class AllAttemptsFailedError(AdapterError):
    """Raised when every candidate was tried and failed; `attempts` says how each failed."""

    def __init__(self, attempts: list[Attempt], decision: Decision) -> None:
        super().__init__(f"all {len(attempts)} attempts failed")
        self.attempts = attempts
        self.decision = decision


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
class Candidate:
    """A (provider, model) the router may try, with what ranked it."""

    provider: str
    model: str
    priority: int
    consecutive_failures: int = 0
    cost_per_success_micros: float | None = None
    arm: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A (provider, model) the router did not try, and why."""

    provider: str
    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """How the router chose: the mode, the candidates in order, and what it skipped."""

    mode: str  # explicit-model, pinned-provider or catalog
    workload: Workload
    candidates: tuple[Candidate, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to a provider; `error` is redacted."""

    provider: str
    model: str
    success: bool
    latency_ms: int
    error_kind: str | None = None
    error: str | None = None


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


class _Tokens(Protocol):
    """Token counts, as a ChatReply or a failed reply's Usage carries them."""

    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def total_tokens(self) -> int | None: ...
    @property
    def cached_tokens(self) -> int | None: ...
    @property
    def reasoning_tokens(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The read side the router ranks with, valid while the log does not move."""

    position: int
    roster: dict[str, list[tuple[str, str, int, dict[str, Any]]]]  # workload → rows
    cooldowns: dict[tuple[str, str], tuple[datetime, int, str]]  # → until, failures, kind
    failures: dict[tuple[str, str], int]
    cost_per_success: dict[tuple[str, str], float]
    trials: dict[str, list[tuple[str, str, float]]]  # workload → (provider, model, percent)
    commands: int = 0  # the catalog's command count when loaded
    checked: float = float("-inf")  # when the log position was last compared (elapsed clock)


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
        refresh_seconds: float = 0.5,
        usage_fsync: bool = False,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.config: Config = providers.config
        self._owns_usage = usage is None
        # The read tables are caught up by the writer after each commit (ADR 0010).
        self.usage = usage or UsageLog(
            catalog.store, clock, after_commit=catalog.projector.catch_up, fsync=usage_fsync
        )
        self.refresh_seconds = refresh_seconds
        self.follower: LogFollower | None = None
        seconds = timeout if timeout is not None else self.config.timeout_seconds
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(seconds, connect=min(10.0, seconds))
        )
        self.clock = clock
        self.elapsed = elapsed
        self._snapshot: _Snapshot | None = None
        self._secrets = providers.secrets()

    @classmethod
    def open(
        cls,
        env: Mapping[str, str],
        *,
        catalog: Catalog | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> Router:
        """A router configured from the environment, config.toml and the credential store."""
        from freegin_ai.adapters.config import load_config
        from freegin_ai.adapters.credentials import CredentialStore, default_credentials_path
        from freegin_ai.adapters.settings import database_url, usage_fsync

        config = load_config(env)
        credentials = CredentialStore(default_credentials_path(env))
        providers = ProviderSet(config, env, credentials)
        router = cls(
            catalog or Catalog.open(database_url(env)),
            providers,
            client=client,
            usage_fsync=usage_fsync(env),
        )
        # A long-running process keeps the read tables within a second of everyone's appends.
        router.follower = LogFollower(
            router.catalog.store, router.catalog.projector.catch_up
        ).start()
        return router

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the usage writer (read tables caught up) and the HTTP client, if the router
        made them."""
        if self._owns_usage:
            await anyio.to_thread.run_sync(self.usage.close)
        if self.follower is not None:
            await anyio.to_thread.run_sync(self.follower.close)
        if self._owns_client:
            await self.client.aclose()

    # -- choosing ---------------------------------------------------------------------

    def explain(self, request: GenerateRequest) -> Decision:
        """The routing decision for a request, without calling anyone."""
        return self._decide(request, self._current())

    def _current(self) -> _Snapshot:
        """The snapshot to rank with.

        Every call appends its usage, so the log moves all the time: the snapshot is checked
        against the log at most every `refresh_seconds`, and reloaded at once after this
        process changed the catalog or saw an attempt fail (or a failing model recover).
        """
        snap = self._snapshot
        now = self.elapsed()
        if (
            snap is not None
            and snap.commands == self.catalog.commands
            and now - snap.checked < self.refresh_seconds
        ):
            return snap
        position = self.catalog.store.last_position()
        if snap is None or snap.position != position or snap.commands != self.catalog.commands:
            snap = self._load(position)
        self._snapshot = replace(snap, checked=now)
        return self._snapshot

    def _invalidate(self) -> None:
        """Reload the snapshot before the next decision (health changed here)."""
        if self._snapshot is not None:
            self._snapshot = replace(self._snapshot, position=-1, checked=float("-inf"))

    def _load(self, position: int) -> _Snapshot:
        since = (self.clock() - timedelta(days=30)).date().isoformat()
        with self.catalog.reading() as conn:
            rows = list_roster(conn)
            health = list_health(conn)
            stats = list_usage_stats(conn, since_day=since)
            on_trial = list_suggestions(conn, statuses=(TRIAL,))
        trials: dict[str, list[tuple[str, str, float]]] = {}
        for t in on_trial:
            percent = float(t.metadata.get("trial_percent") or 0)
            if percent > 0:
                trials.setdefault(t.workload, []).append((t.provider, t.model, percent))
        roster: dict[str, list[tuple[str, str, int, dict[str, Any]]]] = {}
        for r in rows:
            roster.setdefault(r.workload, []).append((r.provider, r.model, r.priority, r.metadata))
        cooldowns: dict[tuple[str, str], tuple[datetime, int, str]] = {}
        failures: dict[tuple[str, str], int] = {}
        for h in health:
            failures[(h.provider, h.model)] = h.consecutive_failures
            if h.cooldown_until:
                until = datetime.fromisoformat(h.cooldown_until)
                cooldowns[(h.provider, h.model)] = (
                    until,
                    h.consecutive_failures,
                    h.last_error_kind or "error",
                )
        cost: dict[tuple[str, str], float] = {}
        for s in stats:
            per_success = s.cost_per_success_micros
            if per_success is not None and s.cost_micros:
                cost[(s.provider, s.model)] = per_success
        # The position checked before reading: anything appended since reloads next time.
        return _Snapshot(
            position, roster, cooldowns, failures, cost, trials, commands=self.catalog.commands
        )

    def _decide(self, request: GenerateRequest, snap: _Snapshot) -> Decision:
        workload = (
            request.workload
            if isinstance(request.workload, Workload)
            else Workload.parse(request.workload)
        )
        pinned = parse_provider(request.provider) if request.provider else None
        rows = snap.roster.get(workload.value, [])
        skipped: list[Skipped] = []
        now = self.clock()

        def candidate(provider: str, model: str, priority: int) -> Candidate:
            return Candidate(
                provider=provider,
                model=model,
                priority=priority,
                consecutive_failures=snap.failures.get((provider, model), 0),
                cost_per_success_micros=snap.cost_per_success.get((provider, model)),
            )

        def usable(c: Candidate, explicit: bool) -> bool:
            why = self.providers.unavailable(c.provider)
            if why is None and not explicit:
                why = _cooling(snap, c.provider, c.model, now)
            if why is not None:
                skipped.append(Skipped(c.provider, c.model, why))
                return False
            return True

        if request.model is not None:
            model = check_model_name(request.model)
            if pinned:
                providers = [pinned]
            else:
                listed = {p for rs in snap.roster.values() for p, m, _, _ in rs if m == model}
                configured = {
                    name
                    for name, settings in self.config.providers.items()
                    if model in settings.models
                }
                providers = sorted(listed | configured)
                if not providers:
                    raise NoCandidateError(
                        f"no provider in the catalog or config.toml serves model {model!r}; "
                        "pin one with --provider"
                    )
            priorities = {p: pr for p, m, pr, _ in rows if m == model}
            found = [candidate(p, model, priorities.get(p, 0)) for p in providers]
            chosen = [c for c in found if usable(c, explicit=pinned is not None)]
            return Decision("explicit-model", workload, tuple(chosen), tuple(skipped))

        found = [candidate(p, m, pr) for p, m, pr, _ in rows]
        if pinned and not any(c.provider == pinned for c in found):
            raise NoCandidateError(
                f"provider {pinned!r} has no active model for workload {workload.value!r}; "
                f"adopt one with `freegin-ai adopt-model {pinned} MODEL --workload "
                f"{workload.value}`"
            )
        ranked = sorted(found, key=_rank)
        if pinned:
            first = [c for c in ranked if c.provider == pinned]
            rest = [c for c in ranked if c.provider != pinned] if request.fallback else []
            ordered = first + rest
            mode = "pinned-provider"
        else:
            ordered, mode = ranked, "catalog"
            trials = snap.trials.get(workload.value)
            if trials:
                ordered = self._with_trial_arm(ordered, trials, request, candidate)
                mode = "catalog-trial" if ordered and ordered[0].arm == TRIAL else mode
        chosen = [c for c in ordered if usable(c, explicit=False)]
        return Decision(mode, workload, tuple(chosen), tuple(skipped))

    def _with_trial_arm(
        self,
        incumbents: list[Candidate],
        trials: list[tuple[str, str, float]],
        request: GenerateRequest,
        candidate: Callable[[str, str, int], Candidate],
    ) -> list[Candidate]:
        """Send about `percent` % of requests to each trial model, the same key to the same arm.

        The trial model goes first and the incumbents follow as fallback; every candidate is
        labelled with its arm so `stats` can compare them.
        """
        point = _arm_point(request.request_key or uuid4().hex)
        cumulative = 0.0
        chosen: Candidate | None = None
        for provider, model, percent in sorted(trials):
            cumulative += percent
            if point < cumulative:
                chosen = replace(candidate(provider, model, -1), arm=TRIAL)
                break
        rest = [replace(c, arm="incumbent") for c in incumbents]
        if chosen is None:
            return rest
        return [
            chosen,
            *(c for c in rest if (c.provider, c.model) != (chosen.provider, chosen.model)),
        ]

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
            reasons = "; ".join(f"{s.provider}/{s.model}: {s.reason}" for s in decision.skipped)
            raise NoCandidateError(
                f"no usable model for workload {decision.workload.value!r}"
                + (f" ({reasons})" if reasons else " (the catalog has none)"),
                decision,
            )
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
                tokens = (
                    {} if error.usage is None else self._spent(c, decision.workload, error.usage)
                )
                await self._log(
                    request,
                    decision,
                    c,
                    False,
                    latency,
                    error=message,
                    error_kind=error.kind,
                    retry_after_s=error.retry_after,
                    **tokens,
                )
                self._invalidate()  # the failure changes health: rank with it next time
                continue
            latency = _ms(self.elapsed() - started)
            spent = self._spent(c, decision.workload, reply)
            await self._log(request, decision, c, True, latency, **spent)
            attempts.append(Attempt(c.provider, c.model, True, latency))
            if c.consecutive_failures:
                self._invalidate()  # the success clears a cooldown
            cost_in, cost_out = spent["input_cost_micros"], spent["output_cost_micros"]
            total_cost = (
                None if cost_in is None and cost_out is None else ((cost_in or 0) + (cost_out or 0))
            )
            return GenerateResult(
                text=reply.text,
                provider=c.provider,
                model=c.model,
                latency_ms=latency,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                total_tokens=reply.total_tokens,
                cost_micros=total_cost,
                attempts=tuple(attempts),
                decision=decision,
                cached_tokens=reply.cached_tokens,
                reasoning_tokens=reply.reasoning_tokens,
            )
        raise AllAttemptsFailedError(attempts, decision)

    def generate_sync(self, request: GenerateRequest) -> GenerateResult:
        """For scripts: run `generate` on a fresh event loop and HTTP client."""
        return run_sync(self, request)

    def _spent(self, c: Candidate, workload: Workload, usage: _Tokens) -> dict[str, Any]:
        """The usage fields to log for a reply: its tokens and what they cost."""
        cost_in, cost_out = cost_micros(
            price_for(c.provider, c.model, self.config, self._metadata(c, workload)),
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "input_cost_micros": cost_in,
            "output_cost_micros": cost_out,
        }

    def _metadata(self, c: Candidate, workload: Workload) -> dict[str, Any]:
        snap = self._snapshot
        if snap is None:
            return {}
        for provider, model, _, metadata in snap.roster.get(workload.value, []):
            if provider == c.provider and model == c.model:
                return metadata
        return {}

    def _redact(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def _log(
        self,
        request: GenerateRequest,
        decision: Decision,
        c: Candidate,
        success: bool,
        latency_ms: int,
        **fields: Any,
    ) -> None:
        """Commit the attempt's usage event; returns once it is durable (group commit)."""
        await self.usage.log(
            provider=c.provider,
            workload=decision.workload.value,
            model=c.model,
            success=success,
            latency_ms=latency_ms,
            request_key=request.request_key,
            arm=c.arm or None,
            **fields,
        )


def run_sync(router: Router, request: GenerateRequest) -> GenerateResult:
    """Run one request on its own event loop with a client made for it."""

    async def once() -> GenerateResult:
        timeout = router.client.timeout
        async with httpx.AsyncClient(timeout=timeout) as client:
            saved, router.client = router.client, client
            try:
                return await router.generate(request)
            finally:
                router.client = saved

    return anyio.run(once)


def _arm_point(key: str) -> float:
    """A stable point in [0, 100) for a request key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def _rank(c: Candidate) -> tuple[int, int, float, str, str]:
    cost = c.cost_per_success_micros
    return (
        c.priority,
        c.consecutive_failures,
        cost if cost is not None else 0.0,
        c.provider,
        c.model,
    )


def _cooling(snap: _Snapshot, provider: str, model: str, now: datetime) -> str | None:
    for key, what in (((provider, ""), "provider sidelined"), ((provider, model), "cooling down")):
        entry = snap.cooldowns.get(key)
        if entry is not None and entry[0] > now:
            until, failures, kind = entry
            return (
                f"{what} until {until.strftime('%H:%M:%S')} UTC after {failures} "
                f"consecutive failure{'s' if failures != 1 else ''} ({kind})"
            )
    return None


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
