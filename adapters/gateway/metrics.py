"""GatewayMetrics: what `GET /metrics` exposes, in Prometheus' text format.

One registry per gateway (never the client library's global one), so tests and several apps in
a process do not share counters. No label or value ever carries a key.

Labels are the provider, model and workload of a route, and a client must not be able to grow
the number of series by making names up (`provider/model` pins any model name, and a provider
may answer to names it does not serve). So a provider label is a provider of the registry, and
a model label a model the catalog knows (`KnownModels`: active in the roster or named in
config.toml) or one a provider actually answered (at most `MAX_ANSWERED` of them); anything
else is counted under `other`.

    freegin_http_requests_total{path,status}
    freegin_requests_total{provider,model,workload,outcome}       chat completions
    freegin_request_duration_seconds{provider,model,workload}     histogram
    freegin_time_to_first_token_seconds{provider,model,workload}  histogram (streams)
    freegin_attempts_total{provider,model,workload,outcome}       every provider call
    freegin_tokens_total{provider,model,workload,kind}            prompt, completion, cached, …
    freegin_cost_usd_total{provider,model,workload}
    freegin_in_flight_requests
    freegin_model_cooling_down{provider,model,kind}               models cooling down now
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from freegin_ai.domain.providers import PROVIDERS

#: Seconds: a local model answers in milliseconds, a slow free tier in tens of seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: (provider, model, last error kind) of every model cooling down now.
CoolingSource = Callable[[], Sequence[tuple[str, str, str]]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The label value of a provider or model the gateway does not know.
OTHER = "other"

#: Models answered outside the catalog that get a label of their own; later ones are `other`.
MAX_ANSWERED = 1000

#: (provider, model) of every model the catalog knows: the active roster, config.toml.
KnownSource = Callable[[], Iterable[tuple[str, str]]]


class KnownModels:
    """Which provider and model names may be label values (see the module docstring).

    The catalog's models are read from `source` again when a name is not among them, at most
    once every `refresh_seconds`, so a model adopted while the gateway runs gets its label
    from then on, and a flood of made-up names costs one read a second.
    """

    def __init__(
        self,
        source: KnownSource | None = None,
        *,
        refresh_seconds: float = 1.0,
        elapsed: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._elapsed = elapsed
        self._catalog: set[tuple[str, str]] = set()
        self._answered: set[tuple[str, str]] = set()
        #: The model names of both, for a bare model id (no provider chosen yet).
        self._names: set[str] = set()
        self._read_at = float("-inf")

    def answered(self, provider: str, model: str) -> None:
        """A provider answered with this model: it exists, it may be a label."""
        if provider in PROVIDERS and len(self._answered) < MAX_ANSWERED:
            self._answered.add((provider, model))
            self._names.add(model)

    def labels(self, provider: str, model: str) -> tuple[str, str]:
        """The (provider, model) label values: as they are when known (or empty), else `other`."""
        if provider and provider not in PROVIDERS:
            return OTHER, OTHER if model else ""
        if not model or self._knows(provider, model):
            return provider, model
        return provider, OTHER

    def _knows(self, provider: str, model: str) -> bool:
        if self._has(provider, model):
            return True
        now = self._elapsed()
        if self._source is None or now - self._read_at < self._refresh_seconds:
            return False
        self._read_at = now
        self._catalog = set(self._source())
        self._names = {m for _, m in self._catalog} | {m for _, m in self._answered}
        return self._has(provider, model)

    def _has(self, provider: str, model: str) -> bool:
        if not provider:
            return model in self._names
        return (provider, model) in self._catalog or (provider, model) in self._answered


class _Cooling(Collector):
    """Reads the health view at scrape time, so every process on the database agrees."""

    def __init__(self, source: CoolingSource, known: KnownModels) -> None:
        self._source = source
        self._known = known

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "freegin_model_cooling_down",
            "Models (an empty model: a whole provider) cooling down after failures",
            labels=["provider", "model", "kind"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        for provider, model, kind in self._source():
            key = (*self._known.labels(provider, model), kind)
            counts[key] = counts.get(key, 0) + 1  # models folded into `other` add up
        for key, count in counts.items():
            family.add_metric(list(key), count)
        yield family


class GatewayMetrics:
    """Counters and histograms of one gateway."""

    def __init__(
        self, cooling: CoolingSource | None = None, known: KnownModels | None = None
    ) -> None:
        self.known = known or KnownModels()
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
            self.registry.register(_Cooling(cooling, self.known))

    def route(self, provider: str, model: str, workload: str) -> tuple[str, str, str]:
        """The (provider, model, workload) labels of a route, unknown names as `other`."""
        return (*self.known.labels(provider, model), workload)

    def exposition(self) -> bytes:
        """The text format, for `GET /metrics`."""
        return generate_latest(self.registry)
