"""Operations commands: stats, smoke, trial-model, end-trial."""

from __future__ import annotations

import argparse
import os
from typing import Any

from freegin_ai.cli.common import (
    add_filter_arguments,
    add_json_argument,
    add_model_arguments,
    check_names,
    open_catalog,
)
from freegin_ai.cli.output import emit_json, fail


def register(commands: Any) -> None:
    p = commands.add_parser(
        "stats",
        help="usage statistics per model",
        description=(
            "Per model: calls, success rate, latency (average, p50, p95), time to first token "
            "of streamed answers (p50, p95), tokens, cost, cost per successful call and last "
            "use, with a total line. Trial and incumbent arms are "
            "shown apart. Read from running totals, never by scanning usage rows."
        ),
    )
    add_filter_arguments(p)
    p.add_argument("--since", help="only the last N days/weeks (7d, 2w; whole UTC days)")
    add_json_argument(p)
    p.set_defaults(handler=stats)

    p = commands.add_parser(
        "smoke",
        help="check models with a golden prompt per workload",
        description=(
            "Send each active model of a provider and workload (or one --model) the workload's "
            "golden prompt and check the answer's structure. Exits 1 if any model fails."
        ),
    )
    p.add_argument("--provider", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--model", help="only this model")
    add_json_argument(p)
    p.set_defaults(handler=smoke)

    p = commands.add_parser(
        "trial-model",
        help="route a share of a workload's requests to a suggested model",
        description=(
            "Put a suggestion on trial: about PERCENT %% of the workload's requests go to it, "
            "the same request key always to the same arm. Compare with `stats`."
        ),
    )
    add_model_arguments(p, workload_default=None)
    p.add_argument("--percent", type=float, required=True, help="share of requests, 0 < N <= 100")
    p.set_defaults(handler=trial_model)

    p = commands.add_parser(
        "end-trial",
        help="end a trial by adopting or rejecting the model",
        description="Stop a trial: --adopt moves the model into the roster, --reject drops it.",
    )
    add_model_arguments(p, workload_default=None)
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--adopt", action="store_true")
    outcome.add_argument("--reject", action="store_true")
    p.add_argument("--priority", type=int, help="with --adopt: roster priority (default 100)")
    p.add_argument("--reason", default="", help="with --reject: why")
    p.set_defaults(handler=end_trial)


def _money(micros: float | None) -> str:
    return "-" if micros is None else f"{micros / 1_000_000:.6f}"


def stats(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from freegin_ai.cli.render import printable, workload_label
    from freegin_ai.cli.times import before
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import Workload
    from freegin_ai.projections.queries import ModelStats

    provider = parse_provider(args.provider) if args.provider else None
    workload = Workload.parse(args.workload) if args.workload else None
    # Read before opening: an age too large to be a date is the caller's error.
    since_day = before(datetime.now(UTC), args.since).date().isoformat() if args.since else None
    catalog = open_catalog()
    try:
        rows = catalog.model_stats(
            provider=provider, workload=workload, model=args.model, since_day=since_day
        )
    finally:
        catalog.close()
    total = ModelStats(
        provider=provider or "", workload=workload.value if workload else "", model=""
    )
    for row in rows:
        total.add(row.as_row())

    def record(s: ModelStats) -> dict[str, Any]:
        return {
            "provider": s.provider,
            "workload": s.workload,
            "model": s.model,
            "arm": s.arm,
            "calls": s.calls,
            "success_rate": round(s.success_rate, 2),
            "avg_latency_ms": round(s.avg_latency_ms, 1),
            "p50_latency_ms": round(s.p50_latency_ms, 1),
            "p95_latency_ms": round(s.p95_latency_ms, 1),
            "streamed_calls": s.ttft_calls,
            "p50_ttft_ms": _rounded(s.p50_ttft_ms),
            "p95_ttft_ms": _rounded(s.p95_ttft_ms),
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "total_tokens": s.total_tokens,
            "cached_tokens": s.cached_tokens,
            "reasoning_tokens": s.reasoning_tokens,
            "cost_micros": s.cost_micros,
            "cost_per_success_micros": s.cost_per_success_micros,
            "last_used_at": s.last_used_at,
        }

    if args.json:
        emit_json({"since_day": since_day, "models": [record(r) for r in rows],
                   "total": record(total)})  # fmt: skip
        return 0
    if not rows:
        print("No usage recorded" + (f" since {since_day}." if since_day else "."))
        return 0
    header = (
        f"{'PROVIDER/WORKLOAD/MODEL':<48} {'CALLS':>7} {'OK%':>6} {'AVG ms':>8} {'P50':>7} "
        f"{'P95':>7} {'TTFT50':>7} {'TTFT95':>7} {'TOKENS':>9} {'COST $':>10} {'$/OK':>10}  "
        "LAST USED"
    )
    print(header)
    for s in [*rows, total]:
        if s is total:
            label = "TOTAL"
        else:
            label = printable(f"{s.provider}/{workload_label(s.workload)}/{s.model or '(unknown)'}")
            if s.arm:
                label += f" [{s.arm}]"
        print(
            f"{label:<48} {s.calls:>7} {s.success_rate:>5.1f}% {s.avg_latency_ms:>8.1f} "
            f"{s.p50_latency_ms:>7.0f} {s.p95_latency_ms:>7.0f} {_ms(s.p50_ttft_ms):>7} "
            f"{_ms(s.p95_ttft_ms):>7} {s.total_tokens:>9} "
            f"{_money(s.cost_micros):>10} {_money(s.cost_per_success_micros):>10}  "
            f"{s.last_used_at or '-'}"
        )
    return 0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def smoke(args: argparse.Namespace) -> int:
    import anyio

    from freegin_ai.adapters.router import Router
    from freegin_ai.adapters.smoke import run_smoke
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import Workload

    provider = parse_provider(args.provider)
    workload = Workload.parse(args.workload)
    model = check_model_name(args.model) if args.model is not None else None

    async def run() -> list[Any]:
        async with Router.open(os.environ, one_shot=True) as router:
            return await run_smoke(router, provider=provider, workload=workload, model=model)

    results = anyio.run(run)
    if not results:
        return fail(f"no active model for {provider} / {workload.display} to smoke-test", 1)
    if args.json:
        emit_json(results)
    else:
        for r in results:
            verdict = "PASS" if r.passed else f"FAIL  {r.reason}"
            print(f"{provider}/{workload.display}/{r.model}: {verdict}")
    return 0 if all(r.passed for r in results) else 1


def trial_model(args: argparse.Namespace) -> int:
    if not 0 < args.percent <= 100:
        return fail(f"--percent must be above 0 and at most 100, got {args.percent}")
    check_names(args.provider, args.workload, args.model)
    catalog = open_catalog()
    try:
        created = catalog.start_trial(
            provider=args.provider, workload=args.workload, model=args.model, percent=args.percent
        )
    finally:
        catalog.close()
    note = " (recorded as a new suggestion first)" if created else ""
    print(
        f"Model '{args.model}' is on trial for {args.percent:g}% of {args.workload} requests{note}."
    )
    return 0


def end_trial(args: argparse.Namespace) -> int:
    from freegin_ai.domain.names import check_priority

    if args.priority is not None:
        check_priority(args.priority)  # before anything is opened or written
    check_names(args.provider, args.workload, args.model)
    catalog = open_catalog()
    try:
        outcome = catalog.end_trial(
            provider=args.provider,
            workload=args.workload,
            model=args.model,
            adopt=args.adopt,
            priority=args.priority,
            reason=args.reason,
        )
    finally:
        catalog.close()
    if outcome is not None:
        print(
            f"Trial ended: adopted model '{outcome.model}' for provider '{outcome.provider}' "
            f"and workload '{outcome.workload.display}' with priority {outcome.priority}"
        )
    else:
        print(f"Trial ended: rejected model '{args.model.strip()}'.")
    return 0
