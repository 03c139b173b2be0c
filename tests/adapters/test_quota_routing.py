"""Routing by quota over real HTTP against fake providers, time driven by a still clock:
limits from config.toml, from each provider's headers and 429 bodies, minute and day
rollovers (UTC, and Pacific midnight for Gemini), the shared OpenRouter :free bucket, and
waiting for a candidate to come back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    GenerateRequest,
    NoCandidateError,
    Router,
)
from freegin_ai.domain.commands import AdoptModel, RetireModel
from freegin_ai.domain.quota import QuotaLimits
from tests.fakes.catalogs import catalog_with, chat_roster
from tests.fakes.provider_server import (
    FakeProviderServer,
    PaymentRequired,
    Reply,
    Status,
    gemini_quota_body,
    groq_headers,
    openrouter_headers,
)

KEY = "sk-quota-SECRET-5566"


class StillClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).replace(tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> StillClock:
    return StillClock(datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC))


@pytest.fixture
def catalog(database_url: str, clock: StillClock) -> Iterator[Catalog]:
    roster = chat_roster(
        ("groq", "g-fast", 10), ("google", "gem-1", 20), ("openrouter", "a/one:free", 30),
        ("openrouter", "b/two:free", 40), ("groq", "g-slow", 50),
    )  # fmt: skip
    with catalog_with(database_url, clock, roster) as c:
        yield c


def env_for(fake: FakeProviderServer) -> dict[str, str]:
    return {
        "FREEGIN_GROQ_BASE_URL": fake.openai_url,
        "GROQ_API_KEY": KEY,
        "FREEGIN_GOOGLE_BASE_URL": fake.gemini_url,
        "GEMINI_API_KEY": KEY,
        "FREEGIN_OPENROUTER_BASE_URL": fake.openai_url,
        "OPENROUTER_API_KEY": KEY,
    }


def make_router(
    catalog: Catalog, fake: FakeProviderServer, clock: StillClock, config: Config | None = None
) -> Router:
    providers = ProviderSet(config or Config(), env_for(fake), {})
    return Router(catalog, providers, timeout=2.0, clock=clock, sleep=clock.sleep)


@pytest.fixture
async def router(
    catalog: Catalog, fake: FakeProviderServer, clock: StillClock
) -> AsyncIterator[Router]:
    r = make_router(catalog, fake, clock)
    yield r
    await r.aclose()


def skipped(router: Router, request: GenerateRequest | None = None) -> dict[str, str]:
    decision = router.explain(request or GenerateRequest(prompt="hi"))
    return {s.model: s.reason for s in decision.skipped}


def calls(fake: FakeProviderServer, model: str) -> int:
    return sum(
        1 for r in fake.requests if isinstance(r.body, dict) and r.body.get("model") == model
    )


async def groq_answers_once(router: Router, fake: FakeProviderServer, requests_left: int) -> None:
    """g-fast answers one request, with Groq's headers saying `requests_left` remain today."""
    headers = groq_headers(
        requests_limit=1000, requests_left=requests_left, tokens_limit=6000, tokens_left=5000
    )
    fake.script("g-fast", Reply("last one", headers=headers))
    assert (await router.generate(GenerateRequest(prompt="hi"))).model == "g-fast"


@pytest.mark.anyio
async def test_a_configured_minute_limit_sends_the_overflow_to_the_next_candidate(
    catalog: Catalog, fake: FakeProviderServer, clock: StillClock
) -> None:
    # config.toml: g-fast takes 2 requests a minute.
    config = Config(quotas={"groq/g-fast": QuotaLimits(requests_per_minute=2, source="config")})
    router = make_router(catalog, fake, clock, config)
    fake.script("g-fast", Reply("fast"))
    fake.script("gem-1", Reply("gem"))
    try:
        models = [(await router.generate(GenerateRequest(prompt="hi"))).model for _ in range(3)]
        assert models == ["g-fast", "g-fast", "gem-1"]
        # g-fast was never sent a third request in that minute.
        assert calls(fake, "g-fast") == 2
        third = await router.generate(GenerateRequest(prompt="hi"))
        reasons = {s.model: s.reason for s in third.decision.skipped}
        assert "minute requests spent" in reasons["g-fast"]
        assert "back at 12:01:00 UTC" in reasons["g-fast"]
        # The next minute, g-fast is back.
        clock.set("2026-11-24T12:01:00")
        assert (await router.generate(GenerateRequest(prompt="hi"))).model == "g-fast"
    finally:
        await router.aclose()


@pytest.mark.anyio
async def test_groq_headers_saying_the_day_is_spent_skip_it_until_their_reset(
    router: Router, fake: FakeProviderServer, clock: StillClock
) -> None:
    fake.script("gem-1", Reply("gem"))
    await groq_answers_once(router, fake, requests_left=0)
    # Groq's reset-requests said 2m59.56s: skipped before anything is sent until then.
    reason = skipped(router)["g-fast"]
    assert reason.startswith("quota: daily requests spent, back at 12:03:09")
    assert (await router.generate(GenerateRequest(prompt="hi"))).model == "gem-1"
    assert calls(fake, "g-fast") == 1
    clock.set("2026-11-24T12:03:10")
    assert "g-fast" not in skipped(router)


@pytest.mark.anyio
async def test_a_decision_is_reused_only_until_a_skipped_candidate_is_due_back(
    router: Router, fake: FakeProviderServer, clock: StillClock
) -> None:
    await groq_answers_once(router, fake, requests_left=0)
    first = router.explain(GenerateRequest(prompt="hi"))
    assert "g-fast" in {s.model for s in first.skipped}
    # Nothing changed: the same decision, not a new one.
    assert router.explain(GenerateRequest(prompt="hi")) is first
    # A request that needs more (a longer prompt) is decided for itself.
    assert router.explain(GenerateRequest(prompt="hi " * 400)) is not first
    clock.set("2026-11-24T12:03:08")
    assert router.explain(GenerateRequest(prompt="hi")) is first
    clock.set("2026-11-24T12:03:10")  # g-fast is due back: decided anew, with it
    again = router.explain(GenerateRequest(prompt="hi"))
    assert again is not first
    assert again.candidates[0].model == "g-fast"


@pytest.mark.anyio
async def test_gemini_daily_quota_failure_cools_it_until_pacific_midnight(
    router: Router, fake: FakeProviderServer, clock: StillClock, catalog: Catalog
) -> None:
    body = gemini_quota_body(["GenerateRequestsPerDayPerProjectPerModel-FreeTier"], None, "gem-1")
    fake.script("g-fast", Status(500))
    fake.script("gem-1", Status(429, raw=body))
    fake.script("a/one:free", Reply("or"))
    result = await router.generate(GenerateRequest(prompt="hi"))
    assert result.model == "a/one:free"
    # Winter: midnight in California is 08:00 UTC the next day.
    assert skipped(router)["gem-1"].startswith("quota: daily requests spent, back at 08:00 UTC")
    clock.set("2026-11-25T07:59:59")
    assert "daily requests spent" in skipped(router)["gem-1"]
    clock.set("2026-11-25T08:00:01")
    assert "gem-1" not in skipped(router)


@pytest.mark.anyio
async def test_openrouter_free_models_share_the_account_day_until_utc_midnight(
    router: Router, fake: FakeProviderServer, clock: StillClock
) -> None:
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    headers = openrouter_headers(limit=50, left=0, reset_epoch_ms=int(midnight.timestamp() * 1000))
    fake.script("g-fast", Status(500))
    fake.script("gem-1", Status(500))
    fake.script(
        "a/one:free",
        Status(429, message="Rate limit exceeded: free-models-per-day", headers=headers),
    )
    fake.script("b/two:free", Reply("never"))
    fake.script("g-slow", Reply("slow"))
    assert (await router.generate(GenerateRequest(prompt="hi"))).model == "g-slow"
    # The other :free model was not even tried: the account's free day is spent.
    assert calls(fake, "b/two:free") == 0
    reasons = skipped(router)
    assert reasons["b/two:free"] == "quota: daily requests spent, back at 00:00 UTC"
    clock.set("2026-11-25T00:00:01")
    assert "b/two:free" not in skipped(router)


@pytest.fixture
async def spent_groq(
    catalog: Catalog, fake: FakeProviderServer, clock: StillClock
) -> AsyncIterator[Router]:
    """A router whose two groq models (one request a minute each) were both used this minute,
    50 s before the minute ends."""
    one = QuotaLimits(requests_per_minute=1, source="config")
    config = Config(quotas={"groq/g-fast": one, "groq/g-slow": one})
    router = make_router(catalog, fake, clock, config)
    fake.script("g-fast", Reply("fast"))
    fake.script("g-slow", Reply("slow"))
    pinned = GenerateRequest(prompt="hi", provider="groq")
    try:
        assert (await router.generate(pinned)).model == "g-fast"
        assert (await router.generate(pinned)).model == "g-slow"
        yield router
    finally:
        await router.aclose()


def pinned_to_groq(wait: float | None = None) -> GenerateRequest:
    return GenerateRequest(prompt="hi", provider="groq", wait=wait)


@pytest.mark.anyio
async def test_a_request_may_wait_for_the_first_candidate_back_within_its_bound(
    spent_groq: Router, clock: StillClock
) -> None:
    with pytest.raises(NoCandidateError, match="minute requests spent"):
        await spent_groq.generate(pinned_to_groq())
    # 50 s left in the minute: a 10 s wait is not enough, a 60 s wait is.
    with pytest.raises(NoCandidateError):
        await spent_groq.generate(pinned_to_groq(wait=10))
    assert clock.now == datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
    waited = await spent_groq.generate(pinned_to_groq(wait=60))
    assert waited.model == "g-fast"
    assert clock.now >= datetime(2026, 11, 24, 12, 1, 0, tzinfo=UTC)


@pytest.mark.anyio
async def test_a_stream_may_wait_for_the_first_candidate_back_within_its_bound(
    spent_groq: Router, clock: StillClock, fake: FakeProviderServer
) -> None:
    with pytest.raises(NoCandidateError, match="minute requests spent"):
        await anext(spent_groq.stream(pinned_to_groq()))
    # Too short a wait fails without sleeping.
    with pytest.raises(NoCandidateError):
        await anext(spent_groq.stream(pinned_to_groq(wait=10)))
    assert clock.now == datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
    stream = spent_groq.stream(pinned_to_groq(wait=60))
    items = [item async for item in stream]
    assert stream.result is not None and stream.result.text == "fast"
    assert items[-1] is stream.result
    assert stream.decision.candidates[0].model == "g-fast"
    assert clock.now >= datetime(2026, 11, 24, 12, 1, 0, tzinfo=UTC)
    assert calls(fake, "g-fast") == 2


@pytest.mark.anyio
async def test_usage_events_carry_normalized_facts_never_raw_headers(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    await groq_answers_once(router, fake, requests_left=7)
    await router.aclose()
    with catalog.reading() as conn:
        states = [bytes(r[0]) for r in conn.exec_driver_sql(
            "SELECT state FROM freegin_events ORDER BY id DESC LIMIT 1")]  # fmt: skip
    assert b'"rate_limits":[{"measure":"requests","window":"day","limit":1000' in states[0]
    assert b"x-ratelimit" not in states[0] and KEY.encode() not in states[0]


@pytest.mark.anyio
async def test_out_of_credit_sidelines_the_provider_until_cleared_or_a_success(
    router: Router, fake: FakeProviderServer, clock: StillClock, catalog: Catalog
) -> None:
    fake.script("g-fast", PaymentRequired())
    fake.script("gem-1", Reply("gem"))
    assert (await router.generate(GenerateRequest(prompt="hi"))).model == "gem-1"
    reasons = skipped(router)
    assert reasons["g-fast"].startswith("provider sidelined: out of credit (402)")
    assert reasons["g-slow"] == reasons["g-fast"]  # the whole provider
    # Not a backoff: still sidelined a day later.
    clock.set("2026-11-25T12:00:00")
    assert "out of credit" in skipped(router)["g-slow"]
    # The person tops up and clears it.
    catalog.clear_provider("groq", reason="topped up")
    assert "g-fast" not in skipped(router) and "g-slow" not in skipped(router)
    # Sidelined again, then an explicit call that succeeds clears it too.
    fake.script("g-fast", PaymentRequired(), Reply("back"))
    await router.generate(GenerateRequest(prompt="hi"))
    assert "g-slow" in skipped(router)
    explicit = GenerateRequest(prompt="hi", provider="groq", model="g-fast")
    assert (await router.generate(explicit)).text == "back"
    await router.aclose()
    assert "g-slow" not in skipped(router)


@pytest.mark.anyio
async def test_gone_stops_routing_to_the_model_and_proposes_its_retirement_once(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    catalog.adopt_model(AdoptModel(provider="groq", workload="code", model="g-fast"))
    fake.script("g-fast", Status(410, message="This model has been retired"))
    fake.script("gem-1", Reply("gem"))
    assert (await router.generate(GenerateRequest(prompt="hi"))).model == "gem-1"
    reason = skipped(router)["g-fast"]
    assert reason.startswith("gone (410): retirement proposed")
    assert "g-slow" not in skipped(router)  # only the model, not the provider
    # Asked for explicitly it answers 410 again, but the proposal is not repeated.
    with pytest.raises(AllAttemptsFailedError):
        await router.generate(GenerateRequest(prompt="hi", provider="groq", model="g-fast"))
    # The same proposal event as a delisting (ADR 0016), on every workload's entry.
    proposals = [h for h in catalog.history() if h.kind == "RetirementProposed"]
    assert [(h.provider, h.workload, h.model) for h in proposals] == [
        ("groq", "chat", "g-fast"),
        ("groq", "code", "g-fast"),
    ]
    assert {(h.details["cause"], h.details["source"]) for h in proposals} == {("gone", "router")}
    assert "410" in proposals[0].details["reason"] and KEY not in proposals[0].details["reason"]
    assert [(p.workload, p.model, p.cause) for p in catalog.retirement_proposals()] == [
        ("chat", "g-fast", "gone"),
        ("code", "g-fast", "gone"),
    ]
    # A person accepts for chat; the proposal for code still waits.
    catalog.retire_model(RetireModel(provider="groq", workload="chat", model="g-fast"))
    assert [p.workload for p in catalog.retirement_proposals(provider="groq")] == ["code"]
    catalog.clear_provider("groq", model="g-fast")
    assert "g-fast" not in skipped(router, GenerateRequest(prompt="hi", workload="code"))
