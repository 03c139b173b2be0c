"""Conversations over real HTTP in all three wire formats: the tool-call round trip (call,
result, final answer), JSON-schema requests, and streams (usage in the last chunk, a
multi-byte character cut across chunks, keep-alives, [DONE], a stream dying half-way, a stall
between chunks), each against the fake provider speaking that format on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatProvider, ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.gemini import GeminiProvider
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from freegin_ai.domain.chat import (
    AssistantMessage,
    FunctionCall,
    FunctionDefinition,
    JsonSchema,
    JsonSchemaFormat,
    NamedToolChoice,
    StreamEnd,
    StreamItem,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    ToolMessage,
    ToolName,
    UserMessage,
)
from tests.fakes.provider_server import FakeProviderServer, Reply, StreamCut, StreamStall

pytestmark = pytest.mark.anyio

FORMATS = ["openai", "gemini", "anthropic"]

WEATHER = Tool(
    function=FunctionDefinition(
        name="get_weather",
        description="Current weather for a city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
)
PARIS = {"city": "Paris"}
ONLY = ["get_weather"]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def make(api: str, server: FakeProviderServer, key: str) -> ChatProvider:
    if api == "openai":
        return OpenAICompatProvider(
            ProviderEndpoint(name="groq", api="openai", base_url=server.openai_url, api_key=key)
        )
    if api == "gemini":
        return GeminiProvider(
            ProviderEndpoint(name="google", api="gemini", base_url=server.gemini_url, api_key=key)
        )
    return AnthropicProvider(
        ProviderEndpoint(
            name="anthropic", api="anthropic", base_url=server.anthropic_url, api_key=key
        )
    )


async def collect(provider: ChatProvider, client: httpx.AsyncClient, request: ChatRequest):
    items: list[StreamItem] = []
    async for item in provider.stream(client, request):
        items.append(item)
    return items


def text_of(items: list[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, TextDelta))


# --- the tool-call round trip ---------------------------------------------------------------


@pytest.mark.parametrize("api", FORMATS)
async def test_tool_call_round_trip(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script(
        "m",
        Reply(text="", tool_calls=(("get_weather", {"city": "Paris"}),)),
        Reply("It is sunny in Paris."),
    )
    provider = make(api, fake_server, api_key)
    ask = UserMessage(content="Weather in Paris?")

    # 1. The model answers with a call, in OpenAI's shape whatever the wire format.
    first = await provider.complete(
        client, ChatRequest(model="m", messages=(ask,), tools=(WEATHER,), tool_choice="auto")
    )
    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    [call] = first.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id

    # 2. The caller runs the tool and sends the conversation back with the result.
    history = (
        ask,
        AssistantMessage(tool_calls=first.tool_calls),
        ToolMessage(tool_call_id=call.id, content='{"sky": "sunny", "celsius": 21}'),
    )
    final = await provider.complete(
        client, ChatRequest(model="m", messages=history, tools=(WEATHER,))
    )
    assert final.text == "It is sunny in Paris."
    assert final.finish_reason == "stop"

    # 3. What went over the wire is each format's own shape.
    first_body, second_body = (r.body for r in fake_server.requests[-2:])
    wire_tools_and_history[api](first_body, second_body, call.id)


def _openai_wire(first: dict[str, Any], second: dict[str, Any], call_id: str) -> None:
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER.function.parameters,
            },
        }
    ]
    assert first["tool_choice"] == "auto"
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "sunny", "celsius": 21}'},
    ]


def _gemini_wire(first: dict[str, Any], second: dict[str, Any], call_id: str) -> None:
    assert first["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER.function.parameters,
                }
            ]
        }
    ]
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert second["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": PARIS}}]},
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"sky": "sunny", "celsius": 21},
                    }
                }
            ],
        },
    ]  # fmt: skip


def _anthropic_wire(first: dict[str, Any], second: dict[str, Any], call_id: str) -> None:
    assert first["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.function.parameters,
        }
    ]
    assert first["tool_choice"] == {"type": "auto"}
    assert first["max_tokens"] == 1024
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": call_id, "name": "get_weather", "input": PARIS}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": '{"sky": "sunny", "celsius": 21}',
                }
            ],
        },
    ]  # fmt: skip


wire_tools_and_history: dict[str, Callable[[dict[str, Any], dict[str, Any], str], None]] = {
    "openai": _openai_wire,
    "gemini": _gemini_wire,
    "anthropic": _anthropic_wire,
}


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ("openai", {"type": "function", "function": {"name": "get_weather"}}),
        ("gemini", {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ONLY}}),
        ("anthropic", {"type": "tool", "name": "get_weather"}),
    ],
)  # fmt: skip
async def test_a_named_tool_choice_forces_that_tool(
    api: str,
    expected: dict[str, Any],
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    api_key: str,
) -> None:
    fake_server.script("m", Reply(text="", tool_calls=(("get_weather", {"city": "Oslo"}),)))
    choice = NamedToolChoice(function=ToolName(name="get_weather"))
    await make(api, fake_server, api_key).complete(
        client, ChatRequest(model="m", prompt="p", tools=(WEATHER,), tool_choice=choice)
    )
    body = fake_server.last_request().body
    assert body["toolConfig" if api == "gemini" else "tool_choice"] == expected


# --- JSON schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", FORMATS)
async def test_json_schema_request(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", Reply('{"name": "Ada", "age": 36}'))
    fmt = JsonSchemaFormat(json_schema=JsonSchema(name="person", schema=SCHEMA, strict=True))
    reply = await make(api, fake_server, api_key).complete(
        client,
        ChatRequest(model="m", prompt="Who wrote the first program?", response_format=fmt, seed=7),
    )
    assert json.loads(reply.text) == {"name": "Ada", "age": 36}
    body = fake_server.last_request().body
    if api == "openai":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
        }
        assert body["seed"] == 7
    elif api == "gemini":
        assert body["generationConfig"] == {
            "responseMimeType": "application/json",
            "responseJsonSchema": SCHEMA,
            "seed": 7,
        }
    else:
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
        assert "seed" not in body


@pytest.mark.parametrize("api", FORMATS)
async def test_sampling_parameters_and_pass_through(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", Reply("ok"))
    every: dict[str, dict[str, Any]] = {
        "openai": {"reasoning_effort": "low"},
        "gemini": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
        "anthropic": {"metadata": {"user_id": "u1"}},
    }
    options = every[api]
    await make(api, fake_server, api_key).complete(
        client,
        ChatRequest(
            model="m",
            prompt="p",
            stop=("END",),
            temperature=0.3,
            top_p=0.9,
            max_tokens=64,
            options=options,
        ),
    )
    body = fake_server.last_request().body
    if api == "openai":
        assert (body["stop"], body["temperature"], body["top_p"], body["max_tokens"]) == (
            ["END"], 0.3, 0.9, 64,
        )  # fmt: skip
        assert body["reasoning_effort"] == "low"
    elif api == "gemini":
        # The pass-through is merged into generationConfig, next to what the request set.
        assert body["generationConfig"] == {
            "stopSequences": ["END"],
            "temperature": 0.3,
            "topP": 0.9,
            "maxOutputTokens": 64,
            "thinkingConfig": {"thinkingBudget": 0},
        }
    else:
        assert (body["stop_sequences"], body["temperature"], body["top_p"]) == (["END"], 0.3, 0.9)
        assert (body["max_tokens"], body["metadata"]) == (64, {"user_id": "u1"})


@pytest.mark.parametrize("api", FORMATS)
async def test_a_filtered_answer_is_a_failure_carrying_its_usage(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", Reply(text="", finish="content_filter", prompt_tokens=9))
    with pytest.raises(ProviderError) as caught:
        await make(api, fake_server, api_key).complete(client, ChatRequest(model="m", prompt="p"))
    assert caught.value.kind == "filtered"
    assert caught.value.usage is not None and caught.value.usage.prompt_tokens == 9


@pytest.mark.parametrize("api", FORMATS)
async def test_length_finish_is_normalized(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", Reply("cut", finish="length"))
    reply = await make(api, fake_server, api_key).complete(
        client, ChatRequest(model="m", prompt="p")
    )
    assert reply.finish_reason == "length"


# --- streams --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", FORMATS)
async def test_stream_yields_text_then_usage_and_finish(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.chunk_chars = 3
    fake_server.script(
        "m", Reply("Hello, streaming world", prompt_tokens=12, completion_tokens=5, cached_tokens=2)
    )
    items = await collect(
        make(api, fake_server, api_key), client, ChatRequest(model="m", prompt="p")
    )

    deltas = [i for i in items if isinstance(i, TextDelta)]
    assert len(deltas) == len("Hello, streaming world") // 3 + 1  # one per chunk, in order
    assert text_of(items) == "Hello, streaming world"
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason == "stop"
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (12, 5)
    assert end.usage.cached_tokens == 2
    sent = fake_server.last_request()
    if api == "openai":
        assert sent.body["stream"] is True
        assert sent.body["stream_options"] == {"include_usage": True}
    elif api == "gemini":
        assert sent.path == "/v1beta/models/m:streamGenerateContent"
        assert sent.query == {"alt": ["sse"]}
        assert sent.headers["x-goog-api-key"] == api_key
    else:
        assert sent.body["stream"] is True
    assert sent.headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("api", FORMATS)
async def test_a_multibyte_character_cut_across_chunks_arrives_whole(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.split_bytes = True  # every event in two writes, cut inside a character
    fake_server.chunk_chars = 2
    text = "héllo wörld — 日本語 🎉"
    fake_server.script("m", Reply(text))
    items = await collect(
        make(api, fake_server, api_key), client, ChatRequest(model="m", prompt="p")
    )
    assert text_of(items) == text


@pytest.mark.parametrize("api", FORMATS)
async def test_keep_alive_comments_and_pings_are_ignored(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.keepalive = True
    fake_server.script("m", Reply("steady"))
    items = await collect(
        make(api, fake_server, api_key), client, ChatRequest(model="m", prompt="p")
    )
    assert text_of(items) == "steady"
    assert isinstance(items[-1], StreamEnd)


@pytest.mark.parametrize("api", FORMATS)
async def test_streamed_tool_call_fragments_assemble(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script(
        "m",
        Reply(
            text="",
            tool_calls=(("get_weather", {"city": "Lima"}), ("get_weather", {"city": "Quito"})),
        ),
    )
    items = await collect(
        make(api, fake_server, api_key),
        client,
        ChatRequest(model="m", prompt="p", tools=(WEATHER,)),
    )
    assembler = ToolCallAssembler()
    for item in items:
        if isinstance(item, ToolCallDelta):
            assembler.add(item)
    calls = assembler.calls()
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Lima"}),
        ("get_weather", {"city": "Quito"}),
    ]
    assert len({c.id for c in calls}) == 2
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"


async def test_openai_stream_without_include_usage_support_still_ends_at_done(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    # A provider that ignores stream_options sends no usage chunk: the end has no counts.
    fake_server.script("m", Reply("x"))
    request = ChatRequest(
        model="m", prompt="p", options={"stream_options": {"include_usage": False}}
    )
    items = await collect(make("openai", fake_server, api_key), client, request)
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage.prompt_tokens is None and end.finish_reason == "stop"


@pytest.mark.parametrize("api", FORMATS)
async def test_a_stream_dying_half_way_is_an_error_after_the_deltas_it_sent(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.chunk_chars = 2
    fake_server.script("m", StreamCut(after=3, then=Reply("a long answer that never ends")))
    items: list[StreamItem] = []
    with pytest.raises(ProviderError) as caught:
        async for item in make(api, fake_server, api_key).stream(
            client, ChatRequest(model="m", prompt="p")
        ):
            items.append(item)
    assert caught.value.kind in {"connection", "interrupted"}
    assert caught.value.retryable_elsewhere
    assert not any(isinstance(i, StreamEnd) for i in items)
    assert api_key not in str(caught.value)


@pytest.mark.parametrize("api", FORMATS)
async def test_a_stall_between_chunks_times_out(
    api: str, fake_server: FakeProviderServer, short_client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", StreamStall(after=1, seconds=3.0, then=Reply("slow answer")))
    with pytest.raises(ProviderError) as caught:
        await collect(
            make(api, fake_server, api_key), short_client, ChatRequest(model="m", prompt="p")
        )
    assert caught.value.kind == "timeout"


@pytest.mark.parametrize("api", FORMATS)
async def test_stream_errors_before_the_first_event_map_like_any_call(
    api: str, fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    from tests.fakes.provider_server import RateLimited

    fake_server.script("m", RateLimited(retry_after="9"))
    with pytest.raises(ProviderError) as caught:
        await collect(make(api, fake_server, api_key), client, ChatRequest(model="m", prompt="p"))
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 9.0)


async def test_assistant_text_with_tool_calls_keeps_both_in_every_format(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    call = ToolCall(id="c9", function=FunctionCall(name="get_weather", arguments='{"city":"Rome"}'))
    history = (
        UserMessage(content="Rome?"),
        AssistantMessage(content="Let me check.", tool_calls=(call,)),
        ToolMessage(tool_call_id="c9", content="sunny"),
    )
    fake_server.script("m", Reply("Sunny."))
    for api in FORMATS:
        await make(api, fake_server, api_key).complete(
            client, ChatRequest(model="m", messages=history, tools=(WEATHER,))
        )
    openai, gemini, anthropic = (r.body for r in fake_server.requests[-3:])
    assert openai["messages"][1]["content"] == "Let me check."
    assert gemini["contents"][1]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
    ]
    # A tool result that is not a JSON object is wrapped: Gemini wants an object.
    assert gemini["contents"][2]["parts"][0]["functionResponse"]["response"] == {"result": "sunny"}
    assert anthropic["messages"][1]["content"][0] == {"type": "text", "text": "Let me check."}
