"""The gateway's reading of OpenAI request bodies: what passes, and which parameter a 400 names."""

from __future__ import annotations

import json

import pytest

from freegin_ai.adapters.gateway.wire import (
    ApiError,
    chunk,
    completion,
    decode_chat_body,
    invalid_request,
    tool_call_delta,
)
from freegin_ai.domain.chat import (
    FunctionCall,
    InvalidRequestError,
    ToolCall,
    ToolCallDelta,
    Usage,
    UserMessage,
)


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps(base | fields).encode()


def test_a_full_request_decodes_and_unknown_fields_are_ignored() -> None:
    decoded = decode_chat_body(
        body(
            temperature=0.2,
            max_completion_tokens=9,
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
            seed=7,
            user="someone",
        )
    )
    assert decoded.model == "chat" and decoded.stream and decoded.include_usage
    assert decoded.messages == (UserMessage(content="hi"),)
    assert decoded.token_limit == 9  # the newer name wins
    assert decoded.seed == 7


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (body(model=3), "model"),
        (body(model="  "), "model"),
        (json.dumps({"messages": []}).encode(), "model"),
        (body(messages=[]), "messages"),
        (body(messages=[{"content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "messages[0].content[0].type",
        ),
        (body(temperature="hot"), "temperature"),
        (body(tools=[{"type": "function"}]), "tools[0].function"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(response_format={"type": "yaml"}), "response_format.type"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_completion_tokens=-1), "max_completion_tokens"),
        (body(n=2), "n"),
        (body(stream="yes"), "stream"),
        (body(stream_options={"include_usage": "x"}), "stream_options.include_usage"),
    ],
)
def test_bad_fields_are_400s_naming_the_parameter(raw: bytes, param: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode_chat_body(raw)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b"null", b'"text"', b"\xff", b"{}" * 3])
def test_malformed_json_is_a_400_without_a_param(raw: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        decode_chat_body(raw)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("temperature must be between 0 and 2", "temperature"),
        ("tool_choice names 'f', which is not in tools", "tool_choice"),
        ("tool 'f' is defined twice", "tools"),
        ("tool message answers 'x', which no assistant message called", "messages"),
        ("response_format json_schema needs a schema object", "response_format"),
        ("something else", None),
    ],
)
def test_the_routers_request_checks_name_their_parameter(message: str, param: str | None) -> None:
    error = invalid_request(InvalidRequestError(message))
    assert (error.status, error.param, error.message) == (400, param, message)


def test_responses_carry_what_the_sdk_reads() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4, cached_tokens=1, reasoning_tokens=2)
    answer = completion(
        completion_id="c",
        created=1,
        model="groq/m",
        text="t",
        tool_calls=(),
        usage=usage,
        finish_reason=None,
    )
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "t", "refusal": None}
    assert answer["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    last = chunk(completion_id="c", created=1, model="groq/m", usage=usage)
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 7


def test_tool_calls_in_answers_and_stream_fragments() -> None:
    call = ToolCall(id="call_1", function=FunctionCall(name="f", arguments='{"a": 1}'))
    answer = completion(
        completion_id="c",
        created=1,
        model="groq/m",
        text="",
        tool_calls=(call,),
        usage=Usage(),
        finish_reason="tool_calls",
    )
    message = answer["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    first = tool_call_delta(ToolCallDelta(index=0, id="call_1", name="f", arguments=""))
    later = tool_call_delta(ToolCallDelta(index=0, arguments='{"a"'))
    assert first == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ]
    }
    assert later == {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}
