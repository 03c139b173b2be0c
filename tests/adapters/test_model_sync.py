"""sync-models over real HTTP against fake listings: what each listed model is, recorded as
events only when it changed; delisted active models flagged with a retirement proposal; the
router then skips what a model cannot take and prices calls from the listing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from eventsourcing.utils import get_topic

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.model_sync import fetch_listing, openai_style_info, sync_models
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import GenerateRequest, NoCandidateError, Router
from freegin_ai.domain.availability import Availability
from freegin_ai.domain.chat import FunctionDefinition, JsonObjectFormat, Tool
from freegin_ai.domain.model_info import ModelInfo
from freegin_ai.domain.topics import LISTING_SYNCED, MODEL_DELISTED, MODEL_LISTED
from freegin_ai.projections.listings import list_listings, list_syncs
from tests.conftest import FakeClock
from tests.fakes.catalogs import catalog_with
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.fakes.recorded import recorded

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"

# Entries shaped as OpenRouter's GET /api/v1/models documents them: prices in US dollars per
# token as strings, limits under top_provider, features under supported_parameters.
PAID = {
    "id": "qwen/qwen3-coder",
    "context_length": 262144,
    "pricing": {"prompt": "0.00000022", "completion": "0.00000095"},
    "top_provider": {"context_length": 262144, "max_completion_tokens": 65536},
    "supported_parameters": ["max_tokens", "temperature", "tools", "response_format"],
}
FREE = {
    "id": "openrouter/free",
    "context_length": 200000,
    "pricing": {"prompt": "0", "completion": "0"},
    "top_provider": {"context_length": 200000, "max_completion_tokens": 512},
    "supported_parameters": ["max_tokens", "temperature"],
}


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    roster = [
        ("openrouter", "code", m, None)
        for m in ("qwen/qwen3-coder", "openrouter/free", "retired/gone-model")
    ]
    with catalog_with(database_url, clock, roster) as c:
        yield c


@pytest.fixture
def providers(fake: FakeProviderServer) -> ProviderSet:
    env = {"FREEGIN_OPENROUTER_BASE_URL": fake.openai_url, "OPENROUTER_API_KEY": "sk-or-SECRET-1"}
    return ProviderSet(Config(), env, {})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


def count(catalog: Catalog, topic: str) -> int:
    return sum(1 for e in catalog.store.read(0, 10_000) if e.topic == topic)


def test_openrouter_entries_say_limits_features_prices_and_free() -> None:
    paid = openai_style_info(PAID)
    assert (paid.context_window, paid.max_output_tokens) == (262144, 65536)
    assert (paid.supports_tools, paid.supports_json, paid.free) == (True, True, False)
    # $0.00000022 per token = 220 micros per 1,000 tokens.
    assert (paid.input_per_1k_micros, paid.output_per_1k_micros) == (220.0, 950.0)
    free = openai_style_info(FREE)
    assert (free.free, free.supports_tools, free.max_output_tokens) == (True, False, 512)
    # A bare OpenAI-style entry says nothing, and nothing is assumed.
    assert openai_style_info({"id": "gpt-x", "object": "model"}) == ModelInfo()


@pytest.mark.anyio
async def test_sync_records_changes_only_and_proposes_retiring_what_is_gone(
    catalog: Catalog, providers: ProviderSet, fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    fake.listing = [PAID, FREE]
    # A dry run reads and compares, and writes nothing.
    before = catalog.store.last_position()
    dry = await sync_models(catalog, providers, client, only="openrouter", dry_run=True)
    [result] = dry.results
    assert result.new == ("openrouter/free", "qwen/qwen3-coder")
    assert result.unlisted_active == (("code", "retired/gone-model"),)
    assert result.proposed == ()
    assert catalog.store.last_position() == before

    # The first sync records both models, and proposes retiring the one it does not list.
    report = await sync_models(catalog, providers, client, only="openrouter")
    [result] = report.results
    assert (result.listed, result.new, result.error) == (
        2,
        ("openrouter/free", "qwen/qwen3-coder"),
        None,
    )
    assert result.proposed == (("code", "retired/gone-model"),)
    assert count(catalog, MODEL_LISTED) == 2
    history = [h for h in catalog.history() if h.kind == "RetirementProposed"]
    assert [h.model for h in history] == ["retired/gone-model"]
    assert history[0].details["reason"].startswith("openrouter no longer lists retired/gone-model")
    # The same proposal event as a 410's (ADR 0016), saying why; waiting for a person.
    assert (history[0].details["cause"], history[0].details["source"]) == (
        "delisted",
        "sync-models",
    )
    [pending] = catalog.retirement_proposals()
    assert (pending.provider, pending.workload, pending.model, pending.cause) == (
        "openrouter",
        "code",
        "retired/gone-model",
        "delisted",
    )
    # The roster is untouched until a person acts.
    assert "retired/gone-model" in {r.model for r in catalog.list_models(provider="openrouter")}

    # Syncing the same listing again records only the sync, and proposes nothing twice.
    again = await sync_models(catalog, providers, client, only="openrouter")
    assert (again.results[0].new, again.results[0].changed, again.results[0].proposed) == (
        (),
        (),
        (),
    )
    assert (count(catalog, MODEL_LISTED), count(catalog, LISTING_SYNCED)) == (2, 2)

    # The free pool rotates: a model leaves, a price changes.
    fake.listing = [dict(PAID, pricing={"prompt": "0.0000003", "completion": "0.000001"})]
    rotated = await sync_models(catalog, providers, client, only="openrouter")
    assert (rotated.results[0].changed, rotated.results[0].delisted) == (
        ("qwen/qwen3-coder",),
        ("openrouter/free",),
    )
    assert rotated.results[0].proposed == (("code", "openrouter/free"),)
    assert count(catalog, MODEL_DELISTED) == 1
    with catalog.reading() as conn:
        rows = {r.model: r for r in list_listings(conn, provider="openrouter")}
        [sync] = list_syncs(conn)
    assert rows["qwen/qwen3-coder"].info.input_per_1k_micros == 300.0
    assert not rows["openrouter/free"].listed and rows["openrouter/free"].delisted_at
    assert (sync.provider, sync.listed) == ("openrouter", 1)


@pytest.mark.anyio
async def test_a_listing_that_fails_or_is_empty_records_nothing(
    catalog: Catalog, providers: ProviderSet, fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    before = catalog.store.last_position()
    fake.listing = []
    report = await sync_models(catalog, providers, client, only="openrouter")
    assert report.failed and "listed no models" in (report.results[0].error or "")
    unknown = await sync_models(catalog, providers, client, only="groq")
    assert unknown.failed and "no API key" in (unknown.results[0].error or "")
    assert catalog.store.last_position() == before


@pytest.mark.anyio
async def test_the_router_skips_what_the_listing_says_a_model_cannot_take_and_prices_from_it(
    catalog: Catalog, providers: ProviderSet, fake: FakeProviderServer, clock: FakeClock
) -> None:
    fake.listing = [PAID, FREE]
    async with httpx.AsyncClient(timeout=5.0) as http:
        await sync_models(catalog, providers, http, only="openrouter")
    fake.script("qwen/qwen3-coder", Reply("ok", prompt_tokens=1000, completion_tokens=1000))
    router = Router(catalog, providers, timeout=2.0, clock=clock)
    try:
        request = GenerateRequest(prompt="x", workload="code", provider="openrouter",
                                  model=None, max_tokens=1000)  # fmt: skip
        decision = router.explain(request)
        skipped = {s.model: s.reason for s in decision.skipped}
        # openrouter/free lists an output limit of 512 tokens.
        assert "exceeds its output limit 512" in skipped["openrouter/free"]
        result = await router.generate(
            GenerateRequest(prompt="x", workload="code", provider="openrouter",
                            model="qwen/qwen3-coder")
        )  # fmt: skip
        # No [prices] in config: the listed 220 / 950 micros per 1,000 tokens are used.
        assert result.cost_micros == 220 + 950
    finally:
        await router.aclose()


@pytest.mark.anyio
async def test_hugging_face_task_models_are_looked_up_on_the_hub(
    fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    hub = json.loads((RECORDED / "hub_model_bart_large_mnli.json").read_text())["body"]
    fake.hub["facebook/bart-large-mnli"] = hub
    fake.listing = [
        {
            "id": "mistralai/Mistral-7B-Instruct-v0.2",
            "providers": [
                {"provider": "featherless-ai", "status": "live", "context_length": 32768,
                 "pricing": {"input": 0.1, "output": 0.2}, "supports_tools": False,
                 "supports_structured_output": True},
            ],
        }
    ]  # fmt: skip
    env = {"FREEGIN_HUGGINGFACE_BASE_URL": fake.openai_url, "HF_TOKEN": "hf_SECRET_1"}
    endpoint = ProviderSet(Config(), env, {}).endpoint("huggingface")
    listing = await fetch_listing(
        client, endpoint, hub_url=fake.url,
        roster_models=["facebook/bart-large-mnli", "mistralai/Mistral-7B-Instruct-v0.2",
                       "gone/model"],
    )  # fmt: skip
    chat = listing["mistralai/Mistral-7B-Instruct-v0.2"]
    assert (chat.context_window, chat.supports_tools, chat.supports_json) == (32768, False, True)
    assert (chat.input_per_1k_micros, chat.output_per_1k_micros) == (100.0, 200.0)
    assert listing["facebook/bart-large-mnli"].pipeline_tag == "zero-shot-classification"
    assert "gone/model" not in listing  # the Hub answered 404
    hub_calls = [r for r in fake.requests if r.path.startswith("/api/models/")]
    assert {r.path for r in hub_calls} == {
        "/api/models/facebook/bart-large-mnli",
        "/api/models/gone/model",
    }


@pytest.mark.anyio
async def test_gemini_listing_pages_and_keeps_token_limits(
    fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    fake.gemini_page_size = 1
    fake.listing = [
        {"name": "models/gemini-3.5-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
         "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
    ]  # fmt: skip
    env = {"FREEGIN_GOOGLE_BASE_URL": fake.gemini_url, "GEMINI_API_KEY": "AIza-SECRET"}
    endpoint = ProviderSet(Config(), env, {}).endpoint("google")
    listing = await fetch_listing(client, endpoint)
    assert listing == {
        "gemini-3.5-flash": ModelInfo(context_window=1048576, max_output_tokens=65536)
    }
    assert len([r for r in fake.requests if r.path == "/v1beta/models"]) == 2


def test_a_410_proposal_stored_before_adr_0016_still_reads_as_before(catalog: Catalog) -> None:
    # Given an Availability.RetirementProposed in the log, as the router appended it before
    old: Any = Availability.RetirementProposed
    catalog.store.append_new_streams(
        [
            old(originator_id=uuid4(), originator_version=1, timestamp=catalog.clock(),
                originator_topic=get_topic(Availability), provider="openrouter",
                workload="code", model="retired/gone-model", reason="410: model retired")
        ]
    )  # fmt: skip
    # Then `history` shows it as it did, under the same kind as the new proposals
    [entry] = [h for h in catalog.history() if h.kind == "RetirementProposed"]
    assert (entry.provider, entry.workload, entry.model) == (
        "openrouter",
        "code",
        "retired/gone-model",
    )
    assert (entry.details["reason"], entry.details["status"]) == ("410: model retired", 410)
    # and nothing else reads it: no pending proposal, every table applies the log, a replay
    # rebuilds equal tables.
    assert catalog.retirement_proposals() == []
    assert catalog.not_applied() == []
    report = catalog.replay()
    assert report.equal and not report.not_applied


@pytest.mark.anyio
async def test_a_pinned_model_its_listing_says_cannot_take_the_request_is_never_sent(
    catalog: Catalog, providers: ProviderSet, fake: FakeProviderServer, clock: FakeClock
) -> None:
    # Given OpenRouter's listing: openrouter/free answers 512 tokens at most, has no tools
    # and no JSON output; small/ctx holds 64 tokens in all.
    small = {"id": "small/ctx", "context_length": 64, "pricing": FREE["pricing"]}
    fake.listing = [PAID, FREE, small]
    async with httpx.AsyncClient(timeout=5.0) as http:
        await sync_models(catalog, providers, http, only="openrouter")
    router = Router(catalog, providers, timeout=2.0, clock=clock)
    free: dict[str, Any] = {
        "provider": "openrouter",
        "model": "openrouter/free",
        "workload": "code",
    }
    tool = Tool(function=FunctionDefinition(name="add", parameters={"type": "object"}))
    cases = [
        (GenerateRequest(prompt="x", max_tokens=1000, **free), "exceeds its output limit 512"),
        (GenerateRequest(prompt="x", tools=(tool,), **free), "does not support tools"),
        (GenerateRequest(prompt="x", response_format=JsonObjectFormat(), **free),
         "does not support JSON output"),
        (GenerateRequest(prompt="y" * 400, provider="openrouter", model="small/ctx"),
         "exceed its context window 64"),
    ]  # fmt: skip
    try:
        for request, why in cases:
            # When it is asked for by name, then it fails at once, saying why
            with pytest.raises(NoCandidateError) as caught:
                await router.generate(request)
            assert f"{request.provider}/{request.model}: " in str(caught.value)
            assert why in str(caught.value)
            assert str(caught.value).startswith("no usable model for workload")
            with pytest.raises(NoCandidateError, match=why):
                router.stream(request)
        # and nothing was sent: the fake saw the listing and no chat request
        assert [r.path for r in fake.requests if r.method == "POST"] == []
        # A request it can take is sent as before.
        fake.script("openrouter/free", Reply("ok"))
        assert (await router.generate(GenerateRequest(prompt="x", **free))).text == "ok"
        assert len([r for r in fake.requests if r.method == "POST"]) == 1
    finally:
        await router.aclose()


# -- listings recorded from the real APIs (tests/data/recorded/README.md) ------------------


@pytest.mark.anyio
async def test_a_recorded_gemini_listing_is_read_as_google_sent_it(
    catalog: Catalog, fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    # Given Gemini's models.list as recorded in March 2026: 45 models, one page
    fake.listing_body = recorded("gemini_models_list").body
    env = {"FREEGIN_GOOGLE_BASE_URL": fake.gemini_url, "GEMINI_API_KEY": "AIza-SECRET-9"}
    # When sync-models reads it
    report = await sync_models(catalog, ProviderSet(Config(), env, {}), client, only="google")
    # Then the 32 models that generate content are recorded with their token limits; the
    # embedding, image, video, question-answering and live-audio ones are not
    [result] = report.results
    assert (result.error, result.listed, len(result.new)) == (None, 32, 32)
    with catalog.reading() as conn:
        rows = {r.model: r.info for r in list_listings(conn, provider="google")}
    assert rows["gemini-2.5-flash"] == ModelInfo(context_window=1048576, max_output_tokens=65536)
    assert rows["gemma-3n-e4b-it"] == ModelInfo(context_window=8192, max_output_tokens=2048)
    assert rows["gemini-3.1-flash-lite-preview"].context_window == 1048576
    for other in ("gemini-embedding-001", "imagen-4.0-generate-001", "veo-3.0-generate-001",
                  "aqa", "gemini-2.5-flash-native-audio-latest"):  # fmt: skip
        assert other not in rows
    [page] = [r for r in fake.requests if r.path == "/v1beta/models"]
    assert page.query["pageSize"] == ["1000"] and "key" not in page.query


@pytest.mark.anyio
async def test_a_recorded_openrouter_listing_gives_limits_prices_and_free(
    catalog: Catalog, providers: ProviderSet, fake: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    # Given OpenRouter's /api/v1/models as recorded in April 2025 (its first 7 entries), from
    # before it listed supported_parameters
    fake.listing_body = recorded("openrouter_models_list").body
    report = await sync_models(catalog, providers, client, only="openrouter")
    [result] = report.results
    assert (result.error, result.listed) == (None, 7)
    with catalog.reading() as conn:
        rows = {r.model: r.info for r in list_listings(conn, provider="openrouter")}
    # A :free model: free, zero prices; no output limit listed (null), so none assumed.
    free = rows["microsoft/mai-ds-r1:free"]
    assert (free.free, free.input_per_1k_micros, free.output_per_1k_micros) == (True, 0.0, 0.0)
    assert (free.context_window, free.max_output_tokens) == (163840, None)
    # A paid one: "0.00000125" $ per token is 1,250 micros per 1,000 tokens.
    pro = rows["google/gemini-2.5-pro-preview-03-25"]
    assert (pro.free, pro.input_per_1k_micros, pro.output_per_1k_micros) == (False, 1250.0, 10000.0)
    assert (pro.context_window, pro.max_output_tokens) == (1048576, 65535)
    assert rows["openai/o4-mini-high"].max_output_tokens == 100000
    # No supported_parameters in this listing: tool and JSON support stay unknown, and
    # unknown never skips a model.
    assert {(i.supports_tools, i.supports_json) for i in rows.values()} == {(None, None)}
