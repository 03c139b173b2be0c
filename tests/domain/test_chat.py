"""The conversation model: decoding OpenAI's JSON, validation, the features a request needs,
and assembling streamed tool-call fragments."""

from __future__ import annotations

import msgspec
import pytest

from freegin_ai.domain.chat import (
    AssistantMessage,
    DeveloperMessage,
    FunctionCall,
    FunctionDefinition,
    GenerateRequest,
    InvalidRequestError,
    JsonObjectFormat,
    JsonSchema,
    JsonSchemaFormat,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    ToolMessage,
    ToolName,
    UserMessage,
    content_text,
    decode_messages,
    decode_tools,
    features_from_metadata,
    required_features,
    to_openai,
    unsupported_reason,
    validate_request,
)

TOOL = Tool(function=FunctionDefinition(name="lookup", parameters={"type": "object"}))
BAD_NAME = Tool(function=FunctionDefinition(name="bad name"))
OTHER = NamedToolChoice(function=ToolName(name="other"))
NO_SCHEMA = JsonSchemaFormat(json_schema=JsonSchema(name="x"))
ORPHAN_RESULT = (UserMessage(content="q"), ToolMessage(tool_call_id="zz", content="r"))
CALL = ToolCall(id="c1", function=FunctionCall(name="lookup", arguments='{"q": 1}'))


def test_openai_messages_decode_and_encode_back_unchanged() -> None:
    raw = (
        b'[{"role": "system", "content": "be brief"},'
        b' {"role": "user", "content": [{"type": "text", "text": "a"},'
        b' {"type": "text", "text": "b"}]},'
        b' {"role": "assistant", "content": null, "refusal": null, "tool_calls": [{"id": "c1",'
        b' "type": "function", "function": {"name": "lookup", "arguments": "{\\"q\\": 1}"}}]},'
        b' {"role": "tool", "tool_call_id": "c1", "content": "42"}]'
    )
    messages = decode_messages(raw)
    assert messages == (
        SystemMessage(content="be brief"),
        UserMessage(content=(TextPart(text="a"), TextPart(text="b"))),
        AssistantMessage(tool_calls=(CALL,)),
        ToolMessage(tool_call_id="c1", content="42"),
    )
    assert content_text(messages[1].content) == "ab"
    assert msgspec.json.decode(msgspec.json.encode(to_openai(messages[2]))) == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": 1}'},
            }
        ],
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'[{"role": "wizard", "content": "x"}]', "$[0].role"),
        (b'[{"role": "tool", "content": "x"}]', "tool_call_id"),
        (b'{"role": "user"}', "Expected `array`"),
        (b"[{", "not valid JSON"),
    ],
)
def test_bad_messages_name_what_is_wrong(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_messages(raw)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tools_decode_from_openai_json() -> None:
    tools = decode_tools(
        b'[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]'
    )
    assert tools == (TOOL,)


def test_prompt_and_system_are_the_shortcut_for_a_first_turn() -> None:
    request = GenerateRequest(
        prompt="hi", system="be kind", messages=(AssistantMessage(content="yo"),)
    )
    assert request.conversation() == (
        SystemMessage(content="be kind"),
        UserMessage(content="hi"),
        AssistantMessage(content="yo"),
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (GenerateRequest(), "no messages"),
        (GenerateRequest(messages=(SystemMessage(content="s"),)), "no messages"),
        (GenerateRequest(prompt="   "), "prompt is empty"),
        (GenerateRequest(prompt="p", temperature=3.0), "temperature"),
        (GenerateRequest(prompt="p", top_p=1.5), "top_p"),
        (GenerateRequest(prompt="p", max_tokens=0), "max_tokens"),
        (GenerateRequest(prompt="p", stop=("a", "b", "c", "d", "e")), "stop"),
        (GenerateRequest(prompt="p", tools=(TOOL, TOOL)), "defined twice"),
        (GenerateRequest(prompt="p", tools=(BAD_NAME,)), "tool name"),
        (GenerateRequest(prompt="p", tool_choice="required"), "needs at least one tool"),
        (GenerateRequest(prompt="p", tools=(TOOL,), tool_choice=OTHER), "not in tools"),
        (GenerateRequest(prompt="p", response_format=NO_SCHEMA), "needs a schema"),
        (GenerateRequest(messages=ORPHAN_RESULT), "no assistant message called"),
    ],
)  # fmt: skip
def test_invalid_requests_are_refused_with_one_line(
    request_: GenerateRequest, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(request_)
    assert message in str(caught.value)


def test_a_valid_tool_round_trip_passes() -> None:
    validate_request(
        GenerateRequest(
            messages=(
                DeveloperMessage(content="rules"),
                UserMessage(content="q"),
                AssistantMessage(tool_calls=(CALL,)),
                ToolMessage(tool_call_id="c1", content="r"),
            ),
            tools=(TOOL,),
            tool_choice=NamedToolChoice(function=ToolName(name="lookup")),
        )
    )


def test_required_features() -> None:
    assert required_features(GenerateRequest(prompt="p")) == frozenset()
    assert required_features(GenerateRequest(prompt="p", tools=(TOOL,))) == {"tools"}
    # A history holding tool calls needs tools even when none are offered now.
    history = (UserMessage(content="q"), AssistantMessage(tool_calls=(CALL,)))
    assert required_features(GenerateRequest(messages=history)) == {"tools"}
    assert required_features(GenerateRequest(prompt="p", response_format=JsonObjectFormat())) == {
        "json_object"
    }
    schema = JsonSchemaFormat(json_schema=JsonSchema(name="x", schema={"type": "object"}))
    assert required_features(GenerateRequest(prompt="p", response_format=schema)) == {"json_schema"}


def test_unsupported_reason_and_metadata_overrides() -> None:
    everything = frozenset({"tools", "json_object", "json_schema"})
    assert unsupported_reason({"tools"}, everything) is None
    assert unsupported_reason({"tools", "json_schema"}, {"json_object"}) == (
        "does not support JSON schema output or tool calls"
    )
    narrowed = features_from_metadata(everything, {"supports": {"tools": False, "bogus": True}})
    assert narrowed == {"json_object", "json_schema"}
    widened = features_from_metadata(frozenset(), {"supports": {"json_schema": True}})
    assert widened == {"json_schema"}
    assert features_from_metadata(everything, {"supports": "yes"}) == everything


def test_tool_call_fragments_assemble_in_index_order() -> None:
    assembler = ToolCallAssembler()
    for delta in [
        ToolCallDelta(index=1, id="b", name="second"),
        ToolCallDelta(index=0, id="a", name="first", arguments='{"x"'),
        ToolCallDelta(index=0, arguments=": 1}"),
        ToolCallDelta(index=1, arguments="{}"),
        ToolCallDelta(index=2, name="third"),
    ]:
        assembler.add(delta)
    assert [(c.id, c.function.name, c.function.arguments) for c in assembler.calls()] == [
        ("a", "first", '{"x": 1}'),
        ("b", "second", "{}"),
        ("call_2", "third", "{}"),
    ]
