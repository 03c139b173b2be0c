"""Event schemas: what the read side needs of each event before it applies it.

Events are checked where they are made (domain.ranges), but the log also holds what older
code, an import or a bug wrote. Before any read model applies an event, its state is checked
against the schema of its topic: the fields the read models use, their types, and the domain's
ranges (a priority fits INTEGER on every database, a token count a BIGINT sum, …). An event
that fails is recorded as not applied (projection_failures) and the projections move on.

Unknown fields are ignored (events gain fields with defaults); a topic with no schema here is
not read by any projection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from freegin_ai.domain.ranges import (
    CostMicros,
    LatencyMs,
    Priority,
    QuotaCount,
    RetryAfter,
    TokenCount,
)
from freegin_ai.domain.topics import (
    LISTING_STARTED,
    LISTING_SYNCED,
    MODEL_ADOPTED,
    MODEL_DELISTED,
    MODEL_LISTED,
    MODEL_PRIORITY_CHANGED,
    MODEL_REINSTATED,
    MODEL_RETIRED,
    MODEL_RETIREMENT_PROPOSED,
    PROVIDER_CLEARED,
    SUGGESTION_ADOPTED,
    SUGGESTION_PROPOSED,
    SUGGESTION_REJECTED,
    SUGGESTION_REVISED,
    TRIAL_ENDED,
    TRIAL_STARTED,
    USAGE_LOGGED,
)
from freegin_ai.projections.envelope import Envelope

#: A trial's share of requests (NaN fails the bounds too).
Percent = Annotated[float, msgspec.Meta(gt=0, le=100)]


class _Keyed(msgspec.Struct, frozen=True):
    """Every catalog event names its row and says when it happened."""

    timestamp: datetime
    provider: str
    workload: str
    model: str


class _ModelAdopted(_Keyed, frozen=True):
    priority: Priority
    rationale: str | None = None
    metadata: dict[str, Any] | None = None


class _ModelPriorityChanged(_Keyed, frozen=True):
    new_priority: Priority
    rationale: str | None = None


class _ModelReinstated(_ModelAdopted, frozen=True):
    pass


class _SuggestionProposed(_Keyed, frozen=True):
    rationale: str | None = None
    metadata: dict[str, Any] | None = None
    production_ready: bool | None = None
    notes: str | None = None
    provenance: dict[str, Any] | None = None


class _SuggestionAdopted(_Keyed, frozen=True):
    priority: Priority


class _TrialStarted(_Keyed, frozen=True):
    percent: Percent


class _TrialEnded(_Keyed, frozen=True):
    outcome: str


class _RateLimitFact(msgspec.Struct, frozen=True):
    """A quota fact a response carried (domain.quota.observation_fields)."""

    measure: Literal["requests", "tokens"]
    window: Literal["minute", "day"]
    limit: QuotaCount | None = None
    remaining: QuotaCount | None = None
    reset_at: datetime | None = None


class _ProviderCleared(msgspec.Struct, frozen=True):
    timestamp: datetime
    provider: str
    model: str = ""


class _UsageLogged(msgspec.Struct, frozen=True):
    timestamp: datetime
    provider: str
    success: bool
    latency_ms: LatencyMs
    workload: str | None = None
    model: str | None = None
    arm: str | None = None
    error: str | None = None
    error_kind: str | None = None
    prompt_tokens: TokenCount | None = None
    completion_tokens: TokenCount | None = None
    total_tokens: TokenCount | None = None
    cached_tokens: TokenCount | None = None
    reasoning_tokens: TokenCount | None = None
    input_cost_micros: CostMicros | None = None
    output_cost_micros: CostMicros | None = None
    total_cost_micros: CostMicros | None = None
    retry_after_s: RetryAfter | None = None
    rate_limits: list[_RateLimitFact] | None = None
    ttft_ms: LatencyMs | None = None
    streamed: bool = False
    finish_reason: str | None = None


class _RetirementProposed(_Keyed, frozen=True):
    reason: str
    cause: Literal["delisted", "gone"] = "delisted"


class _Listing(msgspec.Struct, frozen=True):
    """Every listing event names its provider and says when it happened."""

    timestamp: datetime
    provider: str


Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
#: Listed prices, micros per 1,000 tokens: non-negative and finite.
Price = Annotated[float, msgspec.Meta(ge=0, le=1e12)]


class _ListedInfo(msgspec.Struct, frozen=True):
    context_window: Count | None = None
    max_output_tokens: Count | None = None
    supports_tools: bool | None = None
    supports_json: bool | None = None
    input_per_1k_micros: Price | None = None
    output_per_1k_micros: Price | None = None
    free: bool | None = None
    pipeline_tag: str | None = None
    tags: list[str] | None = None


class _ModelListed(_Listing, frozen=True):
    model: str
    info: _ListedInfo


class _ModelDelisted(_Listing, frozen=True):
    model: str


class _ListingSynced(_Listing, frozen=True):
    listed: Count


SCHEMAS: dict[str, type[msgspec.Struct]] = {
    MODEL_ADOPTED: _ModelAdopted,
    MODEL_PRIORITY_CHANGED: _ModelPriorityChanged,
    MODEL_RETIRED: _Keyed,
    MODEL_REINSTATED: _ModelReinstated,
    SUGGESTION_PROPOSED: _SuggestionProposed,
    SUGGESTION_REVISED: _SuggestionProposed,
    SUGGESTION_ADOPTED: _SuggestionAdopted,
    SUGGESTION_REJECTED: _Keyed,
    TRIAL_STARTED: _TrialStarted,
    TRIAL_ENDED: _TrialEnded,
    USAGE_LOGGED: _UsageLogged,
    PROVIDER_CLEARED: _ProviderCleared,
    MODEL_RETIREMENT_PROPOSED: _RetirementProposed,
    LISTING_STARTED: _Listing,
    MODEL_LISTED: _ModelListed,
    MODEL_DELISTED: _ModelDelisted,
    LISTING_SYNCED: _ListingSynced,
}


def event_problem(event: Envelope) -> str | None:
    """Why the read side cannot apply this event, in one line; None when it can."""
    schema = SCHEMAS.get(event.topic)
    if schema is None:
        return None
    try:
        msgspec.convert(event.state, schema)
    except msgspec.ValidationError as error:
        return f"{event.kind}: {error}"
    return None
