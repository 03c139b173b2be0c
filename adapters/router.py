"""The router: picks the model for each request from the catalog, calls the provider over
HTTP, falls back on failure, and logs every attempt as a UsageLogged event.

Selection, as the guide says:
1. an explicit `model` is used as given: on the pinned provider, or on every configured
   provider whose catalog lists it;
2. a pinned `provider` is used as given (its active models for the workload, by priority),
   and only that provider unless `fallback=True`;
3. otherwise every configured provider's active models for the workload are ranked: catalog
   priority first, then health (fewer consecutive failures), then cost per successful call.
A candidate cooling down after failures, on a sidelined provider, or whose free-tier quota
cannot take the request (domain.quota, ADR 0014), is skipped (explicit choices are not), and
a request slot is reserved in the database before anything is sent, so processes sharing the
database never overrun a limit together. A request may `wait` for the first candidate that
comes back within that many seconds. A failed attempt (429, 5xx, timeout, connection error,
malformed reply, …) moves on to the next candidate. `explain()` tells what was considered
and skipped, and why.

Requests are conversations (domain.chat.GenerateRequest: messages, tools, JSON output, …). A
candidate whose provider or model cannot serve what a request needs (tools, JSON-schema
output) is skipped with the reason, never served less. An answer withheld by a content filter
or with nothing in it is a failed attempt like any other.

`stream()` yields the answer as it arrives: TextDelta and ToolCallDelta items, then the
GenerateResult. A failure before the first item reaches the caller falls back to the next
candidate; after it, the stream ends with StreamInterruptedError. Each attempt is logged
once, with time to first token; a caller that stops early closes the provider's connection
and the attempt is still logged (finish reason `cancelled`).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import uuid4

import anyio
import httpx

from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AdapterError, ProviderError
from freegin_ai.adapters.http_client import new_client
from freegin_ai.adapters.pricing import cost_micros, price_for
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatReply, ChatRequest, ResponseMeta
from freegin_ai.adapters.providers.errors_mapping import CallContext, scrub
from freegin_ai.adapters.providers.rate_limits import rate_limit_facts
from freegin_ai.adapters.providers.replies import unusable_answer
from freegin_ai.adapters.quota_gate import QuotaGate, Slot
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.availability import retirement_proposed
from freegin_ai.domain.chat import GenerateRequest as GenerateRequest
from freegin_ai.domain.chat import (
    StreamEnd,
    StreamItem,
    TextDelta,
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    content_text,
    features_from_metadata,
    required_features,
    unsupported_reason,
    validate_request,
)
from freegin_ai.domain.names import check_model_name
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.quota import (
    DAY,
    REQUESTS,
    ROUTABLE,
    QuotaLimits,
    Verdict,
    WindowState,
    WindowUsage,
    check,
    estimate_tokens,
    format_back,
    observation_fields,
    window_end,
    window_key,
    window_states,
)
from freegin_ai.domain.quota_limits import quota_bucket
from freegin_ai.domain.topics import TRIAL
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.health import UNTIL_CLEARED
from freegin_ai.projections.queries import (
    list_health,
    list_roster,
    list_suggestions,
    list_usage_stats,
)
from freegin_ai.projections.quota import list_quota_ledger


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


class StreamInterruptedError(AdapterError):
    """Raised by a stream that failed after part of the answer reached the caller.

    `text` is what was delivered; `attempts` says how every attempt went.
    """

    def __init__(self, message: str, attempts: list[Attempt], decision: Decision, text: str):
        super().__init__(message)
        self.attempts = attempts
        self.decision = decision
        self.text = text


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
    #: When it can be tried again, if that is known (a cooldown's end, a quota's reset).
    back_at: datetime | None = None


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
    #: Tool calls in OpenAI's shape; `text` may be empty when there are some.
    tool_calls: tuple[ToolCall, ...] = ()
    #: stop, length, tool_calls or content_filter (cancelled: the caller stopped a stream).
    finish_reason: str | None = None
    #: Streams only: milliseconds from sending the request to the first delta.
    ttft_ms: int | None = None


#: What a stream yields: deltas, then the result.
StreamOutput = TextDelta | ToolCallDelta | GenerateResult


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
class ModelQuota:
    """A model's quota as `status` shows it: use, limit and what remains per measure and
    window, the next reset, and whether the router would route to it now, or why not."""

    provider: str
    model: str
    bucket: str
    windows: tuple[WindowState, ...]
    next_reset: datetime | None
    routable: bool
    why: str | None
    back_at: datetime | None
    limits_source: str


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The read side the router ranks with, valid while the log does not move."""

    position: int
    roster: dict[str, list[tuple[str, str, int, dict[str, Any]]]]  # workload → rows
    cooldowns: dict[tuple[str, str], tuple[datetime, int, str]]  # → until, failures, kind
    failures: dict[tuple[str, str], int]
    cost_per_success: dict[tuple[str, str], float]
    trials: dict[str, list[tuple[str, str, float]]]  # workload → (provider, model, percent)
    ledger: dict[tuple[str, str], dict[str, WindowUsage]]  # (provider, bucket) → period → use
    #: (provider, model) → the most tokens a request was found to fit. With the ledger fixed,
    #: time only frees quota (windows end, reports expire), so a fit stays a fit.
    fits: dict[tuple[str, str], int] = field(default_factory=dict)


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
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.config: Config = providers.config
        self.usage = usage or UsageLog(catalog.store, clock)
        seconds = timeout if timeout is not None else self.config.timeout_seconds
        self._owns_client = client is None
        #: The outbound transport (ADR 0012); clients made for sync calls use it too.
        self.transport = self.config.http_transport
        self.client = client or new_client(seconds, transport=self.transport)
        self.clock = clock
        self.elapsed = elapsed
        #: A stream may run this long in all (stalls are bounded by the read timeout).
        self.stream_deadline = self.config.stream_deadline_seconds
        self.sleep = sleep
        self.gate = QuotaGate(catalog.store.engine)
        self._quota_limits: dict[tuple[str, str], QuotaLimits] = {}
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
        from freegin_ai.adapters.settings import database_url

        config = load_config(env)
        credentials = CredentialStore(default_credentials_path(env))
        providers = ProviderSet(config, env, credentials)
        return cls(catalog or Catalog.open(database_url(env)), providers, client=client)

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
        snap = self._current()
        return self._servable(request, self._decide(request, snap), snap)

    def _servable(self, request: GenerateRequest, decision: Decision, snap: _Snapshot) -> Decision:
        """The decision without candidates that cannot serve what the request needs."""
        needed = required_features(request)
        if not needed:
            return decision
        kept: list[Candidate] = []
        skipped = list(decision.skipped)
        for c in decision.candidates:
            features = features_from_metadata(
                self.providers.adapter(c.provider).features,
                _metadata(snap, decision.workload, c.provider, c.model),
            )
            why = unsupported_reason(needed, features)
            if why is None:
                kept.append(c)
            else:
                skipped.append(Skipped(c.provider, c.model, why))
        return replace(decision, candidates=tuple(kept), skipped=tuple(skipped))

    def _current(self) -> _Snapshot:
        position = self.catalog.store.last_position()
        if self._snapshot is None or self._snapshot.position != position:
            self._snapshot = self._load(position)
        return self._snapshot

    def _load(self, position: int) -> _Snapshot:
        since = (self.clock() - timedelta(days=30)).date().isoformat()
        with self.catalog.reading() as conn:
            rows = list_roster(conn)
            health = list_health(conn)
            stats = list_usage_stats(conn, since_day=since)
            on_trial = list_suggestions(conn, statuses=(TRIAL,))
            ledger_rows = list_quota_ledger(conn)
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
        ledger: dict[tuple[str, str], dict[str, WindowUsage]] = {}
        for q in ledger_rows:
            ledger.setdefault((q.provider, q.bucket), {})[q.window] = q.usage
        # The position checked before reading: anything appended since reloads next time.
        return _Snapshot(position, roster, cooldowns, failures, cost, trials, ledger)

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
        tokens = _estimated_tokens(request)

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
            back_at: datetime | None = None
            if why is None and not explicit:
                # Cooling down and out of quota: the later return is the one to tell.
                cooling = _cooling(snap, c.provider, c.model, now)
                if cooling is not None:
                    why, back_at = cooling
                verdict = self.quota_verdict(snap, c.provider, c.model, now, tokens)
                if not verdict.routable and (
                    back_at is None or (verdict.back_at is not None and verdict.back_at > back_at)
                ):
                    why, back_at = f"quota: {verdict.reason}", verdict.back_at
            if why is not None:
                skipped.append(Skipped(c.provider, c.model, why, back_at))
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

    def quota_verdict(
        self, snap: _Snapshot, provider: str, model: str, now: datetime, tokens: int
    ) -> Verdict:
        """Whether the model's free-tier quota can take a request of about `tokens` now."""
        fit = snap.fits.get((provider, model))
        if fit is not None and tokens <= fit:
            return ROUTABLE
        limits = self._limits(provider, model)
        usage = snap.ledger.get((provider, quota_bucket(provider, model)))
        if usage is None and not limits.known:
            return ROUTABLE  # nothing known, nothing counted: the cheap common case
        verdict = check(limits, usage or {}, now, tokens)
        if verdict.routable:
            snap.fits[(provider, model)] = max(tokens, fit or 0)
        return verdict

    def quota_status(self, provider: str | None = None) -> list[ModelQuota]:
        """Per model (active in the roster, or with usage in the ledger): use against limits
        per minute and per day, the next reset, and routable or why not."""
        snap = self._current()
        now = self.clock()
        models = {(p, m) for rows in snap.roster.values() for p, m, _, _ in rows}
        out = []
        for p, m in sorted(models):
            if provider is not None and p != provider:
                continue
            limits = self._limits(p, m)
            bucket = quota_bucket(p, m)
            states = tuple(window_states(limits, snap.ledger.get((p, bucket), {}), now))
            counted = [s for s in states if s.limit is not None or s.used]
            why = self.providers.unavailable(p)
            back_at: datetime | None = None
            if why is None:
                cooling = _cooling(snap, p, m, now)
                if cooling is not None:
                    why, back_at = cooling
                verdict = self.quota_verdict(snap, p, m, now, 0)
                if not verdict.routable and (
                    back_at is None or (verdict.back_at is not None and verdict.back_at > back_at)
                ):
                    why, back_at = f"quota: {verdict.reason}", verdict.back_at
            out.append(
                ModelQuota(
                    provider=p,
                    model=m,
                    bucket=bucket,
                    windows=states,
                    next_reset=min((s.resets_at for s in counted), default=None),
                    routable=why is None,
                    why=why,
                    back_at=back_at,
                    limits_source=limits.source,
                )
            )
        return out

    def _limits(self, provider: str, model: str) -> QuotaLimits:
        """The model's limits (table and config.toml), worked out once per process."""
        key = (provider, model)
        limits = self._quota_limits.get(key)
        if limits is None:
            limits = self._quota_limits[key] = self.config.quota_limits(provider, model)
        return limits

    def _reserve(self, c: Candidate, now: datetime) -> Skipped | None:
        """Take a request slot in the database; a Skipped when the model's limit is reached."""
        snap = self._current()
        limits = self._limits(c.provider, c.model)
        bucket = quota_bucket(c.provider, c.model)
        usage = snap.ledger.get((c.provider, bucket), {})
        slots = [
            Slot(state.window, window_key(state.window, now, limits.day_reset), state.limit)
            for state in window_states(limits, usage, now)
            if state.measure == REQUESTS and state.limit is not None
        ]
        refused = self.gate.reserve(c.provider, bucket, slots)
        if refused is None:
            return None
        back_at = window_end(refused, now, limits.day_reset)
        period = "daily" if refused == DAY else "minute"
        return Skipped(
            c.provider,
            c.model,
            f"quota: {period} requests spent (reserved by this or another process), "
            f"back at {format_back(back_at, now)}",
            back_at,
        )

    # -- calling ----------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer a request, trying candidates in order until one succeeds.

        With `request.wait`, a request that finds no candidate (every one out of quota or
        cooling down) waits for the first one due back within that many seconds, and again
        until the bound is spent. A request that is the caller's fault (malformed, a prompt
        that is not UTF-8 text, a model name no model can have) raises a DomainError before
        anything is sent or logged.
        """
        validate_request(request)
        budget = max(0.0, float(request.wait or 0.0))
        while True:
            try:
                return await self._generate_once(request)
            except NoCandidateError as error:
                decision = error.decision
                if decision is None or budget <= 0:
                    raise
                now = self.clock()
                backs = [s.back_at for s in decision.skipped if s.back_at is not None]
                soonest = min(backs) if backs else None
                if soonest is None or (soonest - now).total_seconds() > budget:
                    raise
                pause = max(0.0, (soonest - now).total_seconds()) + 0.05
                budget -= pause
                await self.sleep(pause)

    def _plan(self, request: GenerateRequest, *, checked: bool = False) -> Decision:
        """Check the request (unless `checked`), decide, and refuse when nothing can be tried."""
        if not checked:
            validate_request(request)
        decision = self.explain(request)
        if not decision.candidates:
            reasons = "; ".join(f"{s.provider}/{s.model}: {s.reason}" for s in decision.skipped)
            raise NoCandidateError(
                f"no usable model for workload {decision.workload.value!r}"
                + (f" ({reasons})" if reasons else " (the catalog has none)"),
                decision,
            )
        return decision

    def _chat(self, request: GenerateRequest, c: Candidate) -> ChatRequest:
        options: dict[str, Any] = {}
        for key in (self.providers.endpoint(c.provider).api, c.provider):
            chosen = (request.provider_options or {}).get(key)
            if chosen:
                options.update(chosen)
        return ChatRequest.for_model(c.model, request, options)

    async def _generate_once(self, request: GenerateRequest) -> GenerateResult:
        decision = self._plan(request, checked=True)
        attempts: list[Attempt] = []
        refused: list[Skipped] = []
        explicit = decision.mode == "explicit-model" and request.provider is not None
        estimate = _estimated_tokens(request)
        for c in decision.candidates:
            if not self._admit(c, attempts, refused, explicit, estimate):
                continue
            chat = self._chat(request, c)
            started = self.elapsed()
            try:
                reply = await self.providers.adapter(c.provider).complete(self.client, chat)
            except ProviderError as error:
                self._failed(request, decision, c, attempts, error, _ms(self.elapsed() - started))
                continue
            latency = _ms(self.elapsed() - started)
            return self._succeeded(
                request, _refusing(decision, refused), c, attempts, reply, latency,
                ttft_ms=None, streamed=False,
            )  # fmt: skip
        raise _nothing_answered(_refusing(decision, refused), attempts, refused)

    def _admit(
        self,
        c: Candidate,
        attempts: list[Attempt],
        refused: list[Skipped],
        explicit: bool,
        estimate: int,
    ) -> bool:
        """Whether the candidate may be tried now: its quota can take the request (a failure
        may just have said a shared quota is spent) and a request slot was reserved."""
        if explicit:
            return True
        if attempts:
            verdict = self.quota_verdict(
                self._current(), c.provider, c.model, self.clock(), estimate
            )
            if not verdict.routable:
                refused.append(
                    Skipped(c.provider, c.model, f"quota: {verdict.reason}", verdict.back_at)
                )
                return False
        refusal = self._reserve(c, self.clock())
        if refusal is not None:
            refused.append(refusal)
            return False
        return True

    def _failed(
        self,
        request: GenerateRequest,
        decision: Decision,
        c: Candidate,
        attempts: list[Attempt],
        error: ProviderError,
        latency: int,
        *,
        ttft_ms: int | None = None,
        streamed: bool = False,
    ) -> None:
        message = self._redact(str(error))
        seen = self._observed(c.provider, error.meta)
        if error.kind == "gone":
            self._propose_retirement(c, decision.workload, message)
        attempts.append(Attempt(c.provider, c.model, False, latency, error.kind, message))
        # A reply that arrived but failed (filtered, empty) still cost its tokens.
        tokens = {} if error.usage is None else self._spent(c, decision.workload, error.usage)
        self._log(request, decision, c, False, latency,
                  error=message, error_kind=error.kind, retry_after_s=error.retry_after,
                  ttft_ms=ttft_ms, streamed=streamed, **tokens, rate_limits=seen)  # fmt: skip
        # A failure should reach the health view (and other processes) at once.
        self.usage.flush()

    def _succeeded(
        self,
        request: GenerateRequest,
        decision: Decision,
        c: Candidate,
        attempts: list[Attempt],
        reply: ChatReply,
        latency: int,
        *,
        ttft_ms: int | None,
        streamed: bool,
    ) -> GenerateResult:
        seen = self._observed(c.provider, reply.meta)
        spent = self._spent(c, decision.workload, reply)
        self._log(request, decision, c, True, latency, **spent,
                  ttft_ms=ttft_ms, streamed=streamed,
                  finish_reason=reply.finish_reason, rate_limits=seen)  # fmt: skip
        cost_in, cost_out = spent["input_cost_micros"], spent["output_cost_micros"]
        attempts.append(Attempt(c.provider, c.model, True, latency))
        if c.consecutive_failures or _says_spent(seen):
            # A cleared cooldown or a spent quota: let every process see it now.
            self.usage.flush()
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
            tool_calls=reply.tool_calls,
            finish_reason=reply.finish_reason,
            ttft_ms=ttft_ms,
        )

    # -- streaming --------------------------------------------------------------------

    def stream(self, request: GenerateRequest) -> ChatStream:
        """The answer as it arrives: `async for item in router.stream(request)`.

        Checks the request and decides at once (InvalidRequestError, NoCandidateError are
        raised here); AllAttemptsFailedError comes from the first step when every candidate
        failed before answering, StreamInterruptedError when one failed after.
        """
        decision = self._plan(request)
        answering: list[Candidate] = []
        return ChatStream(self._stream(request, decision, answering), decision, answering)

    async def _stream(
        self, request: GenerateRequest, decision: Decision, answering: list[Candidate]
    ) -> AsyncIterator[StreamOutput]:
        attempts: list[Attempt] = []
        refused: list[Skipped] = []
        explicit = decision.mode == "explicit-model" and request.provider is not None
        estimate = _estimated_tokens(request)
        for c in decision.candidates:
            if not self._admit(c, attempts, refused, explicit, estimate):
                continue
            decision = _refusing(decision, refused)
            refused.clear()
            chat = self._chat(request, c)
            ctx = CallContext(provider=c.provider, model=c.model)
            started = self.elapsed()
            deadline = started + self.stream_deadline
            seen: list[ResponseMeta] = []
            source = self.providers.adapter(c.provider).stream(self.client, chat, seen)
            pieces: list[str] = []
            calls = ToolCallAssembler()
            first: StreamItem | None = None
            try:
                # Before anything reaches the caller, any failure falls back to the next one.
                first = await _next(source, ctx, deadline, self.elapsed)
                if isinstance(first, StreamEnd):
                    _check_finished_early(c, first)
            except ProviderError as error:
                await _close(source)
                self._failed(request, decision, c, attempts, error,
                             _ms(self.elapsed() - started), streamed=True)  # fmt: skip
                continue
            ttft = _ms(self.elapsed() - started)
            answering.append(c)
            item: StreamItem = first
            outcome = "cancelled"  # until the loop ends or fails: the caller stopped reading
            try:
                while not isinstance(item, StreamEnd):
                    if isinstance(item, TextDelta):
                        pieces.append(item.text)
                    else:
                        calls.add(item)
                    yield item
                    item = await _next(source, ctx, deadline, self.elapsed)
                outcome = "finished"
            except ProviderError as error:
                outcome = "failed"
                await _close(source)
                latency = _ms(self.elapsed() - started)
                self._failed(request, decision, c, attempts, error, latency,
                             ttft_ms=ttft, streamed=True)  # fmt: skip
                raise StreamInterruptedError(
                    self._redact(f"the answer stopped part-way: {error}"),
                    attempts,
                    decision,
                    "".join(pieces),
                ) from None
            finally:
                if outcome == "cancelled":
                    # Close the provider's connection now, and log what the attempt did.
                    await _close(source)
                    partial = ChatReply(
                        text="".join(pieces),
                        model=c.model,
                        tool_calls=calls.calls(),
                        finish_reason="cancelled",
                        meta=seen[-1] if seen else None,
                    )
                    self._succeeded(request, decision, c, attempts, partial,
                                    _ms(self.elapsed() - started),
                                    ttft_ms=ttft, streamed=True)  # fmt: skip
            end = item
            reply = ChatReply(
                text="".join(pieces),
                model=end.model or c.model,
                prompt_tokens=end.usage.prompt_tokens,
                completion_tokens=end.usage.completion_tokens,
                total_tokens=end.usage.total_tokens,
                cached_tokens=end.usage.cached_tokens,
                reasoning_tokens=end.usage.reasoning_tokens,
                tool_calls=calls.calls(),
                finish_reason=end.finish_reason,
                meta=seen[-1] if seen else None,
            )
            latency = _ms(self.elapsed() - started)
            yield self._succeeded(
                request, decision, c, attempts, reply, latency, ttft_ms=ttft, streamed=True
            )
            return
        raise _nothing_answered(_refusing(decision, refused), attempts, refused)

    def stream_sync(self, request: GenerateRequest) -> Iterator[StreamOutput]:
        """For scripts: the stream as a plain iterator, on an event loop in a helper thread."""
        return stream_sync(self, request)

    def _propose_retirement(self, c: Candidate, workload: Workload, message: str) -> None:
        """A 410 Gone: stop routing to the model (health) and propose its retirement, once."""
        entry = self._current().cooldowns.get((c.provider, c.model))
        if entry is not None and entry[2] == "gone":
            return  # already proposed; the model stays out until retired or cleared
        self.catalog.store.append_new_streams(
            [
                retirement_proposed(
                    id=uuid4(),
                    at=self.clock(),
                    provider=c.provider,
                    workload=workload.value,
                    model=c.model,
                    reason=message,
                )
            ]
        )

    def _observed(self, provider: str, meta: object) -> list[dict[str, Any]] | None:
        """The normalized quota facts of a response (never its raw headers)."""
        if not isinstance(meta, ResponseMeta):
            return None
        facts = rate_limit_facts(provider, meta.status, meta.headers, meta.body, self.clock())
        return observation_fields(facts) or None

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

    def _log(
        self,
        request: GenerateRequest,
        decision: Decision,
        c: Candidate,
        success: bool,
        latency_ms: int,
        **fields: Any,
    ) -> None:
        self.usage.log(
            provider=c.provider,
            workload=decision.workload.value,
            model=c.model,
            success=success,
            latency_ms=latency_ms,
            request_key=request.request_key,
            arm=c.arm or None,
            **fields,
        )


class ChatStream:
    """An answer as it arrives: async-iterate for TextDelta and ToolCallDelta items, then one
    GenerateResult (also kept in `result`). `decision` is how the router chose. Leaving early
    (`aclose()`, `async with`, break) closes the provider's connection; usage is still logged.
    """

    def __init__(
        self,
        items: AsyncIterator[StreamOutput],
        decision: Decision,
        answering: list[Candidate] | None = None,
    ) -> None:
        self._items = items
        self.decision = decision
        self.result: GenerateResult | None = None
        self._answering = answering if answering is not None else []

    @property
    def candidate(self) -> Candidate | None:
        """The candidate whose answer is streaming (known once the first item arrived)."""
        return self._answering[-1] if self._answering else None

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamOutput:
        item = await self._items.__anext__()
        if isinstance(item, GenerateResult):
            self.result = item
        return item

    async def aclose(self) -> None:
        """Stop reading: the provider's connection is closed and the attempt logged."""
        close = getattr(self._items, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def stream_sync(router: Router, request: GenerateRequest) -> Iterator[StreamOutput]:
    """Run a stream on an event loop in a helper thread, with a client made for it.

    Closing the iterator (or leaving a `for` loop early) closes the stream; an interrupt
    (Ctrl-C) while waiting cancels the step in flight first, so the provider's connection is
    closed and the attempt logged before the interrupt goes on.
    """
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal() as portal:
        timeout = router.client.timeout
        client = portal.call(lambda: _new_client(timeout, router.transport))
        saved, router.client = router.client, client
        try:
            stream = router.stream(request)
            try:
                while True:
                    step = portal.start_task_soon(stream.__anext__)
                    try:
                        item = step.result()
                    except StopAsyncIteration:
                        return
                    except BaseException:
                        step.cancel()
                        concurrent.futures.wait([step])
                        raise
                    yield item
            finally:
                portal.call(stream.aclose)
        finally:
            router.client = saved
            portal.call(client.aclose)


async def _new_client(timeout: httpx.Timeout, transport: str) -> httpx.AsyncClient:
    """A client made inside the event loop that will use it."""
    return new_client(timeout, transport=transport)


async def _next(
    source: AsyncIterator[StreamItem],
    ctx: CallContext,
    deadline: float,
    elapsed: Callable[[], float],
) -> StreamItem:
    """The provider's next item. A stall is bounded by the client's read timeout; a stream
    that keeps dripping past the attempt's deadline is a timeout too."""
    try:
        item = await source.__anext__()
    except StopAsyncIteration:
        raise ProviderError(
            "interrupted", f"{ctx.label}: the stream ended without a finish"
        ) from None
    if elapsed() > deadline:
        raise ProviderError("timeout", f"{ctx.label}: timeout: the stream outlasted its deadline")
    return item


async def _close(source: AsyncIterator[StreamItem]) -> None:
    """Close a provider stream (and its connection), even while being cancelled."""
    close = getattr(source, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()


def _check_finished_early(c: Candidate, end: StreamEnd) -> None:
    """A stream that finished before any text or tool call is filtered or empty: a failed
    attempt (the router falls back), with the tokens it cost."""
    ctx = CallContext(provider=c.provider, model=c.model)
    failure = unusable_answer(ctx, "", end.finish_reason, end.usage)
    if failure is not None:
        raise failure


def _metadata(snap: _Snapshot, workload: Workload, provider: str, model: str) -> dict[str, Any]:
    for p, m, _, metadata in snap.roster.get(workload.value, []):
        if p == provider and m == model:
            return metadata
    return {}


def run_sync(router: Router, request: GenerateRequest) -> GenerateResult:
    """Run one request on its own event loop with a client made for it."""

    async def once() -> GenerateResult:
        timeout = router.client.timeout
        async with new_client(timeout, transport=router.transport) as client:
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


def _cooling(
    snap: _Snapshot, provider: str, model: str, now: datetime
) -> tuple[str, datetime | None] | None:
    for key, what in (((provider, ""), "provider sidelined"), ((provider, model), "cooling down")):
        entry = snap.cooldowns.get(key)
        if entry is not None and entry[0] > now:
            until, failures, kind = entry
            if until >= _UNTIL_CLEARED:
                return _sidelined_reason(provider, model, kind), None
            return (
                f"{what} until {until.strftime('%H:%M:%S')} UTC after {failures} "
                f"consecutive failure{'s' if failures != 1 else ''} ({kind})",
                until,
            )
    return None


_UNTIL_CLEARED = datetime.fromisoformat(UNTIL_CLEARED)


def _sidelined_reason(provider: str, model: str, kind: str) -> str:
    if kind == "gone":
        return (
            f"gone (410): retirement proposed; `freegin-ai retire-model {provider} {model}`, "
            f"or `freegin-ai clear-provider {provider} --model {model}` to try it again"
        )
    return (
        "provider sidelined: out of credit (402) until a call succeeds or "
        f"`freegin-ai clear-provider {provider}`"
    )


def _estimated_tokens(request: GenerateRequest) -> int:
    characters = sum(
        len(content_text(m.content)) for m in request.conversation() if m.content is not None
    )
    return estimate_tokens(characters, request.max_tokens)


def _refusing(decision: Decision, refused: list[Skipped]) -> Decision:
    """The decision with the candidates the quota gate refused added to what was skipped."""
    if not refused:
        return decision
    return replace(decision, skipped=decision.skipped + tuple(refused))


def _nothing_answered(
    decision: Decision, attempts: list[Attempt], refused: list[Skipped]
) -> AdapterError:
    """NoCandidateError when the quota gate refused every candidate, else every attempt failed."""
    if not attempts:
        reasons = "; ".join(f"{s.provider}/{s.model}: {s.reason}" for s in decision.skipped)
        return NoCandidateError(
            f"no usable model for workload {decision.workload.value!r} ({reasons})", decision
        )
    return AllAttemptsFailedError(attempts, decision)


def _says_spent(seen: list[dict[str, Any]] | None) -> bool:
    """Whether a response said some quota has nothing left."""
    return any(item.get("remaining") == 0 for item in seen or ())


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
