"""The router: loads a snapshot of the read side, asks the routing policy
(`domain/routing.py`) for the candidates, calls the providers over HTTP in that order, and
logs every attempt as a UsageLogged event.

The policy (explicit model, pinned provider, catalog ranking, trials, cooldowns) is pure and
documented in `freegin_ai.domain.routing`; `explain()` tells what was considered and skipped,
and why. A failed attempt (429, 5xx, timeout, connection error, malformed reply, …) moves on
to the next candidate.

A candidate whose free-tier quota cannot take the request (domain.quota, ADR 0014) is skipped
too, and a request slot is reserved in the database before anything is sent, so processes
sharing the database never overrun a limit together. A request may `wait` for the first
candidate that comes back within that many seconds.

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
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import anyio
import httpx

from freegin_ai.adapters import bootstrap
from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import AdapterError, ProviderError, StorageError
from freegin_ai.adapters.errors import AllAttemptsFailedError as AllAttemptsFailedError
from freegin_ai.adapters.errors import NoCandidateError as NoCandidateError
from freegin_ai.adapters.follower import LogFollower
from freegin_ai.adapters.http_client import HttpClient, transport_for
from freegin_ai.adapters.pricing import TokenPrice, cost_micros, price_for
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatReply, ChatRequest, ResponseMeta
from freegin_ai.adapters.providers.errors_mapping import CallContext, scrub
from freegin_ai.adapters.providers.rate_limits import rate_limit_facts
from freegin_ai.adapters.providers.replies import unusable_answer
from freegin_ai.adapters.quota_gate import QuotaGate, Slot
from freegin_ai.adapters.store import PositionProbe
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.capabilities import Needs, prompt_token_estimate, unmet
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
from freegin_ai.domain.defaults import default_metadata
from freegin_ai.domain.errors import NoRouteError
from freegin_ai.domain.model_api import ModelApi, model_api
from freegin_ai.domain.model_info import ModelInfo
from freegin_ai.domain.names import check_model_name
from freegin_ai.domain.providers import PROVIDERS, parse_provider
from freegin_ai.domain.quota import (
    DAY,
    REQUESTS,
    ROUTABLE,
    QuotaLimits,
    Verdict,
    WindowState,
    WindowUsage,
    check,
    format_back,
    observation_fields,
    request_tokens,
    window_end,
    window_key,
    window_states,
)
from freegin_ai.domain.quota_limits import quota_bucket
from freegin_ai.domain.routing import Attempt as Attempt
from freegin_ai.domain.routing import Candidate as Candidate
from freegin_ai.domain.routing import (
    Cooldown,
    Listed,
    Route,
    RoutingSnapshot,
    TrialArm,
    cooling_reason,
    decide,
    no_usable_model,
)
from freegin_ai.domain.routing import Decision as Decision
from freegin_ai.domain.routing import Skipped as Skipped
from freegin_ai.domain.topics import TRIAL
from freegin_ai.domain.usage import NO_TOKENS, CallUsage, TokenUsage
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.listings import list_listings
from freegin_ai.projections.queries import (
    list_health,
    list_roster,
    list_suggestions,
    list_usage_stats,
)
from freegin_ai.projections.quota import list_quota_ledger

if TYPE_CHECKING:
    from sqlalchemy import Connection

_log = logging.getLogger(__name__)

#: A decision that skipped nothing due back holds as long as its snapshot.
_FOREVER = datetime.max.replace(tzinfo=UTC)
#: The most decisions one snapshot keeps (each request shape is one).
_MAX_DECISIONS = 1024


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


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A routing snapshot, valid while the log does not move past `position`, and the quota
    ledger read with it."""

    position: int
    snapshot: RoutingSnapshot
    ledger: dict[tuple[str, str], dict[str, WindowUsage]]  # (provider, bucket) → period → use
    #: (provider, model) → the most tokens a request was found to fit. With the ledger fixed,
    #: time only frees quota (windows end, reports expire), so a fit stays a fit.
    fits: dict[tuple[str, str], int] = field(default_factory=dict)
    commands: int = 0  # the catalog's command count when loaded
    checked: float = float("-inf")  # when the log position was last compared (elapsed clock)
    #: What each provider's listing says about each model it lists (sync-models).
    listed: dict[tuple[str, str], ModelInfo] = field(default_factory=dict)
    #: (provider, model) → the fewest tokens a request was refused for, and why. With the
    #: ledger fixed, a refusal holds for as many tokens or more until its `back_at`.
    refused: dict[tuple[str, str], tuple[int, Verdict]] = field(default_factory=dict)
    #: (provider, model) → the minute (epoch minutes) and the request slots to reserve in it.
    slots: dict[tuple[str, str], tuple[int, list[Slot]]] = field(default_factory=dict)
    #: Decisions made with this snapshot, each with the time it holds until (Router._explain).
    decisions: dict[tuple[Any, ...], tuple[Decision, datetime]] = field(default_factory=dict)
    #: (provider, model, workload) → its price as this snapshot's metadata and the config say.
    prices: dict[tuple[str, str, str], TokenPrice | None] = field(default_factory=dict)


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


class Router:
    """Chooses, calls, falls back, logs. Use `async with Router.open() as router:`."""

    def __init__(
        self,
        catalog: Catalog,
        providers: ProviderSet,
        *,
        usage: UsageLog | None = None,
        client: HttpClient | None = None,
        timeout: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        elapsed: Callable[[], float] = time.perf_counter,
        dry_run: bool = False,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        refresh_seconds: float = 0.5,
        usage_fsync: bool = False,
        gate: QuotaGate | None = None,
        watch_tables: bool = False,
        catalog_notices: Callable[[], int] | None = None,
        one_shot: bool = False,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.config: Config = providers.config
        self.dry_run = dry_run
        self._owns_usage = usage is None
        # The usage log's thread catches the read tables up after its commits (ADR 0010).
        self.usage = usage or bootstrap.usage_log(
            catalog.store,
            clock,
            dry_run=dry_run,
            after_commit=catalog.projector.catch_up,
            fsync=usage_fsync,
        )
        self.refresh_seconds = refresh_seconds
        self.follower: LogFollower | None = None
        seconds = timeout if timeout is not None else self.config.timeout_seconds
        self._owns_client = client is None
        #: The outbound transport (ADR 0019; "auto" by the process's kind, ADR 0022); clients
        #: made for sync calls use it too.
        self.transport = transport_for(self.config.http_transport, one_shot=one_shot)
        self.client = client or bootstrap.http_client(seconds, self.transport)
        #: A stream may run this long in all (stalls are bounded by the read timeout).
        self.stream_deadline = self.config.stream_deadline_seconds
        self.clock = clock
        self.elapsed = elapsed
        self.sleep = sleep
        self._owns_gate = gate is None
        self.gate = gate or QuotaGate(catalog.store.engine)
        self._quota_limits: dict[tuple[str, str], QuotaLimits] = {}
        self._loaded: _Loaded | None = None
        self._secrets = providers.secrets()
        #: Why each provider that cannot be called here cannot (fixed for a provider set).
        self._unavailable = {
            name: why for name in PROVIDERS if (why := providers.unavailable(name)) is not None
        }
        self._configured_models = {
            name: settings.models for name, settings in self.config.providers.items()
        }
        #: Whether any quota limit is known for a (provider, model): most have none.
        self._limits_known: dict[tuple[str, str], bool] = {}
        #: Calls (generate, stream) under way: a lone call commits its usage at once.
        self._calls = 0
        #: With `watch_tables` (the gateway) on SQLite, whether the read tables moved is looked
        #: at before every decision (tens of µs), so another process's change applies from the
        #: next request; otherwise the position is compared every `refresh_seconds`.
        sqlite = catalog.store.dialect == "sqlite"
        self._probe = PositionProbe(catalog.store.engine) if watch_tables and sqlite else None
        #: On PostgreSQL a log follower hears other processes' catalog appends as they
        #: commit (`LogFollower.catalog_notices`): with it, each applies from the next request.
        self._catalog_notices = catalog_notices

    @classmethod
    def open(
        cls,
        env: Mapping[str, str],
        *,
        catalog: Catalog | None = None,
        client: HttpClient | None = None,
        dry_run: bool = False,
        follow: bool = True,
        one_shot: bool = False,
    ) -> Router:
        """A router configured from the environment, config.toml and the credential store.

        A dry-run router calls providers as usual but logs no usage. `follow=False` leaves out
        the log follower: its own appends are caught up when it closes, and nobody reads its
        tables meanwhile. `one_shot=True` says the process makes a call or two and exits, so
        the "auto" transport is httpx's own pool, which spares importing aiohttp (ADR 0022).
        """
        from freegin_ai.adapters.settings import database_url, usage_fsync

        router = cls(
            catalog or Catalog.open(database_url(env)),
            bootstrap.provider_set(env),
            client=client,
            dry_run=dry_run,
            usage_fsync=usage_fsync(env),
            one_shot=one_shot,
        )
        if follow:
            # A long-running process keeps the read tables within a second of everyone's appends.
            router.follower = bootstrap.log_follower(router.catalog.store, router.catalog.projector)
        return router

    def rewired(self, *, client: HttpClient | None = None, dry_run: bool = False) -> Router:
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
            gate=self.gate,
        )

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the usage log (read tables caught up), the follower and the HTTP client, if
        the router made them; quota slots leased and not used are given back."""
        if self._owns_gate:
            try:
                await anyio.to_thread.run_sync(self.gate.release)
            except StorageError as error:  # the slots stay counted until their window ends
                _log.info("giving back unused quota slots failed: %s", error)
        if self._owns_usage:
            await anyio.to_thread.run_sync(self.usage.close)
        if self.follower is not None:
            await anyio.to_thread.run_sync(self.follower.close)
        if self._owns_client:
            await self.client.aclose()
        if self._probe is not None:
            self._probe.close()

    # -- choosing ---------------------------------------------------------------------

    def explain(self, request: GenerateRequest) -> Decision:
        """The routing decision for a request, without calling anyone."""
        return self._explain(request, request_needs(request))

    def _explain(self, request: GenerateRequest, needs: Needs) -> Decision:
        loaded = self._current()
        now = self.clock()
        workload = _workload_of(request)
        trial = workload.value in loaded.snapshot.trials
        needed = required_features(request)
        # Everything the decision depends on besides the snapshot and the time. A request
        # that may land on a trial arm is decided anew (its arm is drawn per request).
        key = (
            workload.value, request.provider, request.model, request.fallback,
            bool(request.labels), needs, needed,
        )  # fmt: skip
        if not trial:
            kept = loaded.decisions.get(key)
            if kept is not None and now < kept[1]:
                return kept[0]
        decision = self._decide(request, needs, needed, loaded, now, workload)
        if not trial:
            # With the snapshot fixed, time only brings skipped candidates back (a cooldown
            # ends, a window resets): the decision holds until the first of them is due.
            backs = [s.back_at for s in decision.skipped if s.back_at is not None]
            if len(loaded.decisions) >= _MAX_DECISIONS:
                loaded.decisions.clear()  # a snapshot that lives long among varied requests
            loaded.decisions[key] = (decision, min(backs, default=_FOREVER))
        return decision

    def _decide(
        self,
        request: GenerateRequest,
        needs: Needs,
        needed: frozenset[str],
        loaded: _Loaded,
        now: datetime,
        workload: Workload,
    ) -> Decision:
        tokens = _quota_tokens(needs)
        arm_key = request.request_key
        if not arm_key and workload.value in loaded.snapshot.trials:
            arm_key = uuid4().hex  # no key: the request falls on a random arm
        route = Route(
            workload=workload,
            provider=parse_provider(request.provider) if request.provider else None,
            model=check_model_name(request.model) if request.model is not None else None,
            fallback=request.fallback,
            arm_key=arm_key or "",
        )
        labels = bool(request.labels)

        def cannot_take(provider: str, model: str) -> str | None:
            return self._cannot_take(loaded, provider, model, workload, labels, needs)

        def quota(provider: str, model: str) -> tuple[str, datetime | None] | None:
            return self._out_of_quota(loaded, provider, model, now, tokens)

        try:
            decision = decide(
                route,
                loaded.snapshot,
                now=now,
                unavailable=self._unavailable,
                configured_models=self._configured_models,
                quota=quota,
                cannot_take=cannot_take,
            )
        except NoRouteError as error:
            raise NoCandidateError(str(error)) from None
        return self._servable(decision, loaded, needed)

    def _servable(self, decision: Decision, loaded: _Loaded, needed: frozenset[str]) -> Decision:
        """The decision without candidates that cannot serve what the request needs."""
        if not needed:
            return decision
        kept: list[Candidate] = []
        skipped = list(decision.skipped)
        for c in decision.candidates:
            entry = loaded.snapshot.listed(decision.workload.value, c.provider, c.model)
            features = features_from_metadata(
                self.providers.adapter(c.provider).features,
                entry.metadata if entry is not None else None,
            )
            why = unsupported_reason(needed, features)
            if why is None:
                kept.append(c)
            else:
                skipped.append(Skipped(c.provider, c.model, why))
        return replace(decision, candidates=tuple(kept), skipped=tuple(skipped))

    def _current(self) -> _Loaded:
        """The snapshot to route with.

        Every call commits its usage, so the log moves all the time: the snapshot is compared
        with the log at most every `refresh_seconds`, and reloaded at once after this process
        changed the catalog, saw an attempt fail, a failing model recover or a quota spent.
        """
        loaded = self._loaded
        now = self.elapsed()
        # Catalog changes known here: this process's commands, and (the gateway on
        # PostgreSQL) other processes' appends its log follower heard of.
        commands = self.catalog.commands
        if self._catalog_notices is not None:
            commands += self._catalog_notices()
        if (
            loaded is not None
            and loaded.commands == commands
            and now - loaded.checked < self.refresh_seconds
            and (self._probe is None or not self._probe.moved())
        ):
            return loaded
        if loaded is None or loaded.position < 0 or loaded.commands != commands:
            # First use, or this process just learned something: read with every event in.
            with self.catalog.reading() as conn:
                loaded = replace(self._load(conn, self.catalog.projector.position(conn)),
                                 commands=commands)  # fmt: skip
        else:
            # The usage log's catch-up (and the follower, and every other writer) keeps the
            # tables current; reading them as they are keeps catching up off this loop.
            with self.catalog.store.reader.connect() as conn:
                position = self.catalog.projector.position(conn)
                if position != loaded.position:
                    loaded = replace(self._load(conn, position), commands=commands)
        self._loaded = replace(loaded, checked=now)
        return self._loaded

    def _had_health(self, c: Candidate) -> bool:
        """Whether the snapshot holds a cooldown for the candidate or its provider (an
        explicit call may succeed where the policy would have skipped, and clear it)."""
        loaded = self._loaded
        if loaded is None:
            return False
        cooldowns = loaded.snapshot.cooldowns
        return (c.provider, c.model) in cooldowns or (c.provider, "") in cooldowns

    def _invalidate(self) -> None:
        """Reload the snapshot before the next decision (health or quota changed here)."""
        if self._loaded is not None:
            self._loaded = replace(self._loaded, position=-1, checked=float("-inf"))

    def _load(self, conn: Connection, position: int) -> _Loaded:
        """The snapshot as the read tables have it now, at `position` (the one they reached,
        read on `conn` before the tables)."""
        since = (self.clock() - timedelta(days=30)).date().isoformat()
        rows = list_roster(conn)
        health = list_health(conn)
        stats = list_usage_stats(conn, since_day=since)
        on_trial = list_suggestions(conn, statuses=(TRIAL,))
        ledger_rows = list_quota_ledger(conn)
        listings = list_listings(conn)
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
        ledger: dict[tuple[str, str], dict[str, WindowUsage]] = {}
        for q in ledger_rows:
            ledger.setdefault((q.provider, q.bucket), {})[q.window] = q.usage
        snapshot = RoutingSnapshot(
            roster={w: tuple(es) for w, es in roster.items()},
            cooldowns=cooldowns,
            failures=failures,
            cost_per_success=cost,
            trials={w: tuple(ts) for w, ts in trials.items()},
        )
        listed = {(x.provider, x.model): x.info for x in listings if x.listed}
        return _Loaded(position, snapshot, ledger, listed=listed)

    def _cannot_take(
        self,
        loaded: _Loaded,
        provider: str,
        model: str,
        workload: Workload,
        labels: bool,
        needs: Needs,
    ) -> str | None:
        """Why a model cannot take this request at all (a zero-shot model without labels;
        its listing's limits or features), or None; explicit choices are held to it too."""
        if provider == "huggingface":
            api = self._api_for(provider, model, workload)
            if api.needs_labels and not labels:
                return f"{api.value} needs candidate labels (--labels)"
        info = loaded.listed.get((provider, model))
        return None if info is None else unmet(info, needs)

    def _api_for(self, provider: str, model: str, workload: Workload) -> ModelApi:
        """Which API a model needs: Hugging Face task models by their Hub pipeline tag (from
        the catalog's metadata, else the synced listing, else what the defaults know); every
        other model is chat."""
        if provider != "huggingface":
            return ModelApi.CHAT
        meta: Mapping[str, Any] = self._metadata(Candidate(provider, model, 0), workload)
        if "pipeline_tag" not in meta:
            info = self._loaded.listed.get((provider, model)) if self._loaded else None
            if info is not None and info.pipeline_tag:
                meta = {"pipeline_tag": info.pipeline_tag, "tags": list(info.tags)}
            else:
                meta = default_metadata(provider, model) or meta
        tags = meta.get("tags")
        tag = meta.get("pipeline_tag")
        return model_api(
            tag if isinstance(tag, str) else None,
            [str(t) for t in tags] if isinstance(tags, list) else (),
        )

    def _out_of_quota(
        self, loaded: _Loaded, provider: str, model: str, now: datetime, tokens: int
    ) -> tuple[str, datetime | None] | None:
        """Why the model's quota cannot take the request now and when it is back, or None."""
        verdict = self.quota_verdict(loaded, provider, model, now, tokens)
        return None if verdict.routable else (f"quota: {verdict.reason}", verdict.back_at)

    def quota_verdict(
        self, snap: _Loaded, provider: str, model: str, now: datetime, tokens: int
    ) -> Verdict:
        """Whether the model's free-tier quota can take a request of about `tokens` now."""
        key = (provider, model)
        refusal = snap.refused.get(key)
        if refusal is not None and tokens >= refusal[0]:
            back_at = refusal[1].back_at
            if back_at is not None and now < back_at:
                return refusal[1]
        fit = snap.fits.get(key)
        if fit is not None and tokens <= fit:
            return ROUTABLE
        limits = self._limits(provider, model)
        known = self._limits_known.get(key)
        if known is None:
            known = self._limits_known[key] = limits.known
        usage = snap.ledger.get((provider, quota_bucket(provider, model)))
        if usage is None and not known:
            return ROUTABLE  # nothing known, nothing counted: the cheap common case
        verdict = check(limits, usage or {}, now, tokens)
        if verdict.routable:
            snap.fits[key] = max(tokens, fit or 0)
        elif refusal is None or tokens < refusal[0] or verdict.back_at != refusal[1].back_at:
            snap.refused[key] = (tokens, verdict)
        return verdict

    def quota_status(self, provider: str | None = None) -> list[ModelQuota]:
        """Per model (active in the roster, or with usage in the ledger): use against limits
        per minute and per day, the next reset, and routable or why not."""
        snap = self._current()
        now = self.clock()
        models = {(e.provider, e.model) for es in snap.snapshot.roster.values() for e in es}
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
                cooling = cooling_reason(snap.snapshot.cooldowns, p, m, now)
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
        # The snapshot the decision was made with: no second look at the log's position.
        snap = self._loaded or self._current()
        limits = self._limits(c.provider, c.model)
        bucket = quota_bucket(c.provider, c.model)
        # Windows start on whole minutes (a day on a whole hour): the slots of a minute hold.
        minute = int(now.timestamp()) // 60
        cached = snap.slots.get((c.provider, c.model))
        if cached is not None and cached[0] == minute:
            slots = cached[1]
        else:
            usage = snap.ledger.get((c.provider, bucket), {})
            slots = [
                Slot(state.window, window_key(state.window, now, limits.day_reset), state.limit)
                for state in window_states(limits, usage, now)
                if state.measure == REQUESTS and state.limit is not None
            ]
            snap.slots[(c.provider, c.model)] = (minute, slots)
        refused = self.gate.reserve(c.provider, bucket, slots)
        if refused is None:
            return None
        back_at = window_end(refused, now, limits.day_reset)
        period = "daily" if refused == DAY else "minute"
        why = (
            f"{period} requests spent (reserved by this or another process), "
            f"back at {format_back(back_at, now)}"
        )
        # Until the window ends, decisions skip the model without asking the gate again.
        refusal = Verdict(routable=False, reason=why, back_at=back_at)
        snap.refused[(c.provider, c.model)] = (0, refusal)
        snap.decisions.clear()
        return Skipped(c.provider, c.model, f"quota: {why}", back_at)

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
        needs = request_needs(request)
        budget = max(0.0, float(request.wait or 0.0))
        self._calls += 1
        try:
            while True:
                try:
                    return await self._generate_once(request, needs)
                except NoCandidateError as error:
                    pause = self._pause(error, budget)
                    if pause is None:
                        raise
                    budget -= pause
                    await self.sleep(pause)
        finally:
            self._calls -= 1

    def _pause(self, error: NoCandidateError, budget: float) -> float | None:
        """How long to wait for the first skipped candidate due back, when that is within
        `budget` seconds; None when waiting cannot help."""
        decision = error.decision
        if decision is None or budget <= 0:
            return None
        now = self.clock()
        backs = [s.back_at for s in decision.skipped if s.back_at is not None]
        soonest = min(backs) if backs else None
        if soonest is None or (soonest - now).total_seconds() > budget:
            return None
        return max(0.0, (soonest - now).total_seconds()) + 0.05

    def _plan(self, request: GenerateRequest, needs: Needs) -> Decision:
        """Decide (the request already checked), and refuse when nothing can be tried."""
        decision = self._explain(request, needs)
        if not decision.candidates:
            raise NoCandidateError(no_usable_model(decision), decision)
        return decision

    def _chat(self, request: GenerateRequest, c: Candidate) -> ChatRequest:
        options: dict[str, Any] = {}
        for key in (self.providers.endpoint(c.provider).api, c.provider):
            chosen = (request.provider_options or {}).get(key)
            if chosen:
                options.update(chosen)
        task = self._api_for(c.provider, c.model, _workload_of(request)).value
        return ChatRequest.for_model(c.model, request, options, task)

    async def _generate_once(self, request: GenerateRequest, needs: Needs) -> GenerateResult:
        decision = self._plan(request, needs)
        attempts: list[Attempt] = []
        refused: list[Skipped] = []
        for c in self._admitted(request, decision, needs, attempts, refused):
            chat = self._chat(request, c)
            started = self.elapsed()
            try:
                reply = await self.providers.adapter(c.provider).complete(self.client, chat)
            except ProviderError as error:
                await self._failed(
                    request, decision, c, attempts, error, _ms(self.elapsed() - started)
                )
                continue
            latency = _ms(self.elapsed() - started)
            return await self._succeeded(
                request, _refusing(decision, refused), c, attempts, reply, latency,
                ttft_ms=None, streamed=False,
            )  # fmt: skip
        raise _nothing_answered(_refusing(decision, refused), attempts)

    def _admitted(
        self,
        request: GenerateRequest,
        decision: Decision,
        needs: Needs,
        attempts: list[Attempt],
        refused: list[Skipped],
    ) -> Iterator[Candidate]:
        """The decision's candidates in order, each as it is admitted (see `_admit`); those
        refused go to `refused`."""
        explicit = decision.mode == "explicit-model" and request.provider is not None
        estimate = _quota_tokens(needs)
        for c in decision.candidates:
            if self._admit(c, attempts, refused, explicit, estimate):
                yield c

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
            now = self.clock()
            verdict = self.quota_verdict(self._current(), c.provider, c.model, now, estimate)
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

    async def _failed(
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
        """Log a failed attempt (committed before the caller moves on)."""
        message = self._redact(str(error))
        seen = self._observed(c.provider, error.meta)
        if error.kind == "gone":
            self._propose_retirement(c, message)
        attempts.append(Attempt(c.provider, c.model, False, latency, error.kind, message))
        # A reply that arrived but failed (filtered, empty) still cost its tokens.
        spent = error.usage or NO_TOKENS
        cost_in, cost_out = self._cost(c, decision.workload, spent)
        await self.usage.log(
            self._usage(request, decision, c, False, latency, tokens=spent,
                        input_cost_micros=cost_in, output_cost_micros=cost_out,
                        error=message, error_kind=error.kind,
                        retry_after_s=error.retry_after, rate_limits=seen,
                        ttft_ms=ttft_ms, streamed=streamed),
            alone=self._calls == 1,
        )  # fmt: skip
        self._invalidate()  # the failure changes health: rank with it next time

    async def _succeeded(
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
        tokens = reply.usage
        cost_in, cost_out = self._cost(c, decision.workload, tokens)
        await self.usage.log(
            self._usage(request, decision, c, True, latency, tokens=tokens,
                        input_cost_micros=cost_in, output_cost_micros=cost_out,
                        rate_limits=seen, ttft_ms=ttft_ms, streamed=streamed,
                        finish_reason=reply.finish_reason),
            alone=self._calls == 1,
        )  # fmt: skip
        attempts.append(Attempt(c.provider, c.model, True, latency))
        if c.consecutive_failures or _says_spent(seen) or self._had_health(c):
            self._invalidate()  # a cleared cooldown or a spent quota: rank with it next
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
            tool_calls=reply.tool_calls,
            finish_reason=reply.finish_reason,
            ttft_ms=ttft_ms,
        )

    # -- streaming --------------------------------------------------------------------

    def stream(self, request: GenerateRequest) -> ChatStream:
        """The answer as it arrives: `async for item in router.stream(request)`.

        Checks the request and decides at once (InvalidRequestError, NoCandidateError are
        raised here, unless `request.wait` allows waiting for a candidate to come back: then
        the first step waits as `generate` does); AllAttemptsFailedError comes from the first
        step when every candidate failed before answering, StreamInterruptedError when one
        failed after.
        """
        validate_request(request)
        needs = request_needs(request)
        budget = max(0.0, float(request.wait or 0.0))
        answering: list[Candidate] = []
        try:
            decision = self._plan(request, needs)
        except NoCandidateError as error:
            if self._pause(error, budget) is None or error.decision is None:
                raise
            waiting = ChatStream(None, error.decision, answering)
            waiting.bind(self._stream_waiting(request, needs, None, budget, waiting))
            return waiting
        stream = ChatStream(None, decision, answering)
        stream.bind(self._stream_waiting(request, needs, decision, budget, stream))
        return stream

    async def _stream_waiting(
        self,
        request: GenerateRequest,
        needs: Needs,
        decision: Decision | None,
        budget: float,
        stream: ChatStream,
    ) -> AsyncIterator[StreamOutput]:
        """The stream of the first decision with a candidate that takes it, waiting (within
        `budget` seconds) while every candidate is out of quota or cooling down."""
        self._calls += 1  # until the stream ends or is closed
        try:
            while True:
                if decision is not None:
                    source = self._stream(request, decision, stream.answering, needs)
                    try:
                        try:
                            first = await anext(source)
                        except NoCandidateError as error:  # the quota gate refused every one
                            failed = error
                        else:
                            yield first
                            async for item in source:
                                yield item
                            return
                    finally:
                        await _close(source)
                else:
                    failed = NoCandidateError(no_usable_model(stream.decision), stream.decision)
                pause = self._pause(failed, budget)
                if pause is None:
                    raise failed
                budget -= pause
                await self.sleep(pause)
                try:
                    decision = stream.decision = self._plan(request, needs)
                except NoCandidateError as error:
                    decision = None
                    if error.decision is not None:
                        stream.decision = error.decision
        finally:
            self._calls -= 1

    async def _stream(
        self,
        request: GenerateRequest,
        decision: Decision,
        answering: list[Candidate],
        needs: Needs,
    ) -> AsyncIterator[StreamOutput]:
        attempts: list[Attempt] = []
        refused: list[Skipped] = []
        for c in self._admitted(request, decision, needs, attempts, refused):
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
                await self._failed(request, decision, c, attempts, error,
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
                await self._failed(request, decision, c, attempts, error, latency,
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
                    # Logged even while being cancelled: the caller's exit waits for the record.
                    with anyio.CancelScope(shield=True):
                        await self._succeeded(request, decision, c, attempts, partial,
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
            yield await self._succeeded(
                request, decision, c, attempts, reply, latency, ttft_ms=ttft, streamed=True
            )
            return
        raise _nothing_answered(_refusing(decision, refused), attempts)

    def stream_sync(self, request: GenerateRequest) -> Iterator[StreamOutput]:
        """For scripts: the stream as a plain iterator, on an event loop in a helper thread."""
        return stream_sync(self, request)

    def _propose_retirement(self, c: Candidate, message: str) -> None:
        """A 410 Gone: stop routing to the model (health) and propose retiring it, once, on
        each of its active roster entries (whatever workload the call was for)."""
        entry = self._current().snapshot.cooldowns.get((c.provider, c.model))
        if entry is not None and entry.kind == "gone":
            return  # already proposed; the model stays out until retired or cleared
        # One proposal event for both causes (ADR 0016): on each active roster entry.
        self.catalog.propose_retirement(c.provider, c.model, reason=message)

    def _observed(self, provider: str, meta: object) -> list[dict[str, Any]] | None:
        """The normalized quota facts of a response (never its raw headers)."""
        if not isinstance(meta, ResponseMeta):
            return None
        facts = rate_limit_facts(provider, meta.status, meta.headers, meta.body, self.clock())
        return observation_fields(facts) or None

    def generate_sync(self, request: GenerateRequest) -> GenerateResult:
        """For scripts: run `generate` on a fresh event loop and HTTP client."""
        return run_sync(self, request)

    def _cost(
        self, c: Candidate, workload: Workload, tokens: TokenUsage
    ) -> tuple[int | None, int | None]:
        """What a reply's tokens cost, input and output (None where unknown)."""
        if tokens == NO_TOKENS:
            return None, None
        loaded = self._loaded
        key = (c.provider, c.model, workload.value)
        if loaded is not None and key in loaded.prices:
            price = loaded.prices[key]
        else:
            price = price_for(c.provider, c.model, self.config, self._priced_metadata(c, workload))
            if loaded is not None:
                loaded.prices[key] = price
        return cost_micros(price, tokens.prompt_tokens, tokens.completion_tokens)

    def _priced_metadata(self, c: Candidate, workload: Workload) -> Mapping[str, Any]:
        """The catalog's metadata, with the listed prices where it names none."""
        meta = self._metadata(c, workload)
        info = self._loaded.listed.get((c.provider, c.model)) if self._loaded else None
        if info is None or any(k in meta for k in _PRICE_KEYS):
            return meta
        listed: dict[str, Any] = {}
        if info.input_per_1k_micros is not None or info.output_per_1k_micros is not None:
            listed["input_per_1k_micros"] = info.input_per_1k_micros or 0
            listed["output_per_1k_micros"] = info.output_per_1k_micros or 0
        if info.free:
            listed["free"] = True
        return {**meta, **listed}

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
        rate_limits: list[dict[str, Any]] | None = None,
        ttft_ms: int | None = None,
        streamed: bool = False,
        finish_reason: str | None = None,
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
            rate_limits=rate_limits,
            ttft_ms=ttft_ms,
            streamed=streamed,
            finish_reason=finish_reason,
        )


class ChatStream:
    """An answer as it arrives: async-iterate for TextDelta and ToolCallDelta items, then one
    GenerateResult (also kept in `result`). `decision` is how the router chose. Leaving early
    (`aclose()`, `async with`, break) closes the provider's connection; usage is still logged.
    """

    def __init__(
        self,
        items: AsyncIterator[StreamOutput] | None,
        decision: Decision,
        answering: list[Candidate] | None = None,
    ) -> None:
        self._items = items
        #: How the router chose (after a wait for a candidate, the decision that found one).
        self.decision = decision
        self.result: GenerateResult | None = None
        self.answering = answering if answering is not None else []

    def bind(self, items: AsyncIterator[StreamOutput]) -> None:
        """Set the items to yield (for a router that needs the stream to make them)."""
        self._items = items

    @property
    def candidate(self) -> Candidate | None:
        """The candidate whose answer is streaming (known once the first item arrived)."""
        return self.answering[-1] if self.answering else None

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamOutput:
        if self._items is None:
            raise StopAsyncIteration
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
        try:
            # An AsyncClient belongs to the event loop it first ran on: this loop gets its own.
            stream = router.rewired(client=client, dry_run=router.dry_run).stream(request)
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
            portal.call(client.aclose)


async def _new_client(timeout: httpx.Timeout, transport: str) -> HttpClient:
    """A client made inside the event loop that will use it."""
    return bootstrap.http_client(timeout, transport)


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


async def _close(source: AsyncIterator[Any]) -> None:
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


_PRICE_KEYS = ("input_per_1k_micros", "output_per_1k_micros", "est_cost_per_1k_tokens", "free")


def request_needs(request: GenerateRequest) -> Needs:
    """What a request needs from a model: tools, JSON output, room for its prompt and answer."""
    texts = (
        (request.inputs,)
        if request.inputs is not None
        else tuple(content_text(m.content) for m in request.conversation())
    )
    return Needs(
        tools=bool(request.tools),
        json_schema=request.response_format is not None,
        prompt_tokens=prompt_token_estimate(*texts),
        max_tokens=request.max_tokens,
    )


def _workload_of(request: GenerateRequest) -> Workload:
    workload = request.workload
    return workload if isinstance(workload, Workload) else Workload.parse(workload)


def run_sync(router: Router, request: GenerateRequest) -> GenerateResult:
    """Run one request on its own event loop with a client made for it."""

    async def once() -> GenerateResult:
        # An AsyncClient belongs to the event loop it first ran on: this loop gets its own.
        async with bootstrap.http_client(router.client.timeout, router.transport) as client:
            return await router.rewired(client=client, dry_run=router.dry_run).generate(request)

    return anyio.run(once)


def _quota_tokens(needs: Needs) -> int:
    """The tokens a request may spend from a quota: its prompt and its answer's cap."""
    return request_tokens(needs.prompt_tokens or 0, needs.max_tokens)


def _refusing(decision: Decision, refused: list[Skipped]) -> Decision:
    """The decision with the candidates the quota gate refused added to what was skipped."""
    if not refused:
        return decision
    return replace(decision, skipped=decision.skipped + tuple(refused))


def _nothing_answered(decision: Decision, attempts: list[Attempt]) -> AdapterError:
    """NoCandidateError when the quota gate refused every candidate, else every attempt failed."""
    if not attempts:
        return NoCandidateError(no_usable_model(decision), decision)
    return AllAttemptsFailedError(attempts, decision)


def _says_spent(seen: list[dict[str, Any]] | None) -> bool:
    """Whether a response said some quota has nothing left."""
    return any(item.get("remaining") == 0 for item in seen or ())


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
