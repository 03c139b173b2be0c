"""GatewayMetrics: what `GET /metrics` exposes, in Prometheus' text format.

One registry per gateway (never the client library's global one), so tests and several apps in
a process do not share counters. Labels are the provider, model and workload the router chose,
never anything a client can make up at will except a model pinned with `provider/model`; no
label or value ever carries a key.

    freegin_http_requests_total{path,status}
    freegin_requests_total{provider,model,workload,outcome}       chat completions
    freegin_request_duration_seconds{provider,model,workload}     histogram
    freegin_time_to_first_token_seconds{provider,model,workload}  histogram (streams)
    freegin_attempts_total{provider,model,workload,outcome}       every provider call
    freegin_tokens_total{provider,model,workload,kind}            prompt, completion, cached, …
    freegin_cost_usd_total{provider,model,workload}
    freegin_in_flight_requests
    freegin_model_cooling_down{provider,model,kind}               1 per model cooling down now
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Seconds: a local model answers in milliseconds, a slow free tier in tens of seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: (provider, model, last error kind) of every model cooling down now.
CoolingSource = Callable[[], Sequence[tuple[str, str, str]]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Cooling(Collector):
    """Reads the health view at scrape time, so every process on the database agrees."""

    def __init__(self, source: CoolingSource) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "freegin_model_cooling_down",
            "Models (an empty model: a whole provider) cooling down after failures",
            labels=["provider", "model", "kind"],
        )
        for provider, model, kind in self._source():
            family.add_metric([provider, model, kind], 1)
        yield family


class GatewayMetrics:
    """Counters and histograms of one gateway."""

    def __init__(self, cooling: CoolingSource | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        route = ["provider", "model", "workload"]
        self.http = Counter(
            "freegin_http_requests",
            "HTTP requests answered, by path and status",
            ["path", "status"],
            registry=self.registry,
        )
        self.requests = Counter(
            "freegin_requests",
            "Chat completions by the provider and model that answered (empty when none did) "
            "and outcome (ok, or why it failed)",
            [*route, "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "freegin_request_duration_seconds",
            "Time to answer a chat completion, fallback included",
            route,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "freegin_time_to_first_token_seconds",
            "Time from the request to the first content chunk of a stream",
            route,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "freegin_attempts",
            "Provider calls by outcome (ok or the failure kind)",
            [*route, "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "freegin_tokens",
            "Tokens by kind (prompt, completion, cached, reasoning)",
            [*route, "kind"],
            registry=self.registry,
        )
        self.cost = Counter(
            "freegin_cost_usd",
            "Cost in US dollars of the answers (unknown prices count nothing)",
            route,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "freegin_in_flight_requests",
            "Chat completions being answered now",
            registry=self.registry,
        )
        if cooling is not None:
            self.registry.register(_Cooling(cooling))

    def exposition(self) -> bytes:
        """The text format, for `GET /metrics`."""
        return generate_latest(self.registry)
