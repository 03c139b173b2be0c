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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import uuid4

import anyio
import httpx

from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AdapterError, ProviderError
from freegin_ai.adapters.pricing import cost_micros, price_for
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatReply, ChatRequest
from freegin_ai.adapters.providers.errors_mapping import CallContext, redact
from freegin_ai.adapters.providers.replies import unusable_answer
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.chat import GenerateRequest as GenerateRequest
from freegin_ai.domain.chat import (
    StreamEnd,
    StreamItem,
    TextDelta,
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    Usage,
    features_from_metadata,
    required_features,
    unsupported_reason,
    validate_request,
)
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

    @property
    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.total_tokens,
            cached_tokens=self.cached_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )


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
class _Snapshot:
    """The read side the router ranks with, valid while the log does not move."""

    position: int
    roster: dict[str, list[tuple[str, str, int, dict[str, Any]]]]  # workload → rows
    cooldowns: dict[tuple[str, str], tuple[datetime, int, str]]  # → until, failures, kind
    failures: dict[tuple[str, str], int]
    cost_per_success: dict[tuple[str, str], float]
    trials: dict[str, list[tuple[str, str, float]]]  # workload → (provider, model, percent)


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
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.config: Config = providers.config
        self.usage = usage or UsageLog(catalog.store, clock)
        seconds = timeout if timeout is not None else self.config.timeout_seconds
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(seconds, connect=min(10.0, seconds))
        )
        self.clock = clock
        self.elapsed = elapsed
        #: A stream may run this long in all (stalls are bounded by the read timeout).
        self.stream_deadline = self.config.stream_deadline_seconds
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
        return _Snapshot(position, roster, cooldowns, failures, cost, trials)

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

        if request.model:
            model = request.model.strip()
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

    def _plan(self, request: GenerateRequest) -> Decision:
        """Check the request, decide, and refuse when nothing can be tried."""
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

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Answer a request, trying candidates in order until one succeeds."""
        decision = self._plan(request)
        attempts: list[Attempt] = []
        for c in decision.candidates:
            chat = self._chat(request, c)
            started = self.elapsed()
            try:
                reply = await self.providers.adapter(c.provider).complete(self.client, chat)
            except ProviderError as error:
                self._failed(request, decision, c, attempts, error, _ms(self.elapsed() - started))
                continue
            latency = _ms(self.elapsed() - started)
            return self._succeeded(
                request, decision, c, attempts, reply, latency, ttft_ms=None, streamed=False
            )
        raise AllAttemptsFailedError(attempts, decision)

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
        attempts.append(Attempt(c.provider, c.model, False, latency, error.kind, message))
        # A reply that arrived but failed (filtered, empty) still cost its tokens.
        tokens = {} if error.usage is None else self._spent(c, decision.workload, error.usage)
        self._log(request, decision, c, False, latency,
                  error=message, error_kind=error.kind, retry_after_s=error.retry_after,
                  ttft_ms=ttft_ms, streamed=streamed, **tokens)  # fmt: skip
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
        spent = self._spent(c, decision.workload, reply)
        self._log(request, decision, c, True, latency, **spent,
                  ttft_ms=ttft_ms, streamed=streamed,
                  finish_reason=reply.finish_reason)  # fmt: skip
        cost_in, cost_out = spent["input_cost_micros"], spent["output_cost_micros"]
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
        for c in decision.candidates:
            chat = self._chat(request, c)
            ctx = CallContext(provider=c.provider, model=c.model)
            started = self.elapsed()
            deadline = started + self.stream_deadline
            source = self.providers.adapter(c.provider).stream(self.client, chat)
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
            )
            latency = _ms(self.elapsed() - started)
            yield self._succeeded(
                request, decision, c, attempts, reply, latency, ttft_ms=ttft, streamed=True
            )
            return
        raise AllAttemptsFailedError(attempts, decision)

    def stream_sync(self, request: GenerateRequest) -> Iterator[StreamOutput]:
        """For scripts: the stream as a plain iterator, on an event loop in a helper thread."""
        return stream_sync(self, request)

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
        for secret in self._secrets:
            text = redact(text, secret)
        return text

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
        client = portal.call(lambda: _new_client(timeout))
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


async def _new_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout)


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
