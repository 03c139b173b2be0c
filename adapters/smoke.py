"""Smoke runner: sends each model of a provider and workload its golden prompt through the
router (logged as usage like any call) and checks the answer's structure."""

from __future__ import annotations

from dataclasses import dataclass

from freegin_ai.adapters.router import AllAttemptsFailedError, GenerateRequest, Router
from freegin_ai.domain.smoke import smoke_case
from freegin_ai.domain.workloads import Workload


@dataclass(frozen=True, slots=True)
class SmokeResult:
    """One model's smoke test: passed, or the reason it did not."""

    provider: str
    model: str
    passed: bool
    reason: str | None
    latency_ms: int | None


async def run_smoke(
    router: Router, *, provider: str, workload: Workload, model: str | None = None
) -> list[SmokeResult]:
    """Smoke-test one model, or every active model of the provider and workload."""
    if model:
        models = [model]
    else:
        models = [r.model for r in router.catalog.list_models(provider=provider, workload=workload)]
    case = smoke_case(workload)
    results = []
    for name in models:
        request = GenerateRequest(
            prompt=case.prompt,
            workload=workload,
            provider=provider,
            model=name,
            max_tokens=400,
            inputs=case.text,
            labels=case.labels,
        )
        try:
            reply = await router.generate(request)
        except AllAttemptsFailedError as error:
            attempt = error.attempts[-1]
            results.append(
                SmokeResult(provider, name, False, attempt.error or "failed", attempt.latency_ms)
            )
            continue
        reason = case.check(reply.text)
        results.append(SmokeResult(provider, name, reason is None, reason, reply.latency_ms))
    return results
