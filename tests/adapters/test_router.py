"""The router over real HTTP against fake providers on 127.0.0.1: selection, fallback, usage
rows for every attempt, health with backoff and Retry-After, and no key leaking anywhere."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config, ProviderSettings
from freegin_ai.adapters.follower import LogFollower
from freegin_ai.adapters.http_client import AiohttpClient
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    GenerateRequest,
    NoCandidateError,
    Router,
)
from freegin_ai.adapters.usage_log import UsageLog
from freegin_ai.domain.usage import CallUsage
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import list_health
from tests.conftest import FakeClock
from tests.fakes.catalogs import catalog_with, chat_roster
from tests.fakes.provider_server import (
    Drip,
    FakeProviderServer,
    Malformed,
    RateLimited,
    Reply,
    ServerError,
    Stall,
    Unauthorized,
    refused_url,
)
from tests.fakes.recorded import recorded

KEY = "sk-router-SECRET-0a1b2c3d4e5f"
GEMINI_KEY = "AIza-router-SECRET-998877"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(max_stall_seconds=2.0) as server:
        yield server


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    roster = chat_roster(
        ("groq", "g-fast", 10), ("groq", "g-slow", 30), ("google", "gem-1", 20),
        ("anthropic", "claude-x", 40),
    )  # fmt: skip
    with catalog_with(database_url, clock, roster) as c:
        yield c


def env_for(fake: FakeProviderServer) -> dict[str, str]:
    return {
        "FREEGIN_GROQ_BASE_URL": fake.openai_url,
        "GROQ_API_KEY": KEY,
        "FREEGIN_GOOGLE_BASE_URL": fake.gemini_url,
        "GEMINI_API_KEY": GEMINI_KEY,
        "FREEGIN_ANTHROPIC_BASE_URL": fake.anthropic_url,
        "ANTHROPIC_API_KEY": KEY,
    }


@pytest.fixture
async def router(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> AsyncIterator[Router]:
    providers = ProviderSet(Config(), env_for(fake), {})
    r = Router(catalog, providers, timeout=0.5, clock=clock)
    yield r
    await r.aclose()


def usage_rows(catalog: Catalog) -> list[tuple[str, str | None, int, str | None]]:
    with catalog.reading() as conn:
        rows = conn.exec_driver_sql(
            "SELECT provider, model, success, error_message FROM provider_usage ORDER BY id"
        ).all()
    return [tuple(r) for r in rows]


@pytest.mark.anyio
async def test_catalog_mode_ranks_across_providers_by_priority(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script("g-fast", Reply("hello", prompt_tokens=4, completion_tokens=6))
    decision = router.explain(GenerateRequest(prompt="hi"))
    assert decision.mode == "catalog"
    assert [(c.provider, c.model) for c in decision.candidates] == [
        ("groq", "g-fast"),
        ("google", "gem-1"),
        ("groq", "g-slow"),
        ("anthropic", "claude-x"),
    ]
    result = await router.generate(GenerateRequest(prompt="hi"))
    assert (result.text, result.provider, result.model) == ("hello", "groq", "g-fast")
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (4, 6, 10)


@pytest.mark.anyio
async def test_failed_attempts_fall_back_in_order_and_every_attempt_is_logged(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", ServerError())
    fake.script("gem-1", RateLimited(retry_after="120"))
    fake.script("g-slow", Malformed())
    fake.script("claude-x", Reply("finally"))
    result = await router.generate(GenerateRequest(prompt="hi", workload="Chat"))
    assert result.model == "claude-x"
    assert [(a.model, a.success, a.error_kind) for a in result.attempts] == [
        ("g-fast", False, "server"),
        ("gem-1", False, "rate_limited"),
        ("g-slow", False, "malformed"),
        ("claude-x", True, None),
    ]
    await router.aclose()
    rows = usage_rows(catalog)
    assert [(p, m, ok) for p, m, ok, _ in rows] == [
        ("groq", "g-fast", 0),
        ("google", "gem-1", 0),
        ("groq", "g-slow", 0),
        ("anthropic", "claude-x", 1),
    ]
    assert all(error for _, _, ok, error in rows if not ok)
    stats = catalog.model_stats(provider="anthropic", workload=Workload.CHAT)
    assert [(s.model, s.calls, s.successes) for s in stats] == [("claude-x", 1, 1)]


@pytest.mark.anyio
async def test_a_stalled_reply_times_out_and_a_refused_connection_moves_on(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    env = env_for(fake) | {"FREEGIN_GOOGLE_BASE_URL": refused_url() + "/v1beta"}
    router = Router(catalog, ProviderSet(Config(), env, {}), timeout=0.3, clock=clock)
    fake.script("g-fast", Stall(seconds=2.0))
    fake.script("g-slow", Reply("ok"))
    try:
        result = await router.generate(GenerateRequest(prompt="hi"))
    finally:
        await router.aclose()
    assert [(a.model, a.error_kind) for a in result.attempts] == [
        ("g-fast", "timeout"),
        ("gem-1", "connection"),
        ("g-slow", None),
    ]


@pytest.mark.anyio
async def test_a_pinned_provider_is_a_hard_choice_unless_fallback(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script("g-fast", ServerError())
    fake.script("g-slow", ServerError())
    fake.script("gem-1", Reply("from gemini"))
    with pytest.raises(AllAttemptsFailedError) as failed:
        await router.generate(GenerateRequest(prompt="hi", provider="groq"))
    assert {a.provider for a in failed.value.attempts} == {"groq"}
    # Both groq models are cooling now; fallback reaches the other providers.
    result = await router.generate(GenerateRequest(prompt="hi", provider="groq", fallback=True))
    assert result.provider == "google"


@pytest.mark.anyio
async def test_an_explicit_model_goes_only_to_providers_whose_catalog_serves_it(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script("gem-1", Reply("gem"))
    decision = router.explain(GenerateRequest(prompt="x", model="gem-1"))
    assert [(c.provider, c.model) for c in decision.candidates] == [("google", "gem-1")]
    with pytest.raises(NoCandidateError, match=r"no provider in the catalog or config\.toml"):
        router.explain(GenerateRequest(prompt="x", model="unknown/model"))
    # config.toml can say a provider serves a model the catalog does not list.
    configured = Router(
        router.catalog,
        ProviderSet(
            Config(providers={"anthropic": ProviderSettings(models=("unknown/model",))}),
            env_for(fake),
            {},
        ),
    )
    decision = configured.explain(GenerateRequest(prompt="x", model="unknown/model"))
    assert [(c.provider, c.model) for c in decision.candidates] == [("anthropic", "unknown/model")]
    await configured.aclose()
    # With a pinned provider the model is used as given, catalog or not.
    fake.script("brand-new", Reply("new"))
    result = await router.generate(GenerateRequest(prompt="x", model="brand-new", provider="groq"))
    assert (result.provider, result.model, result.text) == ("groq", "brand-new", "new")


@pytest.mark.anyio
async def test_cooldown_honours_retry_after_grows_and_a_success_resets(
    router: Router, fake: FakeProviderServer, catalog: Catalog, clock: FakeClock
) -> None:
    fake.script("g-fast", RateLimited(retry_after="120"), ServerError(), Reply("back"))
    with pytest.raises(AllAttemptsFailedError):
        await router.generate(GenerateRequest(prompt="hi", provider="groq", model="g-fast"))
    with catalog.reading() as conn:
        [health] = [h for h in list_health(conn) if h.model == "g-fast"]
    assert health.consecutive_failures == 1
    assert health.last_error_kind == "rate_limited"
    skipped = {s.model: s.reason for s in router.explain(GenerateRequest(prompt="x")).skipped}
    assert "cooling down" in skipped["g-fast"]

    clock.now = clock.now.replace(hour=clock.now.hour + 1)  # past the 120 s cooldown
    with pytest.raises(AllAttemptsFailedError):
        await router.generate(GenerateRequest(prompt="x", provider="groq", model="g-fast"))
    with catalog.reading() as conn:
        [health] = [h for h in list_health(conn) if h.model == "g-fast"]
    assert health.consecutive_failures == 2
    assert health.cooldown_until is not None

    result = await router.generate(GenerateRequest(prompt="x", provider="groq", model="g-fast"))
    assert result.text == "back"
    with catalog.reading() as conn:
        [health] = [h for h in list_health(conn) if h.model == "g-fast"]
    assert (health.consecutive_failures, health.cooldown_until) == (0, None)


@pytest.mark.anyio
async def test_an_auth_failure_sidelines_the_provider_for_every_process(
    router: Router, fake: FakeProviderServer, database_url: str, clock: FakeClock
) -> None:
    fake.script("gem-1", Unauthorized())
    fake.script("g-fast", Reply("ok"))
    await router.generate(GenerateRequest(prompt="x", provider="google", fallback=True))
    await router.aclose()
    # Health is a projection of the log: a new process sees the sideline.
    other = Catalog.open(database_url, clock=clock, seed=False)
    try:
        fresh = Router(other, ProviderSet(Config(), env_for(fake), {}), clock=clock)
        skipped = {s.provider: s.reason for s in fresh.explain(GenerateRequest(prompt="x")).skipped}
        await fresh.aclose()
    finally:
        other.close()
    assert "provider sidelined" in skipped["google"] and "auth" in skipped["google"]


@pytest.mark.anyio
async def test_no_key_reaches_the_database_logs_or_errors(
    router: Router,
    fake: FakeProviderServer,
    catalog: Catalog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script("g-fast", Unauthorized())
    fake.script("gem-1", ServerError(message=f"upstream said {GEMINI_KEY} is bad"))
    fake.script("g-slow", RateLimited())
    fake.script("claude-x", Reply("fine"))
    result = await router.generate(GenerateRequest(prompt="hi"))
    await router.aclose()
    texts = [a.error or "" for a in result.attempts] + [caplog.text, repr(result)]
    with catalog.reading() as conn:
        for table in ("freegin_events", "provider_usage", "model_health", "provider_models"):
            texts.extend(str(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    blob = "\n".join(texts)
    assert KEY not in blob and GEMINI_KEY not in blob
    # The keys did travel in headers, not in URLs.
    requests = fake.requests
    assert any(r.headers.get("x-goog-api-key") == GEMINI_KEY for r in requests)
    assert all(GEMINI_KEY not in r.raw_url for r in requests)


def test_the_sync_convenience_answers(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    fake.script("g-fast", Reply("sync answer"))
    router = Router(catalog, ProviderSet(Config(), env_for(fake), {}), clock=clock)
    try:
        result = router.generate_sync(GenerateRequest(prompt="hi"))
        assert result.text == "sync answer"
        # Committed before the answer came back: no flush, no close needed to see it.
        assert usage_rows(catalog)[-1][:3] == ("groq", "g-fast", 1)
        assert isinstance(router.client, AiohttpClient)  # the default transport (ADR 0019)
    finally:
        # Before the test's database goes: the catch-up thread must not outlive it.
        anyio.run(router.aclose)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("provider", "model", "reasoning_reported"),
    [("groq", "g-fast", True), ("google", "gem-1", True), ("anthropic", "claude-x", False)],
)
async def test_cached_and_reasoning_tokens_are_counted_in_usage_and_stats(
    router: Router,
    fake: FakeProviderServer,
    catalog: Catalog,
    provider: str,
    model: str,
    reasoning_reported: bool,
) -> None:
    fake.script(model, Reply("ok", prompt_tokens=100, completion_tokens=20,
                             cached_tokens=60, reasoning_tokens=30))  # fmt: skip
    result = await router.generate(GenerateRequest(prompt="x", provider=provider, model=model))
    # Reasoning is billed as output: it is part of the completion count on every wire format.
    assert (result.prompt_tokens, result.completion_tokens) == (100, 50)
    assert result.cached_tokens == 60
    assert result.reasoning_tokens == (30 if reasoning_reported else None)
    await router.aclose()
    [stats] = catalog.model_stats(provider=provider, model=model)
    assert (stats.cached_tokens, stats.reasoning_tokens) == (60, 30 if reasoning_reported else 0)


@pytest.mark.anyio
async def test_a_safety_blocked_answer_falls_back_logs_its_tokens_and_cools_nothing(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    # gem-1 answers with Gemini's real SAFETY block (recorded), then the next candidate answers.
    fake.script("g-fast", ServerError())
    fake.script("gem-1", recorded("gemini_safety_blocked").behaviour())
    fake.script("g-slow", Reply("fine"))
    result = await router.generate(GenerateRequest(prompt="hi"))
    assert result.model == "g-slow"
    assert [(a.model, a.error_kind) for a in result.attempts[:2]] == [
        ("g-fast", "server"),
        ("gem-1", "filtered"),
    ]
    with catalog.reading() as conn:
        row = conn.exec_driver_sql(
            "SELECT prompt_tokens, completion_tokens, total_tokens FROM provider_usage "
            "WHERE model = 'gem-1'"
        ).one()
        health = {(h.provider, h.model): h for h in list_health(conn)}
    # The blocked reply still cost its prompt: 14 tokens, 0 output (absent counts are 0).
    assert tuple(row) == (14, 0, 14)
    # A filter answers this prompt, not the model's health: gem-1 is not cooling down,
    # while the 5xx model is.
    assert ("google", "gem-1") not in health or health[("google", "gem-1")].cooldown_until is None
    assert health[("groq", "g-fast")].cooldown_until is not None


@pytest.mark.anyio
async def test_a_dry_run_router_answers_and_logs_nothing(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    # Given a router wired for a dry run (not a router whose log was swapped).
    fake.script("g-fast", Reply("dry answer"))
    before = catalog.store.last_position()
    providers = ProviderSet(Config(), env_for(fake), {})
    async with Router(catalog, providers, timeout=0.5, clock=clock, dry_run=True) as router:
        # When it answers, and a twin with its own client answers too,
        result = await router.generate(GenerateRequest(prompt="hi"))
        async with httpx.AsyncClient() as client:
            twin = router.rewired(client=client, dry_run=True)
            await twin.generate(GenerateRequest(prompt="hi"))
        assert twin.client is client and router.client is not client
    # then the answers came, and nothing was appended.
    assert result.text == "dry answer"
    assert catalog.store.last_position() == before


class _Watched(UsageLog):
    """A usage log that notes whether each event came from a call that was alone."""

    def __init__(self, catalog: Catalog, clock: FakeClock) -> None:
        super().__init__(catalog.store, clock)
        self.alone: list[tuple[str | None, bool]] = []

    async def log(self, usage: CallUsage, *, alone: bool = False) -> None:
        self.alone.append((usage.model, alone))
        await super().log(usage, alone=alone)


@pytest.mark.anyio
async def test_only_a_call_with_no_other_under_way_commits_alone(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    fake.script("g-fast", Reply("quick"))
    fake.script("g-slow", Drip(interval=0.003, then=Reply("slow")))
    usage = _Watched(catalog, clock)
    router = Router(catalog, ProviderSet(Config(), env_for(fake), {}), usage=usage, clock=clock)
    try:
        await router.generate(GenerateRequest(prompt="hi", provider="groq", model="g-fast"))
        async with anyio.create_task_group() as group:
            group.start_soon(
                router.generate, GenerateRequest(prompt="a", provider="groq", model="g-slow")
            )
            await anyio.sleep(0.05)  # the slow call is under way
            await router.generate(GenerateRequest(prompt="b", provider="groq", model="g-fast"))
        async with router.stream(GenerateRequest(prompt="c", provider="groq", model="g-fast")) as s:
            async for _ in s:
                pass
        # The first alone; the quick one while the slow one ran not; then the slow one and
        # the stream alone again (a finished call no longer counts).
        assert usage.alone == [
            ("g-fast", True), ("g-fast", False), ("g-slow", True), ("g-fast", True),
        ]  # fmt: skip
    finally:
        await router.aclose()
        usage.close()


def old_and_new(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock, **options: Any
) -> Router:
    """A router over `catalog` (with g-old adopted), g-old and g-new answering at the fake."""
    fake.script("g-old", Reply("from the old one"))
    fake.script("g-new", Reply("from the new one"))
    return Router(catalog, ProviderSet(Config(), env_for(fake), {}), clock=clock, **options)


def another_process_adopts_g_new(url: str, clock: FakeClock) -> None:
    """Another process adopts g-new ahead of g-old; its command leaves the read tables current."""
    with catalog_with(url, clock, chat_roster(("groq", "g-new", 1))):
        pass


@pytest.mark.anyio
async def test_the_router_sees_another_writer_s_change_once_its_tables_have_it(
    database_url: str, fake: FakeProviderServer, clock: FakeClock
) -> None:
    with catalog_with(database_url, clock, chat_roster(("groq", "g-old", 10))) as mine:
        async with old_and_new(mine, fake, clock, refresh_seconds=0.0) as router:
            first = router.explain(GenerateRequest(prompt="p")).candidates
            assert [c.model for c in first] == ["g-old"]
            # This router reads the tables as they are (its own catalog did nothing).
            another_process_adopts_g_new(database_url, clock)
            result = await router.generate(GenerateRequest(prompt="p"))
            assert (result.model, result.text) == ("g-new", "from the new one")


@pytest.mark.anyio
async def test_a_watching_router_sees_another_process_s_change_on_its_next_request(
    sqlite_url: str, fake: FakeProviderServer, clock: FakeClock
) -> None:
    with catalog_with(sqlite_url, clock, chat_roster(("groq", "g-old", 10))) as mine:
        async with old_and_new(mine, fake, clock, refresh_seconds=3600.0, watch_tables=True) as r:
            assert (await r.generate(GenerateRequest(prompt="p"))).model == "g-old"
            # The gateway's router: no interval to wait, the next request routes anew.
            another_process_adopts_g_new(sqlite_url, clock)
            assert (await r.generate(GenerateRequest(prompt="p"))).model == "g-new"


@pytest.mark.anyio
async def test_a_router_told_of_catalog_appends_applies_them_on_its_next_request(
    postgres_url: str, fake: FakeProviderServer, clock: FakeClock
) -> None:
    with catalog_with(postgres_url, clock, chat_roster(("groq", "g-old", 10))) as mine:
        follower = LogFollower(mine.store, mine.projector.catch_up).start()
        notices = lambda: follower.catalog_notices  # noqa: E731
        router = old_and_new(mine, fake, clock, refresh_seconds=3600.0, catalog_notices=notices)
        try:  # the router and the follower are both closed, whatever fails
            while follower.rounds == 0:  # listening (it catches up once a poll went by)
                await anyio.sleep(0.02)
            usage_only = follower.catalog_notices
            assert (await router.generate(GenerateRequest(prompt="p"))).model == "g-old"
            await anyio.sleep(0.2)  # the usage commit's NOTIFY is heard, and not counted
            assert follower.catalog_notices == usage_only
            # The follower hears the append as it commits; the next request routes anew.
            another_process_adopts_g_new(postgres_url, clock)
            for _ in range(100):
                if follower.catalog_notices > usage_only:
                    break
                await anyio.sleep(0.01)
            assert (await router.generate(GenerateRequest(prompt="p"))).model == "g-new"
        finally:
            await router.aclose()
            follower.close()
