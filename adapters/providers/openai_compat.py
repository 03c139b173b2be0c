"""The OpenAI-compatible adapter: chat completions over `POST {base_url}/chat/completions`.

Serves every provider that speaks OpenAI's wire format: OpenAI, Groq, DeepSeek, Together,
OpenRouter, Cerebras, Mistral, GitHub Models, Cloudflare Workers AI, the Hugging Face router
and a local Ollama. The key goes in `Authorization: Bearer`, and only when there is one.
"""

from __future__ import annotations

from typing import Any

from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.providers._adapter import WireAdapter
from freegin_ai.adapters.providers._sse import SSEEvent
from freegin_ai.adapters.providers._wire import (
    as_dict,
    as_list,
    as_str,
    decode_event,
    listed_ids,
    no_credentials,
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
    error_in_body,
    interrupted,
    malformed,
)
from freegin_ai.adapters.providers.replies import checked, openai_usage, usable_reply
from freegin_ai.domain.chat import (
    FEATURES,
    JSON_SCHEMA,
    DeveloperMessage,
    FunctionCall,
    Message,
    StreamEnd,
    StreamItem,
    SystemMessage,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    content_text,
    to_openai,
)

# OpenAI's own API rejects `max_tokens` for its reasoning and GPT-5 models and wants
# `max_completion_tokens`; the other providers still document `max_tokens`.
_TOKEN_LIMIT_FIELD = {"openai": "max_completion_tokens"}

#: Providers of this wire format that serve JSON mode but not JSON-schema output
#: (DeepSeek documents `response_format: {"type": "json_object"}` only).
_NO_JSON_SCHEMA = frozenset({"deepseek"})

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def bearer_headers(
    endpoint: ProviderEndpoint, model: str | None, *, required: bool
) -> dict[str, str]:
    """`Authorization: Bearer` with the endpoint's key; without one, nothing, or (`required`)
    a `no_credentials` error."""
    key = endpoint.api_key
    if not key:
        if required:
            raise no_credentials(endpoint.name, model)
        return {}
    return {"authorization": f"Bearer {key}"}


class OpenAICompatProvider(WireAdapter):
    """A ChatProvider for the OpenAI chat-completions wire format; a stream asks for usage
    (`stream_options.include_usage`) and ends at `[DONE]`.

    `models_url` replaces `{base_url}/models` for providers that list models elsewhere
    (GitHub Models: `https://models.github.ai/catalog/models`, a bare JSON array).
    `require_key` makes a call without a key fail with `no_credentials` before sending.
    """

    def __init__(
        self,
        endpoint: ProviderEndpoint,
        *,
        models_url: str | None = None,
        require_key: bool = False,
    ) -> None:
        super().__init__(
            endpoint, parse_reply=parse_reply, stream_parser=StreamParser, models_url=models_url
        )
        self._completions_url = f"{self._base}/chat/completions"
        self._require_key = require_key
        self.features = FEATURES - {JSON_SCHEMA} if endpoint.name in _NO_JSON_SCHEMA else FEATURES

    def _headers(self, model: str | None) -> dict[str, str]:
        return bearer_headers(self._endpoint, model, required=self._require_key)

    def _url(self, model: str, *, stream: bool) -> str:
        return self._completions_url

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_body(request, self._endpoint.name, stream=stream)

    async def list_models(self, client: HttpClient) -> list[str]:
        """Return the ids under `data[].id` (or of a bare array of objects with `id`)."""
        return await self._list_models(client, _model_list)


def _model_list(ctx: CallContext, data: object) -> tuple[list[str], str | None]:
    items = data if isinstance(data, list) else require(ctx, as_dict(ctx, data, "$"), "data", "$")
    return listed_ids(ctx, items), None


def build_body(request: ChatRequest, provider: str, *, stream: bool = False) -> dict[str, Any]:
    """The chat-completions body: the conversation as is, with the caller's options merged."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.conversation()],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = to_openai(request.tools)
    if request.tool_choice is not None:
        body["tool_choice"] = to_openai(request.tool_choice)
    if request.response_format is not None:
        body["response_format"] = to_openai(request.response_format)
    if request.stop:
        body["stop"] = list(request.stop)
    if request.max_tokens is not None:
        body[_TOKEN_LIMIT_FIELD.get(provider, "max_tokens")] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    return with_options(body, request.options)


def _message(message: Message) -> dict[str, Any]:
    """One message for the wire: `developer` becomes `system` (not every provider knows the
    newer role) and text parts are joined (the same text; some providers accept only a
    string)."""
    data: dict[str, Any] = to_openai(message)
    if isinstance(message, DeveloperMessage):
        data["role"] = "system"
    if isinstance(message, SystemMessage | DeveloperMessage) or not isinstance(
        message.content, str | None
    ):
        data["content"] = content_text(message.content)
    return data


def parse_usage(usage: dict[str, object]) -> Usage:
    """OpenAI's usage object, with cached and reasoning tokens from their details."""
    return openai_usage(usage)


def finish_reason(value: object) -> str | None:
    """OpenAI's finish_reason, normalized (an unknown word is kept as it is)."""
    if not isinstance(value, str) or not value:
        return None
    return _FINISH.get(value, value)


def parse_reply(
    ctx: CallContext, data: object, model: str, *, meta: ResponseMeta | None = None
) -> ChatReply:
    """A chat-completions reply: text, tool calls, finish reason and usage (and `meta`)."""
    reply = as_dict(ctx, data, "$")
    if "choices" not in reply and isinstance(reply.get("error"), dict):
        raise error_in_body(ctx, 200, as_dict(ctx, reply["error"], "$.error"))
    choices = as_list(ctx, require(ctx, reply, "choices", "$"), "$.choices")
    if not choices:
        raise malformed(ctx, "no choices in reply")
    choice = as_dict(ctx, choices[0], "$.choices[0]")
    message = as_dict(ctx, require(ctx, choice, "message", "$.choices[0]"), "message")
    text = _content_text(ctx, message.get("content"))
    raw_calls = message.get("tool_calls")
    calls = _tool_calls(ctx, raw_calls) if raw_calls is not None else ()
    if "content" not in message and not calls:
        raise malformed(ctx, "missing field $.choices[0].message.content")
    usage = usage_dict(reply.get("usage"))
    counts = checked(ctx, parse_usage(usage))
    finish = choice.get("finish_reason")
    return usable_reply(
        ctx,
        text,
        calls,
        finish,
        counts,
        model=reported_model(reply, "model", model),
        finish_reason=finish_reason(finish),
        raw_usage=usage,
        meta=meta,
    )


def _tool_calls(ctx: CallContext, value: object) -> tuple[ToolCall, ...]:
    calls = []
    for index, item in enumerate(as_list(ctx, value, "$.choices[0].message.tool_calls")):
        where = f"$.choices[0].message.tool_calls[{index}]"
        call = as_dict(ctx, item, where)
        function = as_dict(ctx, require(ctx, call, "function", where), f"{where}.function")
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                id=str(call.get("id") or f"call_{index}"),
                function=FunctionCall(
                    name=as_str(ctx, require(ctx, function, "name", where), f"{where}.name"),
                    arguments=arguments if isinstance(arguments, str) else "{}",
                ),
            )
        )
    return tuple(calls)


class StreamParser:
    """Chat-completion chunks to stream items; `done` after `[DONE]`.

    Usage comes in a last chunk with empty `choices` (asked for with include_usage); an
    `error` object mid-stream (OpenRouter) raises its ProviderError.
    """

    def __init__(self, ctx: CallContext, model: str) -> None:
        self.ctx = ctx
        self.model = model
        self.done = False
        self.finish: str | None = None
        self.usage = Usage()

    def feed(self, event: SSEEvent) -> list[StreamItem]:
        if event.data == b"[DONE]":
            self.done = True
            return []
        chunk = decode_event(self.ctx, event)
        error = chunk.get("error")
        if isinstance(error, dict):
            raise error_in_body(self.ctx, 200, error)
        model = chunk.get("model")
        if isinstance(model, str) and model:
            self.model = model
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = checked(self.ctx, parse_usage(usage))
        items: list[StreamItem] = []
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return items
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    items.append(TextDelta(text=content))
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    items.extend(_call_delta(call) for call in calls if isinstance(call, dict))
            reason = finish_reason(choice.get("finish_reason"))
            if reason:
                self.finish = reason
        return items

    def end(self) -> StreamEnd:
        """The final item; a stream cut off before it finished is an error."""
        if not self.done and self.finish is None:
            raise interrupted(self.ctx)
        return StreamEnd(finish_reason=self.finish, usage=self.usage, model=self.model)


def _call_delta(call: dict[str, Any]) -> ToolCallDelta:
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    index = call.get("index")
    name = function.get("name")
    arguments = function.get("arguments")
    return ToolCallDelta(
        index=index if isinstance(index, int) else 0,
        id=call.get("id") if isinstance(call.get("id"), str) else None,
        name=name if isinstance(name, str) else None,
        arguments=arguments if isinstance(arguments, str) else "",
    )


def _content_text(ctx: CallContext, content: object) -> str:
    """`message.content`: a string, null (nothing said, e.g. only reasoning), or text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Mistral may send parts (thinking and text): only text parts are the answer.
    parts = as_list(ctx, content, "$.choices[0].message.content")
    texts = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type", "text") != "text":
            continue
        if isinstance(part.get("text"), str):
            texts.append(str(part["text"]))
    return "".join(texts)
