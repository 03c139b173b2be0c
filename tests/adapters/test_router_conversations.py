"""The router with conversations over real HTTP against fake providers on 127.0.0.1: skips for
requests a candidate cannot serve, filtered and empty answers falling back, tool calls in the
result, and streams (fallback before the first delta, an error after it, early close, one
usage event per attempt with time to first token, the sync iterator)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.http_client import AiohttpClient
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    GenerateRequest,
    GenerateResult,
    NoCandidateError,
    Router,
    StreamInterruptedError,
)
from freegin_ai.domain.chat import (
    FunctionDefinition,
    InvalidRequestError,
    JsonObjectFormat,
    JsonSchema,
    JsonSchemaFormat,
    TextDelta,
    Tool,
    ToolCallDelta,
)
from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import list_health
from tests.adapters.test_router import KEY, env_for, fake
from tests.conftest import FakeClock
from tests.fakes.catalogs import catalog_with, chat_roster
from tests.fakes.provider_server import (
    FakeProviderServer,
    RateLimited,
    Reply,
    ServerError,
    StreamCut,
    StreamStall,
)

TOOL = Tool(
    function=FunctionDefinition(
        name="add", parameters={"type": "object", "properties": {"a": {"type": "number"}}}
    )
)


__all__ = ["fake"]  # the fake provider fixture, shared with test_router


@pytest.fixture
def catalog(sqlite_url: str, clock: FakeClock) -> Iterator[Catalog]:
    roster = chat_roster(
        ("groq", "g-fast", 10), ("google", "gem-1", 20), ("anthropic", "claude-x", 40)
    )
    with catalog_with(sqlite_url, clock, roster) as c:
        yield c


@pytest.fixture
async def router(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> AsyncIterator[Router]:
    r = Router(catalog, ProviderSet(Config(), env_for(fake), {}), timeout=0.5, clock=clock)
    yield r
    await r.aclose()


def usage_events(router: Router) -> list[dict[str, Any]]:
    # Usage is committed before an answer (or a stream's end) reaches the caller.
    return [e.state for e in router.catalog.store.read(0, 1000, frozenset({USAGE_LOGGED}))]


async def drain(stream: Any) -> list[Any]:
    return [item async for item in stream]


# --- what a candidate cannot serve ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_candidate_that_cannot_serve_the_request_is_skipped_with_the_reason(
    router: Router, fake: FakeProviderServer
) -> None:
    request = GenerateRequest(prompt="p", response_format=JsonObjectFormat())
    decision = router.explain(request)
    assert [c.model for c in decision.candidates] == ["g-fast", "gem-1"]
    assert [(s.model, s.reason) for s in decision.skipped] == [
        ("claude-x", "does not support JSON mode")
    ]


@pytest.mark.anyio
async def test_catalog_metadata_narrows_what_a_model_supports(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    catalog.adopt_model(
        AdoptModel(
            provider="groq",
            workload="chat",
            model="g-notools",
            priority=1,
            metadata={"supports": {"tools": False}},
        )
    )
    fake.script("g-fast", Reply("ok"))
    result = await router.generate(GenerateRequest(prompt="p", tools=(TOOL,)))
    assert result.model == "g-fast"  # never sent to g-notools, which cannot call tools
    assert [(s.model, s.reason) for s in result.decision.skipped] == [
        ("g-notools", "does not support tool calls")
    ]
    assert [r.body["model"] for r in fake.requests] == ["g-fast"]
    # Without tools it is the first choice again.
    assert router.explain(GenerateRequest(prompt="p")).candidates[0].model == "g-notools"


@pytest.mark.anyio
async def test_when_no_candidate_can_serve_it_nothing_is_sent(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    # DeepSeek documents JSON mode but not JSON-schema output.
    env = {**env_for(fake), "DEEPSEEK_API_KEY": KEY, "FREEGIN_DEEPSEEK_BASE_URL": fake.openai_url}
    router = Router(catalog, ProviderSet(Config(), env, {}), timeout=0.5, clock=clock)
    schema = JsonSchemaFormat(json_schema=JsonSchema(name="x", schema={"type": "object"}))
    request = GenerateRequest(
        prompt="p", provider="deepseek", model="deepseek-chat", response_format=schema
    )
    try:
        with pytest.raises(NoCandidateError) as caught:
            await router.generate(request)
        assert "deepseek/deepseek-chat: does not support JSON schema output" in str(caught.value)
        # JSON mode it does serve.
        fake.script("deepseek-chat", Reply("{}"))
        json_mode = GenerateRequest(
            prompt="p",
            provider="deepseek",
            model="deepseek-chat",
            response_format=JsonObjectFormat(),
        )
        assert (await router.generate(json_mode)).text == "{}"
    finally:
        await router.aclose()
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_an_invalid_request_is_refused_before_anything_is_sent(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    with pytest.raises(InvalidRequestError):
        await router.generate(GenerateRequest(prompt="p", temperature=9.0))
    with pytest.raises(InvalidRequestError):
        router.stream(GenerateRequest(prompt="p", tool_choice="required"))
    assert fake.requests == []
    assert usage_events(router) == []


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_filtered_and_empty_answers_fall_back_and_are_logged_with_their_reason(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", Reply(text="", finish="content_filter"))
    fake.script("gem-1", Reply(text=""))
    fake.script("claude-x", Reply("finally"))
    result = await router.generate(GenerateRequest(prompt="p"))
    assert result.text == "finally"
    assert [(a.model, a.error_kind) for a in result.attempts] == [
        ("g-fast", "filtered"),
        ("gem-1", "empty"),
        ("claude-x", None),
    ]
    logged = usage_events(router)
    assert [(e["model"], e["success"], e["error_kind"]) for e in logged] == [
        ("g-fast", False, "filtered"),
        ("gem-1", False, "empty"),
        ("claude-x", True, None),
    ]
    # A filter judged the prompt, not the model: no cooldown. An empty answer cools it down.
    with catalog.reading() as conn:
        assert [(h.model, h.last_error_kind) for h in list_health(conn) if h.cooldown_until] == [
            ("gem-1", "empty")
        ]


@pytest.mark.anyio
async def test_tool_calls_come_back_in_openai_shape_from_any_provider(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", ServerError())
    fake.script("gem-1", Reply(text="", tool_calls=(("add", {"a": 2}),)))
    result = await router.generate(GenerateRequest(prompt="2+?", tools=(TOOL,)))
    assert (result.provider, result.finish_reason, result.text) == ("google", "tool_calls", "")
    [call] = result.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 2})
    assert usage_events(router)[-1]["finish_reason"] == "tool_calls"


@pytest.mark.anyio
async def test_provider_options_reach_only_their_provider(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script("g-fast", ServerError())
    fake.script("gem-1", Reply("ok"))
    options: dict[str, dict[str, Any]] = {
        "groq": {"service_tier": "flex"},
        "gemini": {"safetySettings": []},
    }
    await router.generate(GenerateRequest(prompt="p", provider_options=options))
    groq, google = fake.requests
    assert groq.body["service_tier"] == "flex" and "safetySettings" not in groq.body
    assert google.body["safetySettings"] == [] and "service_tier" not in google.body


# --- streams ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_stream_falls_back_before_its_first_delta(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", RateLimited(retry_after="30"))
    fake.script("gem-1", StreamCut(after=0, then=Reply("never")))
    fake.script("claude-x", Reply("Bonjour à tous", prompt_tokens=7, completion_tokens=4))
    stream = router.stream(GenerateRequest(prompt="p"))
    items = await drain(stream)
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "Bonjour à tous"
    result = items[-1]
    assert isinstance(result, GenerateResult) and stream.result is result
    assert (result.provider, result.text, result.finish_reason) == (
        "anthropic",
        "Bonjour à tous",
        "stop",
    )
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (7, 4, 11)
    assert result.ttft_ms is not None and result.ttft_ms <= result.latency_ms
    # One usage event per attempt; only the one that answered has a time to first token.
    logged = usage_events(router)
    assert [(e["model"], e["success"], e["streamed"]) for e in logged] == [
        ("g-fast", False, True),
        ("gem-1", False, True),
        ("claude-x", True, True),
    ]
    assert logged[0]["ttft_ms"] is None and logged[2]["ttft_ms"] == result.ttft_ms
    assert logged[2]["prompt_tokens"] == 7


@pytest.mark.anyio
async def test_a_stream_failing_after_its_first_delta_ends_with_a_clear_error(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.chunk_chars = 2
    fake.script("g-fast", StreamCut(after=3, then=Reply("abcdefghijkl")))
    fake.script("gem-1", Reply("must not be asked"))
    received: list[Any] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async for item in router.stream(GenerateRequest(prompt="p")):
            received.append(item)
    assert caught.value.text == "".join(i.text for i in received) and caught.value.text
    assert "stopped part-way" in str(caught.value)
    assert KEY not in str(caught.value)
    assert [r.body["model"] for r in fake.requests] == ["g-fast"]  # no fallback mid-answer
    [event] = usage_events(router)
    assert (event["success"], event["streamed"]) == (False, True)
    assert event["error_kind"] in {"connection", "interrupted"}
    assert event["ttft_ms"] is not None


@pytest.mark.anyio
async def test_a_stall_mid_stream_times_out(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", StreamStall(after=2, seconds=2.0, then=Reply("slow and steady")))
    with pytest.raises(StreamInterruptedError):
        await drain(router.stream(GenerateRequest(prompt="p")))
    assert usage_events(router)[0]["error_kind"] == "timeout"


@pytest.mark.anyio
async def test_a_caller_that_stops_early_closes_the_provider_and_usage_is_still_logged(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.chunk_chars = 1
    fake.script("g-fast", StreamStall(after=3, seconds=2.0, then=Reply("x" * 50)))
    stream = router.stream(GenerateRequest(prompt="p"))
    first = await stream.__anext__()
    assert isinstance(first, TextDelta)
    started = time.perf_counter()
    await stream.aclose()
    assert time.perf_counter() - started < 0.5  # did not wait for the stalled provider
    [event] = usage_events(router)
    assert (event["model"], event["success"], event["finish_reason"]) == (
        "g-fast",
        True,
        "cancelled",
    )
    assert event["ttft_ms"] is not None
    # The provider's side saw the connection go: its stalled write fails once it wakes.
    with anyio.fail_after(5):
        while fake.aborted_streams == 0:
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_streamed_tool_calls_arrive_as_fragments_and_whole_in_the_result(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script("g-fast", Reply(text="", tool_calls=(("add", {"a": 1}), ("add", {"a": 2}))))
    items = await drain(router.stream(GenerateRequest(prompt="p", tools=(TOOL,))))
    assert any(isinstance(i, ToolCallDelta) for i in items)
    result = items[-1]
    assert isinstance(result, GenerateResult)
    assert result.finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments) for c in result.tool_calls] == [{"a": 1}, {"a": 2}]


@pytest.mark.anyio
async def test_a_stream_where_every_candidate_fails_raises_on_the_first_step(
    router: Router, fake: FakeProviderServer
) -> None:
    for model in ("g-fast", "gem-1", "claude-x"):
        fake.script(model, ServerError())
    with pytest.raises(AllAttemptsFailedError) as caught:
        await drain(router.stream(GenerateRequest(prompt="p")))
    assert [a.error_kind for a in caught.value.attempts] == ["server"] * 3


def test_the_sync_stream_for_scripts(catalog: Catalog, fake: FakeProviderServer) -> None:
    fake.script("g-fast", Reply("sync hello"))
    router = Router(catalog, ProviderSet(Config(), env_for(fake), {}), timeout=2.0)
    try:
        items = list(router.stream_sync(GenerateRequest(prompt="p")))
    finally:
        anyio.run(router.aclose)
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "sync hello"
    assert isinstance(items[-1], GenerateResult)
    assert isinstance(router.client, AiohttpClient)  # the default transport (ADR 0019)


@pytest.mark.anyio
async def test_stats_show_time_to_first_token_for_streamed_calls(
    router: Router, fake: FakeProviderServer, catalog: Catalog
) -> None:
    fake.script("g-fast", Reply("one"), Reply("two"), Reply("three"))
    await drain(router.stream(GenerateRequest(prompt="p")))
    await drain(router.stream(GenerateRequest(prompt="p")))
    await router.generate(GenerateRequest(prompt="p"))  # not streamed: no first token
    stats = catalog.usage_stats("groq", Workload.CHAT)
    assert (stats.calls, stats.ttft_calls) == (3, 2)
    assert stats.p50_ttft_ms is not None and stats.p95_ttft_ms is not None
    assert 0 <= stats.p50_ttft_ms <= stats.p95_ttft_ms <= stats.latency_max_ms
    assert catalog.usage_stats("google", Workload.CHAT).p50_ttft_ms is None  # never streamed


@pytest.mark.anyio
@pytest.mark.parametrize("model", ["g-fast", "gem-1", "claude-x"])
async def test_a_finished_stream_gives_its_connection_back_for_the_next_call(
    router: Router, fake: FakeProviderServer, model: str
) -> None:
    fake.script(model, Reply("one two three"))
    provider = {"g-fast": "groq", "gem-1": "google", "claude-x": "anthropic"}[model]
    for _ in range(3):
        items = await drain(router.stream(GenerateRequest(prompt="p", provider=provider,
                                                          model=model)))  # fmt: skip
        assert isinstance(items[-1], GenerateResult) and items[-1].text == "one two three"
    # The parser stops at the stream's last event; reading the rest of the body (its end)
    # keeps the connection open and pooled: every call came on the first one's connection.
    ports = {r.peer_port for r in fake.requests}
    assert len(fake.requests) == 3 and len(ports) == 1
