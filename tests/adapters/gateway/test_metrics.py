"""GatewayMetrics: a client cannot grow the number of series by making model names up."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from freegin_ai.adapters.gateway.metrics import MAX_ANSWERED, OTHER, GatewayMetrics, KnownModels

ROSTER = {("groq", "llama-3.3-70b-versatile")}


class Clock:
    """Seconds that move only when a test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def series(metrics: GatewayMetrics, name: str) -> list[dict[str, str]]:
    return [
        s.labels
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name == name
    ]


def count(metrics: GatewayMetrics, provider: str, model: str, outcome: str) -> None:
    metrics.requests.labels(*metrics.route(provider, model, "chat"), outcome).inc()


def test_thousands_of_made_up_model_names_make_one_series_and_one_read_a_second() -> None:
    reads: list[int] = []

    def roster() -> set[tuple[str, str]]:
        reads.append(1)
        return ROSTER

    metrics = GatewayMetrics(known=KnownModels(roster, elapsed=Clock()))
    # Given a client pinning 5,000 models nobody serves, and one call to a roster model
    for n in range(5000):
        count(metrics, "groq", f"made-up-{n}", "all_attempts_failed")
    count(metrics, "groq", "llama-3.3-70b-versatile", "ok")
    # Then there are two series, the made-up names counted together under `other`
    found = series(metrics, "freegin_requests_total")
    assert sorted((s["model"], s["outcome"]) for s in found) == [
        ("llama-3.3-70b-versatile", "ok"),
        (OTHER, "all_attempts_failed"),
    ]
    # And the roster was read once, not once per made-up name (the clock did not move)
    assert len(reads) == 1


def test_a_model_adopted_later_gets_its_label_once_the_roster_is_read_again() -> None:
    roster = set(ROSTER)
    clock = Clock()
    known = KnownModels(lambda: roster, elapsed=clock)
    assert known.labels("groq", "new-1") == ("groq", OTHER)
    roster.add(("groq", "new-1"))
    assert known.labels("groq", "new-1") == ("groq", OTHER)  # read less than a second ago
    clock.now += 1.0
    assert known.labels("groq", "new-1") == ("groq", "new-1")


def test_models_a_provider_answered_keep_their_label_up_to_a_bound() -> None:
    known = KnownModels(lambda: ())
    for n in range(MAX_ANSWERED + 10):
        known.answered("openrouter", f"m-{n}")
    assert known.labels("openrouter", "m-0") == ("openrouter", "m-0")
    assert known.labels("openrouter", f"m-{MAX_ANSWERED - 1}")[1] == f"m-{MAX_ANSWERED - 1}"
    assert known.labels("openrouter", f"m-{MAX_ANSWERED}") == ("openrouter", OTHER)


def test_a_bare_model_id_keeps_its_label_when_some_provider_serves_it() -> None:
    known = KnownModels(lambda: ROSTER)
    assert known.labels("", "llama-3.3-70b-versatile") == ("", "llama-3.3-70b-versatile")
    assert known.labels("", "made-up") == ("", OTHER)
    known.answered("openrouter", "answered-1")
    assert known.labels("", "answered-1") == ("", "answered-1")


def test_empty_names_stay_empty_and_unknown_providers_are_other() -> None:
    known = KnownModels(lambda: ())
    assert known.labels("", "") == ("", "")
    assert known.labels("groq", "") == ("groq", "")
    assert known.labels("not-a-provider", "x") == (OTHER, OTHER)


def test_models_cooling_down_outside_the_catalog_are_counted_under_other() -> None:
    cooling = [("groq", f"made-up-{n}", "gone") for n in range(50)]
    cooling += [("groq", "llama-3.3-70b-versatile", "server"), ("google", "", "auth")]
    metrics = GatewayMetrics(lambda: cooling, KnownModels(lambda: ROSTER))
    text = metrics.exposition().decode()
    values = {
        (s.labels["provider"], s.labels["model"], s.labels["kind"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "freegin_model_cooling_down"
    }
    assert values == {
        ("groq", OTHER, "gone"): 50,
        ("groq", "llama-3.3-70b-versatile", "server"): 1,
        ("google", "", "auth"): 1,
    }
