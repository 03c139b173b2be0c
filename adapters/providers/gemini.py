"""The Gemini adapter: `POST {base_url}/models/{model}:generateContent`.

The key travels in the `x-goog-api-key` header and never in the URL, so it cannot end up in a
logged URL, an httpx error message or the usage table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
    malformed,
    snippet,
)
from freegin_ai.adapters.providers.replies import checked, gemini_usage, usable_reply
from freegin_ai.domain.chat import (
    FEATURES,
    AssistantMessage,
    DeveloperMessage,
    FunctionCall,
    JsonObjectFormat,
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


class GeminiProvider(WireAdapter):
    """A ChatProvider for Google's Gemini API (generativelanguage.googleapis.com); a stream is
    `streamGenerateContent?alt=sse`."""

    stream_params: ClassVar[Mapping[str, str] | None] = {"alt": "sse"}

    def __init__(self, endpoint: ProviderEndpoint) -> None:
        super().__init__(endpoint, parse_reply=parse_reply, stream_parser=StreamParser)
        self.features = FEATURES

    def _headers(self, model: str | None) -> dict[str, str]:
        if not self._endpoint.api_key:
            raise no_credentials(self._endpoint.name, model)
        return {"x-goog-api-key": self._endpoint.api_key}

    def _model(self, request: ChatRequest) -> str:
        return request.model.removeprefix("models/")

    def _url(self, model: str, *, stream: bool) -> str:
        method = "streamGenerateContent" if stream else "generateContent"
        return f"{self._base}/models/{model}:{method}"

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_body(request)

    async def list_models(self, client: HttpClient) -> list[str]:
        """Return the models that support generateContent, without the `models/` prefix.

        Follows `nextPageToken` for at most MAX_MODEL_PAGES pages.
        """
        return await self._list_models(client, _model_page, size="pageSize", cursor="pageToken")


def _model_page(ctx: CallContext, data: object) -> tuple[list[str], str | None]:
    page = as_dict(ctx, data, "$")
    names = []
    for index, item in enumerate(as_list(ctx, page.get("models", []), "$.models")):
        entry = as_dict(ctx, item, f"$.models[{index}]")
        if not _generates_content(entry):
            continue  # embedding and other non-chat models
        name = as_str(ctx, require(ctx, entry, "name", f"$.models[{index}]"), "name")
        names.append(name.removeprefix("models/"))
    next_token = page.get("nextPageToken")
    return names, next_token if isinstance(next_token, str) and next_token else None


def _generates_content(entry: dict[str, object]) -> bool:
    methods = entry.get("supportedGenerationMethods")
    return not isinstance(methods, list) or "generateContent" in methods


_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The generateContent body for a conversation.

    System messages become `systemInstruction`; user and tool turns are role `user`, the
    assistant's are role `model`; consecutive turns of one role are merged (Gemini wants them
    alternating, and several function responses answering one turn in one content). Tools
    are `functionDeclarations` with `parametersJsonSchema` (JSON Schema as is), tool_choice is
    `toolConfig.functionCallingConfig`, JSON output is `responseMimeType` with
    `responseJsonSchema`.
    """
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for functionResponse

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": role, "parts": parts})

    for message in request.conversation():
        match message:
            case SystemMessage() | DeveloperMessage():
                system.append({"text": content_text(message.content)})
            case UserMessage():
                add("user", [{"text": content_text(message.content)}])
            case AssistantMessage():
                parts: list[dict[str, Any]] = []
                text = content_text(message.content)
                if text:
                    parts.append({"text": text})
                for call in message.tool_calls or ():
                    names[call.id] = call.function.name
                    parts.append(
                        {
                            "functionCall": {
                                "name": call.function.name,
                                "args": parse_arguments(call.function.arguments),
                            }
                        }
                    )
                add("model", parts)
            case ToolMessage():
                add("user", [_function_response(names, message)])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        body["tools"] = [
            {"functionDeclarations": [_declaration(t.function) for t in request.tools]}
        ]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    config: dict[str, Any] = {}
    match request.response_format:
        case JsonObjectFormat():
            config["responseMimeType"] = "application/json"
        case JsonSchemaFormat(json_schema=spec):
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = spec.schema
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.seed is not None:
        config["seed"] = request.seed
    if config:
        body["generationConfig"] = config
    return with_options(body, request.options)


def _function_response(names: dict[str, str], message: ToolMessage) -> dict[str, Any]:
    """A tool result as a functionResponse part: `response` must be an object, so a result
    that is not a JSON object is wrapped as `{"result": ...}`."""
    text = content_text(message.content)
    value = parse_arguments(text)
    if not isinstance(value, dict) or set(value) == {"arguments"}:
        value = {"result": text}
    name = names.get(message.tool_call_id, message.tool_call_id)
    return {"functionResponse": {"name": name, "response": value}}


def _declaration(function: Any) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": function.name}
    if function.description:
        declaration["description"] = function.description
    if function.parameters is not None:
        declaration["parametersJsonSchema"] = function.parameters
    return declaration


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, NamedToolChoice):
        return {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
    return {"mode": {"none": "NONE", "auto": "AUTO", "required": "ANY"}[choice]}


def parse_usage(usage: dict[str, object] | None) -> Usage:
    """`usageMetadata`: absent counts are 0; thinking tokens are billed output."""
    return gemini_usage(usage)


def finish_reason(value: object, has_calls: bool) -> str | None:
    """Gemini's finishReason in OpenAI's words; STOP with function calls is tool_calls."""
    if not isinstance(value, str) or not value:
        return None
    reason = _FINISH.get(value, value.lower())
    return "tool_calls" if has_calls and reason == "stop" else reason


def parse_reply(
    ctx: CallContext, data: object, model: str, *, meta: ResponseMeta | None = None
) -> ChatReply:
    """A generateContent reply: text, function calls, finish reason and usage (and `meta`)."""
    reply = as_dict(ctx, data, "$")
    metadata = reply.get("usageMetadata")
    counts = checked(ctx, parse_usage(metadata if isinstance(metadata, dict) else None))
    usage = usage_dict(metadata)
    text, calls, reason = _candidate(ctx, reply, counts)
    return usable_reply(
        ctx,
        text,
        calls,
        reason,
        counts,
        model=reported_model(reply, "modelVersion", model),
        finish_reason=finish_reason(reason, bool(calls)),
        raw_usage=usage,
        meta=meta,
    )


class StreamParser:
    """streamGenerateContent events to stream items. Each event is a whole response holding
    the next piece; the last carries the finishReason and the full usageMetadata. A function
    call arrives whole, as one ToolCallDelta. The stream has no end event: `done` stays False
    and the body's end ends it."""

    def __init__(self, ctx: CallContext, model: str) -> None:
        self.ctx = ctx
        self.model = model
        self.done = False
        self.finish: str | None = None
        self.usage = Usage()
        self.calls = 0

    def feed(self, event: SSEEvent) -> list[StreamItem]:
        chunk = decode_event(self.ctx, event)
        model = chunk.get("modelVersion")
        if isinstance(model, str) and model:
            self.model = model
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage = checked(self.ctx, parse_usage(usage))
        if not chunk.get("candidates") and "usageMetadata" in chunk:
            _check_blocked(self.ctx, chunk, self.usage)
            return []
        text, calls, reason = _candidate(self.ctx, chunk, self.usage)
        items: list[StreamItem] = []
        if text:
            items.append(TextDelta(text=text))
        for call in calls:
            items.append(
                ToolCallDelta(
                    index=self.calls,
                    id=call.id if not call.id.startswith("call_") else f"call_{self.calls}",
                    name=call.function.name,
                    arguments=call.function.arguments,
                )
            )
            self.calls += 1
        if reason:
            self.finish = finish_reason(reason, self.calls > 0)
        return items

    def end(self) -> StreamEnd:
        if self.finish is None:
            raise interrupted(self.ctx)
        return StreamEnd(finish_reason=self.finish, usage=self.usage, model=self.model)


def _check_blocked(ctx: CallContext, reply: dict[str, object], usage: Usage) -> None:
    """A prompt blocked before any candidate is filtered (its tokens still count)."""
    feedback = reply.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if isinstance(reason, str):
        raise ProviderError(
            "filtered", f"{ctx.label}: prompt blocked: {snippet(reason, ctx.secret)}", usage=usage
        )


def _candidate(
    ctx: CallContext, reply: dict[str, object], usage: Usage
) -> tuple[str, tuple[ToolCall, ...], object]:
    """The text, function calls and finishReason of `candidates[0]`, skipping thoughts.

    A candidate cut short (MAX_TOKENS spent on thinking, SAFETY) may carry no parts: its text
    is empty. A prompt blocked before any candidate is filtered.
    """
    candidates = reply.get("candidates")
    if not candidates:
        _check_blocked(ctx, reply, usage)
        raise malformed(ctx, "no candidates in reply")
    candidate = as_dict(ctx, as_list(ctx, candidates, "$.candidates")[0], "$.candidates[0]")
    reason = candidate.get("finishReason")
    content = candidate.get("content")
    if content is None:
        return "", (), reason
    parts = as_dict(ctx, content, "$.candidates[0].content").get("parts", [])
    texts: list[str] = []
    calls: list[ToolCall] = []
    for index, part in enumerate(as_list(ctx, parts, "$.candidates[0].content.parts")):
        where = f"$.candidates[0].content.parts[{index}]"
        piece = as_dict(ctx, part, where)
        if piece.get("thought") is True:
            continue
        text = piece.get("text")
        if isinstance(text, str):
            texts.append(text)
        call = piece.get("functionCall")
        if isinstance(call, dict):
            name = as_str(ctx, require(ctx, call, "name", where), f"{where}.functionCall.name")
            ident = call.get("id")
            calls.append(
                ToolCall(
                    id=ident if isinstance(ident, str) and ident else f"call_{len(calls)}",
                    function=FunctionCall(name=name, arguments=json_arguments(call.get("args"))),
                )
            )
    return "".join(texts), tuple(calls), reason
