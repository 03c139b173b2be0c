"""UsageRecord: one provider call as it happened. Each call is its own stream of one event,
so concurrent loggers never contend on a shared stream."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from freegin_ai.domain.ranges import (
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


def usage_logged(
    *,
    id: UUID,
    at: datetime,
    provider: str,
    workload: str | None,
    model: str | None,
    success: bool,
    latency_ms: int,
    error: str | None = None,
    error_kind: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    total_tokens: int | None = None,
    input_cost_micros: int | None = None,
    output_cost_micros: int | None = None,
    total_cost_micros: int | None = None,
    retry_after_s: float | None = None,
    request_key: str | None = None,
    arm: str | None = None,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    ttft_ms: int | None = None,
    streamed: bool = False,
    finish_reason: str | None = None,
    rate_limits: list[dict[str, Any]] | None = None,
) -> UsageRecord.UsageLogged:
    """Build the one event of a usage stream without materialising the aggregate.

    Usage is logged on every call, so this skips the aggregate object on the hot path. Every
    number is checked against domain.ranges (ValueOutOfRangeError): the read side must be able
    to apply whatever is logged.
    """
    if total_tokens is None and prompt_tokens is not None and completion_tokens is not None:
        total_tokens = prompt_tokens + completion_tokens
    if total_cost_micros is None and (
        input_cost_micros is not None or output_cost_micros is not None
    ):
        total_cost_micros = (input_cost_micros or 0) + (output_cost_micros or 0)
    check_latency(latency_ms)
    if ttft_ms is not None:
        check_latency(ttft_ms)
    for name, count in (
        ("prompt_tokens", prompt_tokens),
        ("completion_tokens", completion_tokens),
        ("total_tokens", total_tokens),
        ("cached_tokens", cached_tokens),
        ("reasoning_tokens", reasoning_tokens),
    ):
        check_tokens(name, count)
    for name, cost in (
        ("input_cost_micros", input_cost_micros),
        ("output_cost_micros", output_cost_micros),
        ("total_cost_micros", total_cost_micros),
    ):
        check_cost(name, cost)
    retry_after_s = check_retry_after(retry_after_s)
    # The event class is made a dataclass by eventsourcing's metaclass, which mypy cannot see.
    event_class: Any = UsageRecord.UsageLogged
    event: UsageRecord.UsageLogged = event_class(
        originator_id=id,
        originator_version=1,
        timestamp=at,
        originator_topic=_TOPIC,
        provider=provider,
        workload=workload,
        model=model,
        success=success,
        latency_ms=latency_ms,
        error=error,
        error_kind=error_kind,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=total_tokens,
        input_cost_micros=input_cost_micros,
        output_cost_micros=output_cost_micros,
        total_cost_micros=total_cost_micros,
        retry_after_s=retry_after_s,
        request_key=request_key,
        arm=arm,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        ttft_ms=ttft_ms,
        streamed=streamed,
        finish_reason=finish_reason,
        rate_limits=rate_limits or None,
    )
    return event
