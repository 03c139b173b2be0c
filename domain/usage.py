"""UsageRecord: one provider call as it happened. Each call is its own stream of one event,
so concurrent loggers never contend on a shared stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from freegin_ai.domain.ranges import (
    COST_MICROS_MAX,
    TOKENS_MAX,
    check_cost,
    check_latency,
    check_retry_after,
    check_tokens,
)


class UsageRecord(Aggregate):
    """A logged provider call."""

    class UsageLogged(Aggregate.Created):
        """A provider call was made; `model` is None only for imported legacy rows."""

        provider: str
        workload: str | None
        model: str | None
        success: bool
        latency_ms: int
        error: str | None = None
        error_kind: str | None = None
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        total_tokens: int | None = None
        input_cost_micros: int | None = None
        output_cost_micros: int | None = None
        total_cost_micros: int | None = None
        retry_after_s: float | None = None
        request_key: str | None = None
        arm: str | None = None
        cached_tokens: int | None = None
        reasoning_tokens: int | None = None
        #: Milliseconds to the first delta of a streamed answer (None when not streamed).
        ttft_ms: int | None = None
        #: Whether the answer was streamed.
        streamed: bool = False
        #: stop, length, tool_calls, content_filter, or cancelled (the caller stopped reading).
        finish_reason: str | None = None
        #: The provider's quota facts seen in the response, normalized (domain.quota
        #: `observation_fields`): never raw headers.
        rate_limits: list[dict[str, Any]] | None = None

    def __init__(self, provider: str, workload: str | None, model: str | None) -> None:
        self.provider = provider
        self.workload = workload
        self.model = model


_TOPIC = get_topic(UsageRecord)


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenUsage:
    """The token counts a provider reported for one call (None where it did not say)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    #: Prompt tokens served from the provider's cache (part of prompt_tokens).
    cached_tokens: int | None = None
    #: Reasoning ("thinking") tokens (part of completion_tokens).
    reasoning_tokens: int | None = None


NO_TOKENS = TokenUsage()


@dataclass(frozen=True, kw_only=True, slots=True)
class CallUsage:
    """One provider call as it is logged: who was called, how it went, what it used and cost."""

    provider: str
    workload: str | None
    model: str | None
    success: bool
    latency_ms: int
    tokens: TokenUsage = NO_TOKENS
    input_cost_micros: int | None = None
    output_cost_micros: int | None = None
    total_cost_micros: int | None = None
    error: str | None = None
    error_kind: str | None = None
    retry_after_s: float | None = None
    request_key: str | None = None
    arm: str | None = None
    #: Normalized quota facts the response carried (domain.quota.observation_fields).
    rate_limits: list[dict[str, Any]] | None = None
    #: Milliseconds to the first delta of a streamed answer (None when not streamed).
    ttft_ms: int | None = None
    #: Whether the answer was streamed.
    streamed: bool = False
    #: stop, length, tool_calls, content_filter, or cancelled (the caller stopped reading).
    finish_reason: str | None = None


_TOKEN_FIELDS = (
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
)  # fmt: skip
_COST_FIELDS = ("input_cost_micros", "output_cost_micros", "total_cost_micros")


def usage_state(*, at: datetime, usage: CallUsage) -> dict[str, Any]:
    """The state of a usage stream's one event: every field of UsageLogged but its id and
    version, in the order of the class, as the event's stored form holds them.

    Usage is logged on every call, so the usage log stores this directly, without making the
    event object (`usage_logged` makes it from the same state). Totals left out are filled
    in, and every number is checked against domain.ranges (ValueOutOfRangeError): the read
    side must be able to apply whatever is logged.
    """
    tokens = usage.tokens
    total_tokens = tokens.total_tokens
    prompt, completion = tokens.prompt_tokens, tokens.completion_tokens
    if total_tokens is None and prompt is not None and completion is not None:
        total_tokens = prompt + completion
    total_cost_micros = usage.total_cost_micros
    if total_cost_micros is None and (
        usage.input_cost_micros is not None or usage.output_cost_micros is not None
    ):
        total_cost_micros = (usage.input_cost_micros or 0) + (usage.output_cost_micros or 0)
    check_latency(usage.latency_ms)
    if usage.ttft_ms is not None:
        check_latency(usage.ttft_ms)
    # The quick test first (a plain loop: this runs on every call); the checks name the fault.
    counts = (prompt, completion, total_tokens, tokens.cached_tokens, tokens.reasoning_tokens)
    for count in counts:
        if count is not None and (type(count) is not int or not 0 <= count <= TOKENS_MAX):
            for name, value in zip(_TOKEN_FIELDS, counts, strict=True):
                check_tokens(name, value)
    costs = (usage.input_cost_micros, usage.output_cost_micros, total_cost_micros)
    for cost in costs:
        if cost is not None and (type(cost) is not int or not 0 <= cost <= COST_MICROS_MAX):
            for name, value in zip(_COST_FIELDS, costs, strict=True):
                check_cost(name, value)
    return {
        "timestamp": at,
        "originator_topic": _TOPIC,
        "provider": usage.provider,
        "workload": usage.workload,
        "model": usage.model,
        "success": usage.success,
        "latency_ms": usage.latency_ms,
        "error": usage.error,
        "error_kind": usage.error_kind,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total_tokens,
        "input_cost_micros": usage.input_cost_micros,
        "output_cost_micros": usage.output_cost_micros,
        "total_cost_micros": total_cost_micros,
        "retry_after_s": check_retry_after(usage.retry_after_s),
        "request_key": usage.request_key,
        "arm": usage.arm,
        "cached_tokens": tokens.cached_tokens,
        "reasoning_tokens": tokens.reasoning_tokens,
        "ttft_ms": usage.ttft_ms,
        "streamed": usage.streamed,
        "finish_reason": usage.finish_reason,
        "rate_limits": usage.rate_limits or None,
    }


def usage_logged(*, id: UUID, at: datetime, usage: CallUsage) -> UsageRecord.UsageLogged:
    """Build the one event of a usage stream without materialising the aggregate (checked as
    `usage_state` checks it)."""
    # The event class is made a dataclass by eventsourcing's metaclass, which mypy cannot see.
    event_class: Any = UsageRecord.UsageLogged
    event: UsageRecord.UsageLogged = event_class(
        originator_id=id, originator_version=1, **usage_state(at=at, usage=usage)
    )
    return event
