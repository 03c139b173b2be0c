"""From an OpenAI request to a router request, and from a router failure to an HTTP error.

The `model` field chooses the route:

    chat, code, summarization, extraction, creative, classification   that workload, with fallback
    auto                       chat (or the `x-freegin-workload` header's workload)
    provider/model             that model on that provider; a hard choice unless `fallback`
    a bare model id            every provider whose catalog (or config.toml) serves it

A `provider/model` whose whole text is itself a model the catalog serves (Groq's
`openai/gpt-oss-120b`) is that bare model. Anything else is a 404 `model_not_found`.

Failures become OpenAI-shaped errors: 429 with Retry-After when every candidate is rate limited
(tried, skipped while cooling down after a 429, or skipped out of free-tier quota until its
reset), 504 when every attempt timed out, 502 when
every attempt failed otherwise, 503 when no candidate could be tried at all; each attempt and
each skipped candidate is listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from freegin_ai.adapters.gateway.wire import ApiError
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    Attempt,
    GenerateRequest,
    NoCandidateError,
    Router,
)
from freegin_ai.domain.errors import DomainError
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.workloads import ALL_WORKLOADS, Workload
from freegin_ai.projections.queries import list_health

#: The model-field names that route by workload (`auto` is chat unless a header says).
WORKLOAD_ALIASES: tuple[str, ...] = (*(w.value for w in ALL_WORKLOADS), "auto")

#: How long a client should wait when nothing says (a fresh cooldown's length).
DEFAULT_RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: a workload, and maybe a provider and a model."""

    workload: Workload
    provider: str | None = None
    model: str | None = None
    fallback: bool = False


def parse_workload_header(value: str | None) -> Workload | None:
    """The `x-freegin-workload` header, or None; a 400 naming the header when unknown."""
    if value is None or not value.strip():
        return None
    try:
        return Workload.parse(value)
    except DomainError as error:
        raise ApiError(400, str(error), param="x-freegin-workload") from None


def resolve_target(router: Router, model: str, workload: Workload | None, fallback: bool) -> Target:
    """Read the `model` field (see the module docstring)."""
    name = model.strip()
    key = name.lower()
    if key == "auto":
        return Target(workload or Workload.CHAT)
    if key in WORKLOAD_ALIASES:
        return Target(Workload(key))
    chosen = workload or Workload.CHAT
    if _served(router, name, chosen):
        return Target(chosen, model=name)
    prefix, slash, rest = name.partition("/")
    if slash and rest:
        try:
            provider = parse_provider(prefix)
        except DomainError:
            provider = None
        if provider is not None:
            return Target(chosen, provider=provider, model=rest, fallback=fallback)
    raise ApiError(
        404,
        f"The model `{name}` does not exist or is not served by the catalog: use a workload "
        f"({', '.join(WORKLOAD_ALIASES)}), provider/model, or a model of the roster "
        "(GET /v1/models lists them)",
        param="model",
        code="model_not_found",
    )


def _served(router: Router, model: str, workload: Workload) -> bool:
    """Whether some provider's catalog or config.toml serves this model id as it is."""
    try:
        router.explain(GenerateRequest(prompt="", workload=workload, model=model))
    except NoCandidateError:
        return False
    return True


def failure_error(router: Router, error: Exception, now: datetime) -> ApiError:
    """The HTTP error for a router failure (NoCandidateError or AllAttemptsFailedError)."""
    if isinstance(error, AllAttemptsFailedError):
        return _all_failed(router, error.attempts, now)
    if isinstance(error, NoCandidateError):
        decision = error.decision
        if decision is None:
            return ApiError(404, str(error), param="model", code="model_not_found")
        cooling = _cooling(router, [(s.provider, s.model) for s in decision.skipped], now)
        # Out of free-tier quota is rate limiting known before sending: back at its reset.
        for s in decision.skipped:
            if s.reason.startswith("quota:") and s.back_at is not None and s.back_at > now:
                left = (s.back_at - now).total_seconds()
                cooling.setdefault((s.provider, s.model), ("rate_limited", left))
        skipped = [
            {"provider": s.provider, "model": s.model, "reason": s.reason} for s in decision.skipped
        ]
        # Models of providers without a key are not candidates; those cooling down are.
        all_rate_limited = bool(cooling) and all(
            kind == "rate_limited" for kind, _ in cooling.values()
        )
        retry = _retry_after(cooling.values())
        headers = (("Retry-After", str(retry)),) if cooling else ()
        if all_rate_limited:
            return ApiError(
                429,
                f"every candidate is rate limited: {error}",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
                extra={"skipped": skipped},
            )
        return ApiError(
            503,
            str(error),
            type="service_unavailable",
            code="no_candidate",
            headers=headers,
            extra={"skipped": skipped},
        )
    raise TypeError(f"not a router failure: {type(error).__name__}")


def _all_failed(router: Router, attempts: Sequence[Attempt], now: datetime) -> ApiError:
    listed = [
        {
            "provider": a.provider,
            "model": a.model,
            "error_kind": a.error_kind,
            "error": a.error,
            "latency_ms": a.latency_ms,
        }
        for a in attempts
    ]
    summary = "; ".join(
        f"{n}. {a.provider}/{a.model}: {a.error_kind}: {a.error}" for n, a in enumerate(attempts, 1)
    )
    kinds = {a.error_kind for a in attempts}
    if kinds == {"rate_limited"}:
        cooling = _cooling(router, [(a.provider, a.model) for a in attempts], now)
        return ApiError(
            429,
            f"every candidate is rate limited: {summary}",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=(("Retry-After", str(_retry_after(cooling.values()))),),
            extra={"attempts": listed},
        )
    if kinds == {"timeout"}:
        return ApiError(
            504,
            f"every attempt timed out: {summary}",
            type="timeout",
            code="upstream_timeout",
            extra={"attempts": listed},
        )
    return ApiError(
        502,
        f"all {len(attempts)} attempts failed: {summary}",
        type="upstream_error",
        code="all_attempts_failed",
        extra={"attempts": listed},
    )


def _cooling(
    router: Router, keys: Sequence[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], tuple[str, float]]:
    """For each (provider, model) cooling down now: (the failure kind, seconds left).

    Read from the health view, which the router's failures reached before it raised.
    """
    wanted = set(keys) | {(p, "") for p, _ in keys}
    with router.catalog.reading() as conn:
        rows = list_health(conn)
    found: dict[tuple[str, str], tuple[str, float]] = {}
    for row in rows:
        if (row.provider, row.model) not in wanted or not row.cooldown_until:
            continue
        left = (datetime.fromisoformat(row.cooldown_until) - now).total_seconds()
        if left > 0:
            found[(row.provider, row.model)] = (row.last_error_kind or "error", left)
    result: dict[tuple[str, str], tuple[str, float]] = {}
    for provider, model in keys:
        entry = found.get((provider, model)) or found.get((provider, ""))
        if entry is not None:
            result[(provider, model)] = entry
    return result


def _retry_after(entries: Iterable[tuple[str, float]]) -> int:
    """Whole seconds until the first of these cooldowns ends (a default when none)."""
    seconds = [left for _, left in entries]
    return max(1, math.ceil(min(seconds))) if seconds else DEFAULT_RETRY_AFTER_S
