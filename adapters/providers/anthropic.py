"""The Anthropic adapter: the Messages API, `POST {base_url}/messages`.

Headers `x-api-key` and `anthropic-version: 2023-06-01`; `max_tokens` is required by the API,
so a request without one asks for DEFAULT_MAX_TOKENS.
"""

from __future__ import annotations

from typing import Any

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.providers._adapter import WireAdapter
from freegin_ai.adapters.providers._sse import SSEEvent
from freegin_ai.adapters.providers._wire import (
    as_dict,
    as_list,
    as_str,
    decode_event,
    json_arguments,
    listed_ids,
    no_credentials,
    parse_arguments,
    reported_model,
    require,
    usage_dict,
    with_options,
)
from freegin_ai.adapters.providers.base import (
    ChatReply,
    ChatRequest,
    ProviderEndpoint,
    ResponseMeta,
)
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    interrupted,
    kind_for_status,
    snippet,
)
from freegin_ai.adapters.providers.replies import anthropic_usage, checked, usable_reply
from freegin_ai.domain.chat import (
    JSON_SCHEMA,
    TOOLS,
    AssistantMessage,
    DeveloperMessage,
    FunctionCall,
    JsonSchemaFormat,
    NamedToolChoice,
    StreamEnd,
    StreamItem,
    SystemMessage,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
    content_text,
)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider(WireAdapter):
    """A ChatProvider for Anthropic's Messages API; a stream ends at `message_stop`."""

    def __init__(self, endpoint: ProviderEndpoint) -> None:
        super().__init__(endpoint, parse_reply=parse_reply, stream_parser=StreamParser)
        self._messages_url = f"{self._base}/messages"
        # JSON mode without a schema has no counterpart in the Messages API.
        self.features = frozenset({TOOLS, JSON_SCHEMA})

    def _headers(self, model: str | None) -> dict[str, str]:
        if not self._endpoint.api_key:
            raise no_credentials(self._endpoint.name, model)
        return {"x-api-key": self._endpoint.api_key, "anthropic-version": ANTHROPIC_VERSION}

    def _url(self, model: str, *, stream: bool) -> str:
        return self._messages_url

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = build_body(request)
        if stream:
            body["stream"] = True
        return body

    async def list_models(self, client: HttpClient) -> list[str]:
        """Return `data[].id`, following `has_more`/`last_id` for at most MAX_MODEL_PAGES pages."""
        return await self._list_models(client, _model_page, size="limit", cursor="after_id")


def _model_page(ctx: CallContext, data: object) -> tuple[list[str], str | None]:
    page = as_dict(ctx, data, "$")
    ids = listed_ids(ctx, require(ctx, page, "data", "$"))
    last_id = page.get("last_id")
    if page.get("has_more") is not True or not isinstance(last_id, str) or not last_id:
        return ids, None
    return ids, last_id


_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The Messages body for a conversation.

    System messages go to the top-level `system`; turns alternate user/assistant (consecutive
    turns of one role are merged); assistant tool calls are `tool_use` blocks and tool results
    `tool_result` blocks in a user turn; tools carry `input_schema`; JSON-schema output is
    `output_config.format`. `max_tokens` is always set. There is no `seed`: it is not sent.
    """
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        elif blocks:
            messages.append({"role": role, "content": blocks})

    for message in request.conversation():
        match message:
            case SystemMessage() | DeveloperMessage():
                system.append(content_text(message.content))
            case UserMessage():
                add("user", [{"type": "text", "text": content_text(message.content)}])
            case AssistantMessage():
                blocks: list[dict[str, Any]] = []
                text = content_text(message.content)
                if text:
                    blocks.append({"type": "text", "text": text})
                for call in message.tool_calls or ():
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call.id,
                            "name": call.function.name,
                            "input": parse_arguments(call.function.arguments),
                        }
                    )
                add("assistant", blocks)
            case ToolMessage():
                add(
                    "user",
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": message.tool_call_id,
                            "content": content_text(message.content),
                        }
                    ],
                )
    for turn in messages:  # a lone text block is sent as the plain string it was
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [
            {
                "name": t.function.name,
                **({"description": t.function.description} if t.function.description else {}),
                "input_schema": t.function.parameters or {"type": "object", "properties": {}},
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = request.tool_choice
        if isinstance(choice, NamedToolChoice):
            body["tool_choice"] = {"type": "tool", "name": choice.function.name}
        else:
            body["tool_choice"] = {
                "type": {"none": "none", "auto": "auto", "required": "any"}[choice]
            }
    if isinstance(request.response_format, JsonSchemaFormat):
        schema = request.response_format.json_schema.schema
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    return with_options(body, request.options)


def parse_usage(usage: dict[str, object]) -> Usage:
    """The Messages usage object (the prompt includes cache reads and writes)."""
    return anthropic_usage(usage)


def finish_reason(value: object) -> str | None:
    """Anthropic's stop_reason in OpenAI's words."""
    if not isinstance(value, str) or not value:
        return None
    return _FINISH.get(value, value)


def parse_reply(
    ctx: CallContext, data: object, model: str, *, meta: ResponseMeta | None = None
) -> ChatReply:
    """A Messages reply: text blocks, tool_use blocks, stop reason and usage (and `meta`)."""
    reply = as_dict(ctx, data, "$")
    texts = []
    calls = []
    for index, block in enumerate(as_list(ctx, require(ctx, reply, "content", "$"), "content")):
        where = f"$.content[{index}]"
        item = as_dict(ctx, block, where)
        if item.get("type") == "text":
            texts.append(as_str(ctx, require(ctx, item, "text", where), "text"))
        elif item.get("type") == "tool_use":
            calls.append(
                ToolCall(
                    id=as_str(ctx, require(ctx, item, "id", where), f"{where}.id"),
                    function=FunctionCall(
                        name=as_str(ctx, require(ctx, item, "name", where), f"{where}.name"),
                        arguments=json_arguments(item.get("input")),
                    ),
                )
            )
    usage = usage_dict(reply.get("usage"))
    counts = checked(ctx, parse_usage(usage))
    text = "".join(texts)
    stop = reply.get("stop_reason")
    return usable_reply(
        ctx,
        text,
        tuple(calls),
        stop,
        counts,
        model=reported_model(reply, "model", model),
        finish_reason=finish_reason(stop),
        raw_usage=usage,
        meta=meta,
    )


class StreamParser:
    """Messages stream events to stream items; `done` after `message_stop`.

    `message_start` carries the input usage, `content_block_start` opens a text or tool_use
    block, `content_block_delta` carries `text_delta` or `input_json_delta`, `message_delta`
    the stop reason and output usage; `ping` is a keep-alive and `error` a failure.
    """

    def __init__(self, ctx: CallContext, model: str) -> None:
        self.ctx = ctx
        self.model = model
        self.done = False
        self.finish: str | None = None
        self.usage: dict[str, object] = {}
        self.tools: dict[int, int] = {}  # content block index -> tool call index

    def feed(self, event: SSEEvent) -> list[StreamItem]:
        kind = event.event
        if kind == "ping":
            return []
        data = decode_event(self.ctx, event)
        kind = str(data.get("type", kind))
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return []
            if delta.get("type") == "text_delta":
                text = delta.get("text")
                return [TextDelta(text=text)] if isinstance(text, str) and text else []
            if delta.get("type") == "input_json_delta":
                index = self.tools.get(_int(data.get("index")))
                partial = delta.get("partial_json")
                if index is not None and isinstance(partial, str) and partial:
                    return [ToolCallDelta(index=index, arguments=partial)]
            return []
        if kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                index = len(self.tools)
                self.tools[_int(data.get("index"))] = index
                ident, name = block.get("id"), block.get("name")
                return [
                    ToolCallDelta(
                        index=index,
                        id=ident if isinstance(ident, str) else None,
                        name=name if isinstance(name, str) else None,
                    )
                ]
            if isinstance(block, dict) and block.get("type") == "text":
                text = block.get("text")
                return [TextDelta(text=text)] if isinstance(text, str) and text else []
            return []
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                self.model = reported_model(message, "model", self.model)
                self.usage.update(usage_dict(message.get("usage")))
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finish = finish_reason(delta.get("stop_reason"))
            self.usage.update(usage_dict(data.get("usage")))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise _stream_error(self.ctx, data)
        return []

    def end(self) -> StreamEnd:
        if not self.done:
            raise interrupted(self.ctx)
        return StreamEnd(
            finish_reason=self.finish,
            usage=checked(self.ctx, parse_usage(self.usage)),
            model=self.model,
        )


# Anthropic's error types mid-stream, as the statuses they stand for.
_ERROR_STATUS = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
}


def _stream_error(ctx: CallContext, data: dict[str, object]) -> ProviderError:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    status = _ERROR_STATUS.get(str(error.get("type")), 500)
    message = error.get("message")
    kind = kind_for_status(status, str(message))
    shown = snippet(message if isinstance(message, str) else "", ctx.secret)
    return ProviderError(
        kind, f"{ctx.label}: stream error {error.get('type')} ({kind}): {shown}", status=status
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
