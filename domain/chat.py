"""The conversation model: what an application asks an LLM for, and what comes back.

OpenAI's chat-completions request is the lingua franca: the types here have its field names
and shapes, so a chat-completions body decodes straight into them (`decode_messages`, …) and
they encode back to it with `to_openai`. Each provider adapter translates from them to its own
wire format. Messages are a tagged union on `role`; content is text or a tuple of text parts.

    GenerateRequest   one request to the router: the conversation, its parameters, routing
    Message           System-, Developer-, User-, Assistant- or ToolMessage
    Tool, ToolChoice  function tools (JSON Schema parameters) and how the model may use them
    ResponseFormat    TextFormat | JsonObjectFormat | JsonSchemaFormat
    ToolCall          an assistant's call: id, function name, JSON arguments (a string)
    Usage             token counts, with cached prompt and reasoning tokens
    TextDelta, ToolCallDelta, StreamEnd   what a stream yields

Everything here is pure: validation raises InvalidRequestError (a DomainError) with a one-line
message, and `required_features` says what a request needs from a provider, so the router can
skip a candidate that cannot serve it instead of silently serving less.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from freegin_ai.domain.errors import DomainError
from freegin_ai.domain.prompts import check_prompt
from freegin_ai.domain.workloads import Workload


class InvalidRequestError(DomainError):
    """Raised when a generate request is not well-formed (messages, tools, schema, params)."""


# Structs are frozen (values), keyword-only (many optional fields) and omit defaults when
# encoded, so what goes on the wire is what was set. Unknown fields are ignored on decode:
# OpenAI's SDKs send fields (`refusal`, `audio`, …) this router has no use for.
class _Value(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    pass


# OpenAI requires `"type": "function"` on tools and tool calls even though it is the only
# value: these keep their defaults when encoded.
class _Whole(msgspec.Struct, frozen=True, kw_only=True):
    pass


# --- content ----------------------------------------------------------------------------


class TextPart(_Value, frozen=True, tag="text", tag_field="type"):
    """One text part of a message's content."""

    text: str


Content = str | tuple[TextPart, ...]


def content_text(content: Content | None) -> str:
    """The content as one string (parts joined without separator, as OpenAI reads them)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


# --- tool calls ---------------------------------------------------------------------------


class FunctionCall(_Value, frozen=True):
    """The function an assistant called: its name and its arguments as JSON text."""

    name: str
    arguments: str = "{}"


class ToolCall(_Whole, frozen=True):
    """One tool call, in OpenAI's shape."""

    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


# --- messages -----------------------------------------------------------------------------


class SystemMessage(_Value, frozen=True, tag="system", tag_field="role"):
    """Instructions for the model."""

    content: Content
    name: str | None = None


class DeveloperMessage(_Value, frozen=True, tag="developer", tag_field="role"):
    """OpenAI's newer name for system instructions; translated as a system message."""

    content: Content
    name: str | None = None


class UserMessage(_Value, frozen=True, tag="user", tag_field="role"):
    """What the user said."""

    content: Content
    name: str | None = None


class AssistantMessage(_Value, frozen=True, tag="assistant", tag_field="role"):
    """An earlier answer: text, tool calls, or both."""

    content: Content | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    name: str | None = None


class ToolMessage(_Value, frozen=True, tag="tool", tag_field="role"):
    """The result of a tool call, answering the call with `tool_call_id`."""

    content: Content
    tool_call_id: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


# --- tools and formats --------------------------------------------------------------------


class FunctionDefinition(_Value, frozen=True):
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Whole, frozen=True):
    """A function tool, in OpenAI's shape."""

    function: FunctionDefinition
    type: Literal["function"] = "function"


class ToolName(_Value, frozen=True):
    """The `function` of a named tool choice."""

    name: str


class NamedToolChoice(_Whole, frozen=True):
    """Force the model to call this one function."""

    function: ToolName
    type: Literal["function"] = "function"


#: "none": no tool call; "auto": the model decides; "required": at least one call.
ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class TextFormat(_Value, frozen=True, tag="text", tag_field="type"):
    """Plain text (the default)."""


class JsonObjectFormat(_Value, frozen=True, tag="json_object", tag_field="type"):
    """Any JSON object."""


class JsonSchema(_Value, frozen=True):
    """A named JSON Schema the answer must follow; `strict` asks for exact adherence."""

    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class JsonSchemaFormat(_Value, frozen=True, tag="json_schema", tag_field="type"):
    """JSON following a schema."""

    json_schema: JsonSchema


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat


# --- the request --------------------------------------------------------------------------


class GenerateRequest(_Value, frozen=True):
    """One request to the router: a conversation, how to answer it, and how to route it.

    `prompt` (with `system`) is the shortcut for one user message; `messages` is the whole
    conversation. Give one or the other. `provider_options` is the pass-through for what this
    model has no field for: `{"gemini": {...}, "groq": {...}}`, keyed by wire format
    (`openai`, `gemini`, `anthropic`) or provider name, each deep-merged into that provider's
    request body as is (the provider's name wins over the wire format's).
    """

    prompt: str | None = None
    messages: tuple[Message, ...] = ()
    system: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    provider_options: dict[str, dict[str, Any]] | None = None
    # routing
    workload: Workload | str = Workload.CHAT
    provider: str | None = None
    model: str | None = None
    fallback: bool = False
    #: Identifies a request across retries (trials route the same key to the same arm).
    request_key: str | None = None
    #: Seconds `generate` may wait for a candidate out of quota or cooling down to come back,
    #: instead of failing at once (None or 0: never wait).
    wait: float | None = None

    def conversation(self) -> tuple[Message, ...]:
        """The messages to send: `system` and `prompt` as messages, then `messages`."""
        return with_first_turn(self.system, self.prompt, self.messages)


def with_first_turn(
    system: str | None, prompt: str | None, messages: tuple[Message, ...]
) -> tuple[Message, ...]:
    """The shortcut's `system` and `prompt` as messages, then the rest of the conversation."""
    head: list[Message] = []
    if system:
        head.append(SystemMessage(content=system))
    if prompt is not None:
        head.append(UserMessage(content=prompt))
    return (*head, *messages)


# --- the result ---------------------------------------------------------------------------

#: Normalized finish reasons: OpenAI's words for every wire format.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Usage(_Value, frozen=True):
    """Token counts as the provider reported them (None when it did not).

    `cached_tokens` are part of `prompt_tokens`; `reasoning_tokens` part of
    `completion_tokens`.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class TextDelta(_Value, frozen=True, tag="text", tag_field="type"):
    """A piece of the answer's text, as it arrives."""

    text: str


class ToolCallDelta(_Value, frozen=True, tag="tool_call", tag_field="type"):
    """A fragment of tool call `index`: the first carries id and name, later ones arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamEnd(_Value, frozen=True, tag="end", tag_field="type"):
    """The end of a provider's stream: why it stopped, and the usage it reported."""

    finish_reason: str | None = None
    usage: Usage = Usage()
    model: str | None = None


StreamItem = TextDelta | ToolCallDelta | StreamEnd


class ToolCallAssembler:
    """Joins ToolCallDelta fragments into whole ToolCalls, in index order."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        if delta.id:
            self._ids[delta.index] = delta.id
        if delta.name:
            self._names[delta.index] = self._names.get(delta.index, "") + delta.name
        self._arguments.setdefault(delta.index, []).append(delta.arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        """The calls so far; a call without an id gets `call_<index>`."""
        return tuple(
            ToolCall(
                id=self._ids.get(index) or f"call_{index}",
                function=FunctionCall(
                    name=self._names.get(index, ""),
                    arguments="".join(self._arguments[index]) or "{}",
                ),
            )
            for index in sorted(self._arguments)
        )


# --- features a request needs -------------------------------------------------------------

TOOLS = "tools"
JSON_OBJECT = "json_object"
JSON_SCHEMA = "json_schema"
#: Every feature a request can need; a provider serves a subset.
FEATURES = frozenset({TOOLS, JSON_OBJECT, JSON_SCHEMA})


def required_features(request: GenerateRequest) -> frozenset[str]:
    """What a provider must support to serve the request faithfully.

    A conversation that carries tool calls or results needs tools even when no tools are
    offered this turn: the provider must understand the history.
    """
    needed: set[str] = set()
    if request.tools or any(
        isinstance(m, ToolMessage) or (isinstance(m, AssistantMessage) and m.tool_calls)
        for m in request.messages
    ):
        needed.add(TOOLS)
    match request.response_format:
        case JsonObjectFormat():
            needed.add(JSON_OBJECT)
        case JsonSchemaFormat():
            needed.add(JSON_SCHEMA)
    return frozenset(needed)


def unsupported_reason(needed: Iterable[str], supported: Iterable[str]) -> str | None:
    """Why a provider cannot serve a request (None when it can), for the router's explanation."""
    missing = sorted(set(needed) - set(supported))
    if not missing:
        return None
    words = {TOOLS: "tool calls", JSON_OBJECT: "JSON mode", JSON_SCHEMA: "JSON schema output"}
    return "does not support " + " or ".join(words.get(m, m) for m in missing)


def features_from_metadata(
    base: frozenset[str], metadata: Mapping[str, Any] | None
) -> frozenset[str]:
    """A provider's features narrowed (or widened) by catalog metadata for one model.

    `{"supports": {"tools": false, "json_schema": true}}` in a roster entry's metadata
    overrides what the provider supports in general.
    """
    overrides = (metadata or {}).get("supports")
    if not isinstance(overrides, Mapping):
        return base
    features = set(base)
    for name, value in overrides.items():
        if name in FEATURES and isinstance(value, bool):
            (features.add if value else features.discard)(name)
    return frozenset(features)


# --- validation ---------------------------------------------------------------------------

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def validate_request(request: GenerateRequest) -> None:
    """Check a request before anything is sent; raise InvalidRequestError (or, for text that
    is not UTF-8, InvalidPromptError) on the first fault."""
    if request.prompt is not None:
        check_prompt(request.prompt)
    if request.system is not None:
        check_prompt(request.system, "system prompt")
    for index, message in enumerate(request.messages):
        if message.content is not None:
            check_prompt(content_text(message.content), f"text of messages[{index}]")
    if request.prompt is not None and not request.prompt.strip() and not request.messages:
        raise InvalidRequestError("the prompt is empty")
    messages = request.conversation()
    if not any(not isinstance(m, SystemMessage | DeveloperMessage) for m in messages):
        raise InvalidRequestError("no messages: give a prompt or at least one user message")
    _check_numbers(request)
    names = _check_tools(request.tools)
    match request.tool_choice:
        case NamedToolChoice(function=ToolName(name=name)) if name not in names:
            raise InvalidRequestError(f"tool_choice names {name!r}, which is not in tools")
        case "required" if not request.tools:
            raise InvalidRequestError("tool_choice 'required' needs at least one tool")
    if isinstance(request.response_format, JsonSchemaFormat):
        spec = request.response_format.json_schema
        if not _TOOL_NAME.match(spec.name):
            raise InvalidRequestError(
                f"response_format json_schema name {spec.name!r}: use letters, digits, _ or -"
            )
        if not isinstance(spec.schema, dict) or not spec.schema:
            raise InvalidRequestError("response_format json_schema needs a schema object")
    _check_tool_turns(messages)


def _check_numbers(request: GenerateRequest) -> None:
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        raise InvalidRequestError("temperature must be between 0 and 2")
    if request.top_p is not None and not 0 <= request.top_p <= 1:
        raise InvalidRequestError("top_p must be between 0 and 1")
    if request.max_tokens is not None and request.max_tokens <= 0:
        raise InvalidRequestError("max_tokens must be positive")
    if len(request.stop) > 4:
        raise InvalidRequestError("at most 4 stop sequences")
    if any(not s for s in request.stop):
        raise InvalidRequestError("a stop sequence is empty")


def _check_tools(tools: tuple[Tool, ...]) -> set[str]:
    names: set[str] = set()
    for tool in tools:
        name = tool.function.name
        if not _TOOL_NAME.match(name):
            raise InvalidRequestError(
                f"tool name {name!r}: use 1-64 letters, digits, _ or - (as every provider does)"
            )
        if name in names:
            raise InvalidRequestError(f"tool {name!r} is defined twice")
        parameters = tool.function.parameters
        if parameters is not None and parameters.get("type", "object") != "object":
            raise InvalidRequestError(f"tool {name!r}: parameters must be a JSON Schema object")
        names.add(name)
    return names


def _check_tool_turns(messages: tuple[Message, ...]) -> None:
    """Every tool result answers a call made earlier in the conversation."""
    called: set[str] = set()
    for message in messages:
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls or ():
                called.add(call.id)
        elif isinstance(message, ToolMessage) and message.tool_call_id not in called:
            raise InvalidRequestError(
                f"tool message answers {message.tool_call_id!r}, which no assistant message called"
            )


# --- OpenAI's JSON ------------------------------------------------------------------------

_message_list = msgspec.json.Decoder(tuple[Message, ...])
_tool_list = msgspec.json.Decoder(tuple[Tool, ...])
_schema = msgspec.json.Decoder(dict[str, Any])


def decode_messages(data: bytes | str) -> tuple[Message, ...]:
    """A JSON list of OpenAI chat messages; InvalidRequestError names what is wrong."""
    messages: tuple[Message, ...] = _decode(_message_list, data, "messages")
    return messages


def decode_tools(data: bytes | str) -> tuple[Tool, ...]:
    """A JSON list of OpenAI function tools (`[{"type": "function", "function": {...}}]`)."""
    tools: tuple[Tool, ...] = _decode(_tool_list, data, "tools")
    return tools


def decode_schema(data: bytes | str) -> dict[str, Any]:
    """A JSON Schema object."""
    schema: dict[str, Any] = _decode(_schema, data, "schema")
    return schema


def _decode(decoder: msgspec.json.Decoder[Any], data: bytes | str, what: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as error:
        raise InvalidRequestError(f"{what}: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidRequestError(f"{what}: not valid JSON ({error})") from None


def to_openai(value: Any) -> Any:
    """Messages, tools, a tool choice or a response format as OpenAI's JSON-ready objects."""
    return msgspec.to_builtins(value)
