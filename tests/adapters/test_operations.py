"""Cost tracking, trials and smoke tests, through the library against fake providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config, PriceSetting
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import GenerateRequest, Router
from freegin_ai.adapters.smoke import run_smoke
from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.smoke import smoke_case
from freegin_ai.domain.usage import CallUsage
from freegin_ai.domain.workloads import Workload
from tests.conftest import FakeClock
from tests.fakes.catalogs import catalog_with
from tests.fakes.provider_server import FakeProviderServer, Reply, ServerError

KEY = "sk-ops-SECRET-1234"


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    with catalog_with(database_url, clock) as c:
        yield c


def make_router(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock, config: Config | None = None
) -> Router:
    env = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": KEY}
    return Router(catalog, ProviderSet(config or Config(), env, {}), clock=clock)


@pytest.fixture
async def router(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> AsyncIterator[Router]:
    config = Config(
        prices={"groq/priced": PriceSetting(input_per_1k_micros=1000, output_per_1k_micros=3000)}
    )
    r = make_router(catalog, fake, clock, config)
    yield r
    await r.aclose()


@pytest.mark.anyio
async def test_cost_comes_from_config_or_metadata_and_free_models_cost_nothing(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="priced", priority=1))
    catalog.adopt_model(
        AdoptModel(
            provider="groq",
            workload="code",
            model="meta-priced",
            priority=1,
            metadata={"est_cost_per_1k_tokens": 0.002},
        )
    )
    catalog.adopt_model(AdoptModel(provider="groq", workload="creative", model="x:free"))
    fake.script("priced", Reply(prompt_tokens=1000, completion_tokens=2000))
    fake.script("meta-priced", Reply(prompt_tokens=500, completion_tokens=500))
    fake.script("x:free", Reply(prompt_tokens=50, completion_tokens=50))
    first = await router.generate(GenerateRequest(prompt="a"))
    second = await router.generate(GenerateRequest(prompt="b", workload="code"))
    third = await router.generate(GenerateRequest(prompt="c", workload="creative"))
    assert first.cost_micros == 1000 + 6000
    assert second.cost_micros == 1000 + 1000  # $0.002 per 1k tokens, both directions
    assert third.cost_micros == 0
    await router.aclose()
    with catalog.reading() as conn:
        costs = conn.exec_driver_sql(
            "SELECT model, input_cost_micros, output_cost_micros, total_cost_micros "
            "FROM provider_usage ORDER BY id"
        ).all()
    assert [tuple(c) for c in costs] == [
        ("priced", 1000, 6000, 7000),
        ("meta-priced", 1000, 1000, 2000),
        ("x:free", 0, 0, 0),
    ]
    [stats] = catalog.model_stats(provider="groq", workload=Workload.CHAT)
    assert stats.cost_per_success_micros == 7000


@pytest.mark.anyio
async def test_cost_per_success_breaks_ties_between_equal_priorities(
    router: Router, catalog: Catalog
) -> None:
    for model in ("dear", "cheap"):
        catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model=model, priority=5))
    for model, cost in (("dear", 900), ("cheap", 100)):
        catalog.log_usage(
            CallUsage(provider="groq", workload="chat", model=model, success=True,
                      latency_ms=10, total_cost_micros=cost)
        )  # fmt: skip
    order = [c.model for c in router.explain(GenerateRequest(prompt="x")).candidates]
    assert order == ["cheap", "dear"]


@pytest.mark.anyio
async def test_a_trial_takes_about_its_share_and_the_same_key_lands_on_the_same_arm(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="incumbent", priority=1))
    catalog.start_trial(provider="groq", workload="chat", model="challenger", percent=25)
    fake.script("incumbent", Reply("i"))
    fake.script("challenger", Reply("c"))
    arms = [
        router.explain(GenerateRequest(prompt="x", request_key=f"req-{i}")).candidates[0].arm
        for i in range(400)
    ]
    share = arms.count("trial") / len(arms)
    assert 0.18 < share < 0.32
    again = router.explain(GenerateRequest(prompt="x", request_key="req-7")).candidates[0].arm
    assert again == arms[7]
    for i in range(40):
        await router.generate(GenerateRequest(prompt="x", request_key=f"req-{i}"))
    await router.aclose()
    stats = {s.arm: s for s in catalog.model_stats(provider="groq", workload=Workload.CHAT)}
    assert set(stats) == {"trial", "incumbent"}
    assert stats["trial"].model == "challenger" and stats["incumbent"].model == "incumbent"
    assert stats["trial"].calls + stats["incumbent"].calls == 40
    kinds = [h.kind for h in catalog.history(model="challenger")]
    assert kinds == ["SuggestionProposed", "TrialStarted"]


@pytest.mark.anyio
async def test_ending_a_trial_adopts_or_rejects(catalog: Catalog) -> None:
    catalog.start_trial(provider="groq", workload="chat", model="won", percent=10)
    catalog.start_trial(provider="groq", workload="chat", model="lost", percent=10)
    outcome = catalog.end_trial(
        provider="groq", workload="chat", model="won", adopt=True, priority=3
    )
    assert outcome is not None and outcome.priority == 3
    catalog.end_trial(provider="groq", workload="chat", model="lost", adopt=False, reason="slow")
    statuses = {s.model: s.status for s in catalog.list_suggestions(provider="groq")}
    assert statuses == {"won": "adopted", "lost": "rejected"}
    assert "won" in [r.model for r in catalog.list_models(provider="groq")]
    ended = [h for h in catalog.history(model="lost") if h.kind == "TrialEnded"]
    assert ended[0].details["outcome"] == "rejected"


@pytest.mark.anyio
async def test_smoke_passes_and_fails_per_model_with_reasons(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    for model in ("good", "chatty", "broken"):
        catalog.adopt_model(AdoptModel(provider="groq", workload="classification", model=model))
    fake.script("good", Reply("negative"))
    fake.script("chatty", Reply("It could be positive or negative, hard to say."))
    fake.script("broken", ServerError())
    results = await run_smoke(router, provider="groq", workload=Workload.CLASSIFICATION)
    verdicts = {r.model: (r.passed, r.reason) for r in results}
    assert verdicts["good"] == (True, None)
    assert verdicts["chatty"][0] is False and "several labels" in (verdicts["chatty"][1] or "")
    assert verdicts["broken"][0] is False and "500" in (verdicts["broken"][1] or "")
    await router.aclose()
    assert catalog.usage_stats("groq", Workload.CLASSIFICATION).calls == 3


@pytest.mark.parametrize(
    ("workload", "good", "bad"),
    [
        (Workload.CODE, "```python\ndef add(a, b):\n    return a + b\n```", "a + b"),
        (Workload.SUMMARIZATION, "The council approved bike lanes.", "x" * 5000),
        (
            Workload.EXTRACTION,
            '{"name": "Ada Moreno", "city": "Lisbon", "year": 1998}',
            '{"name": 1}',
        ),
        (
            Workload.CREATIVE,
            "A light that turns\nabove the sea\nat night it burns\nfor you and me",
            "Hi",
        ),
        (Workload.CHAT, "Hello there!", "   "),
    ],
)
def test_smoke_checks_are_structural(workload: Workload, good: str, bad: str) -> None:
    check = smoke_case(workload).check
    assert check(good) is None
    assert check(bad) is not None
