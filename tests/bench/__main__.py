"""Run every benchmark and print figures: `python -m tests.bench [--quick]` (`make bench`).

Targets (from the issues):
- replaying 100,000 events rebuilds every read table at >= 50,000 events/s;
- a stats query stays under 5 ms with 1,000,000 usage events logged;
- `freegin-ai list-models` starts and answers in under 300 ms;
- the router's own overhead per request has a median under 0.5 ms;
- usage logging sustains 20,000 events/s from one process;
- the quota check adds at most 50 µs to the router's median overhead (the database
  reservation before sending to a limited model is printed beside it);
- the quota ledger projection keeps up with 20,000 usage events/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from freegin_ai.adapters.catalog import Catalog, utc_now
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.base import ChatProvider, ChatReply, ChatRequest
from freegin_ai.adapters.router import GenerateRequest, Router
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.chat import FEATURES, StreamEnd, StreamItem, TextDelta, Usage
from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.usage import usage_logged
from freegin_ai.domain.workloads import Workload

MODELS = [f"model-{i}" for i in range(8)]
WORKLOADS = [w.value for w in Workload]


def report(name: str, value: float, unit: str, target: str, ok: bool) -> None:
    mark = "ok" if ok else "MISSED"
    print(f"{name:<48} {value:>12,.2f} {unit:<10} target {target:<14} {mark}", flush=True)


def fill_usage(catalog: Catalog, count: int, days: int = 30, chunk: int = 5_000) -> float:
    """Append `count` usage events spread over `days` days; returns events/s."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    step = timedelta(days=days) / max(count, 1)
    started = time.perf_counter()
    for offset in range(0, count, chunk):
        events = [
            usage_logged(
                id=uuid.uuid4(),
                at=start + step * i,
                provider="groq" if i % 2 else "huggingface",
                workload=WORKLOADS[i % len(WORKLOADS)],
                model=MODELS[i % len(MODELS)],
                success=i % 17 != 0,
                latency_ms=50 + (i * 37) % 3000,
                prompt_tokens=100,
                completion_tokens=50,
                total_cost_micros=i % 5,
            )
            for i in range(offset, min(offset + chunk, count))
        ]
        catalog.store.append_new_streams(events)
    return count / (time.perf_counter() - started)


def bench_replay(directory: Path, events: int) -> None:
    catalog = Catalog.open(f"sqlite:///{directory / 'replay.db'}")
    try:
        for i in range(200):
            catalog.adopt_model(
                AdoptModel(provider="groq", workload="chat", model=f"m-{i}", priority=i)
            )
        fill_usage(catalog, events - catalog.store.last_position())
        catalog.projector.catch_up()
        started = time.perf_counter()
        result = catalog.replay()
        elapsed = time.perf_counter() - started
        rate = result.events / elapsed
        report(
            f"replay {result.events:,} events (SQLite)",
            rate,
            "events/s",
            ">= 50,000",
            rate >= 50_000,
        )
        if not result.equal:
            print("  replay did not give the same rows!", file=sys.stderr)
    finally:
        catalog.close()


def bench_stats(directory: Path, events: int) -> None:
    catalog = Catalog.open(f"sqlite:///{directory / 'stats.db'}")
    try:
        rate = fill_usage(catalog, events)
        report(f"bulk usage append ({events:,} events)", rate, "events/s", "(info)", True)
        started = time.perf_counter()
        catalog.projector.catch_up()
        rate = events / (time.perf_counter() - started)
        report("incremental projection of that usage", rate, "events/s", "(info)", True)
        timings = []
        for _ in range(50):
            t0 = time.perf_counter()
            catalog.usage_stats("groq", Workload.CHAT)
            timings.append((time.perf_counter() - t0) * 1000)
        median = statistics.median(timings)
        report(f"stats query, {events:,} usage events", median, "ms median", "< 5 ms", median < 5)
    finally:
        catalog.close()


def bench_list_models(directory: Path) -> None:
    script = Path(sys.executable).parent / "freegin-ai"
    env = dict(os.environ, FREEGIN_DATA_DIR=str(directory / "cli"))
    subprocess.run([script, "list-models"], env=env, capture_output=True, check=True)
    timings = []
    for _ in range(10):
        t0 = time.perf_counter()
        subprocess.run([script, "list-models"], env=env, capture_output=True, check=True)
        timings.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(timings)
    report("`freegin-ai list-models` wall time", median, "ms median", "< 300 ms", median < 300)


class _InstantProvider:
    """An in-process provider that answers at once: what is left is the router's overhead."""

    features = FEATURES

    async def complete(self, client: object, request: ChatRequest) -> ChatReply:
        return ChatReply(text="ok", model=request.model, prompt_tokens=3, completion_tokens=2)

    async def stream(
        self, client: object, request: ChatRequest, meta: object = None
    ) -> AsyncIterator[StreamItem]:
        yield TextDelta(text="ok")
        yield StreamEnd(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=2))

    async def list_models(self, client: object) -> list[str]:
        return []


class _InstantProviders(ProviderSet):
    def adapter(self, name: str) -> ChatProvider:
        return _InstantProvider()

    def unavailable(self, name: str) -> str | None:
        return None


def bench_router(directory: Path, requests: int) -> None:
    catalog = Catalog.open(f"sqlite:///{directory / 'router.db'}")
    router = Router(catalog, _InstantProviders(Config(), {}, {}))

    async def run() -> list[float]:
        timings = []
        for i in range(requests):
            t0 = time.perf_counter()
            await router.generate(GenerateRequest(prompt=f"p{i}", workload="chat"))
            timings.append((time.perf_counter() - t0) * 1000)
        await router.aclose()
        return timings

    try:
        timings = anyio.run(run)
        median = statistics.median(timings)
        report("router overhead per request", median, "ms median", "< 0.5 ms", median < 0.5)
        with catalog.reading() as conn:
            logged = conn.exec_driver_sql("SELECT count(*) FROM provider_usage").scalar()
        if logged != requests:
            print(f"  expected {requests} usage rows, found {logged}", file=sys.stderr)
    finally:
        catalog.close()


def bench_usage_log(directory: Path, events: int) -> None:
    catalog = Catalog.open(f"sqlite:///{directory / 'usage.db'}")
    log = UsageLog(catalog.store, utc_now)
    try:
        started = time.perf_counter()
        for i in range(events):
            log.log(
                provider="groq", workload="chat", model=MODELS[i % 8], success=True,
                latency_ms=i % 700, prompt_tokens=10, completion_tokens=20,
            )  # fmt: skip
        log.close()
        rate = events / (time.perf_counter() - started)
        report(
            f"usage logging, one process ({events:,})",
            rate,
            "events/s",
            ">= 20,000",
            rate >= 20_000,
        )
        if catalog.store.last_position() < events:
            print("  events were lost", file=sys.stderr)
    finally:
        catalog.close()


def bench_quota(directory: Path, requests: int) -> None:
    """The quota check's share of a routing decision, and the reservation's cost."""
    from freegin_ai.domain.quota import QuotaLimits

    catalog = Catalog.open(f"sqlite:///{directory / 'quota.db'}", seed=False)
    for i, model in enumerate(MODELS):
        catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model=model, priority=i))
    fill_usage(catalog, 2_000, days=1)
    catalog.projector.catch_up()
    limits = QuotaLimits(
        requests_per_minute=10**6,
        requests_per_day=10**7,
        tokens_per_minute=10**9,
        tokens_per_day=10**10,
        source="bench",
    )
    limited = Config(quotas={f"groq/{m}": limits for m in MODELS})
    plain = Router(catalog, _InstantProviders(Config(), {}, {}))
    quota = Router(catalog, _InstantProviders(limited, {}, {}))
    request = GenerateRequest(prompt="hello", workload="chat")

    def median_us(router: Router) -> float:
        router.explain(request)
        timings = []
        for _ in range(requests):
            t0 = time.perf_counter()
            router.explain(request)
            timings.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(timings)

    try:
        without, with_quota = median_us(plain), median_us(quota)
        added = with_quota - without
        report("quota check added to a decision (8 models)", added, "µs median", "<= 50 µs",
               added <= 50)  # fmt: skip
        # The same check without the per-snapshot cache of fits, one candidate at a time.
        from freegin_ai.domain.quota import check

        snap, now = quota._current(), utc_now()
        timings = []
        for i in range(requests):
            usage = snap.ledger.get(("groq", MODELS[i % 8]), {})
            t0 = time.perf_counter()
            check(limits, usage, now, 300)
            timings.append((time.perf_counter() - t0) * 1e6)
        print(f"{'  quota check, uncached, per candidate':<48} "
              f"{statistics.median(timings):>12,.2f} µs median", flush=True)  # fmt: skip
        gate = quota.gate
        from freegin_ai.adapters.quota_gate import Slot

        slots = [Slot("minute", now.strftime("%Y-%m-%dT%H:%M:00Z"), 10**9),
                 Slot("day", now.strftime("%Y-%m-%dT00:00:00Z"), 10**9)]  # fmt: skip
        timings = []
        for _ in range(min(requests, 2_000)):
            t0 = time.perf_counter()
            gate.reserve("groq", "model-0", slots)
            timings.append((time.perf_counter() - t0) * 1e6)
        reserve = statistics.median(timings)
        print(f"{'  reservation before sending (SQLite, 2 windows)':<48} {reserve:>12,.2f} "
              "µs median (only for models with a known limit)", flush=True)  # fmt: skip
    finally:
        anyio.run(plain.aclose)
        anyio.run(quota.aclose)
        catalog.close()


def bench_quota_ledger(directory: Path, events: int) -> None:
    """The ledger projection alone: fold and write batches of usage events."""
    from sqlalchemy import create_engine

    from freegin_ai.domain.topics import USAGE_LOGGED
    from freegin_ai.projections.envelope import Envelope
    from freegin_ai.projections.quota import QuotaLedgerProjection
    from freegin_ai.projections.tables import metadata

    engine = create_engine(f"sqlite:///{directory / 'ledger.db'}")
    metadata.create_all(engine)
    start = datetime(2026, 11, 24, tzinfo=UTC)
    seen = [{"measure": "tokens", "window": "minute", "limit": 6000, "remaining": 5000,
             "reset_at": "2026-11-24T00:00:07Z"}]  # fmt: skip
    envelopes = [
        Envelope(
            position=i + 1,
            version=1,
            topic=USAGE_LOGGED,
            state={
                "timestamp": (start + timedelta(milliseconds=5 * i)).isoformat(),
                "provider": ("groq", "google", "openrouter")[i % 3],
                "workload": "chat",
                "model": MODELS[i % 8] + (":free" if i % 3 == 2 else ""),
                "success": True,
                "latency_ms": 100,
                "total_tokens": 150,
                "rate_limits": seen if i % 2 else None,
            },
        )
        for i in range(events)
    ]
    projection = QuotaLedgerProjection()
    started = time.perf_counter()
    for offset in range(0, events, 5_000):
        with engine.begin() as conn:
            projection.apply(conn, envelopes[offset : offset + 5_000])
    rate = events / (time.perf_counter() - started)
    report(f"quota ledger projection ({events:,})", rate, "events/s", ">= 20,000", rate >= 20_000)
    engine.dispose()


BENCHES: dict[str, Callable[[Path, bool], None]] = {
    "router": lambda d, quick: bench_router(d, 500 if quick else 5_000),
    "usage-log": lambda d, quick: bench_usage_log(d, 20_000 if quick else 200_000),
    "replay": lambda d, quick: bench_replay(d, 20_000 if quick else 100_000),
    "stats": lambda d, quick: bench_stats(d, 50_000 if quick else 1_000_000),
    "list-models": lambda d, quick: bench_list_models(d),
    "quota": lambda d, quick: bench_quota(d, 2_000 if quick else 20_000),
    "quota-ledger": lambda d, quick: bench_quota_ledger(d, 20_000 if quick else 200_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("only", nargs="*", help=f"benchmarks to run ({', '.join(BENCHES)})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="freegin-bench-") as tmp:
        for name, bench in BENCHES.items():
            if not args.only or name in args.only:
                bench(Path(tmp), args.quick)


if __name__ == "__main__":
    main()
