"""OpenAI's chat-completions wire format, as the gateway reads and writes it.

Requests are decoded with msgspec into `ChatCompletionBody`, whose messages, tools, tool
choice and response format are the router's conversation types (domain.chat, in OpenAI's
shapes); unknown fields are ignored, as OpenAI's SDKs send parameters a gateway may not know.
A field of the wrong type, or a rule broken, becomes an `ApiError` with OpenAI's error shape
and the parameter named:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature",
               "code": null}}
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from freegin_ai.domain.chat import (
    InvalidRequestError,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)


class ApiError(Exception):
    """Raised to answer a request with an HTTP error in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: OpenAI's `{"error": {...}}`, plus any extra fields (attempts)."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


class StreamOptions(msgspec.Struct, kw_only=True):
    """`stream_options`: only `include_usage` is read."""

    include_usage: bool = False


class ChatCompletionBody(msgspec.Struct, kw_only=True):
    """The body of `POST /v1/chat/completions` (the fields the gateway reads)."""

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: tuple[Tool, ...] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    #: freegin-ai's own: with a `provider/model` pin, fall back to the workload's catalog.
    fallback: bool = False

    @property
    def token_limit(self) -> int | None:
        """`max_completion_tokens` (OpenAI's newer name) wins over `max_tokens`."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


_DECODER = msgspec.json.Decoder(ChatCompletionBody)
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")

#: The router's request checks (domain.chat.validate_request), by how their message starts.
_PARAMS = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("max_tokens", "max_tokens"),
    ("tool_choice", "tool_choice"),
    ("tool message", "messages"),
    ("tool", "tools"),
    ("response_format", "response_format"),
    ("at most 4 stop", "stop"),
    ("a stop sequence", "stop"),
    ("no messages", "messages"),
    ("the prompt", "messages"),
)


def decode_chat_body(raw: bytes) -> ChatCompletionBody:
    """Decode and check a chat-completions body; raise ApiError (400) naming the parameter."""
    try:
        body = _DECODER.decode(raw)
    except msgspec.ValidationError as error:
        raise ApiError(400, _describe(str(error)), param=_param(str(error))) from None
    except msgspec.DecodeError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (The body must be a JSON "
            "object; see https://platform.openai.com/docs/api-reference/chat/create.)",
        ) from None
    if not body.model.strip():
        raise ApiError(400, "you must provide a model parameter", param="model")
    if not body.messages:
        raise ApiError(400, "messages must be a non-empty array", param="messages")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name)
        if value is not None and value <= 0:
            raise ApiError(400, f"{name} must be a positive integer", param=name)
    if body.n is not None and body.n != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    return body


def invalid_request(error: InvalidRequestError) -> ApiError:
    """The 400 for a request the router's checks refused, naming the parameter."""
    message = str(error)
    param = next((p for prefix, p in _PARAMS if message.startswith(prefix)), None)
    return ApiError(400, message, param=param)


def _param(message: str) -> str | None:
    field = _MISSING.search(message)
    at = _AT.search(message)
    path = at.group("path") if at else ""
    if field:
        return f"{path}.{field.group('field')}" if path else field.group("field")
    return path or None


def _describe(message: str) -> str:
    text = _AT.sub("", message)
    param = _param(message)
    return f"{text} (param {param})" if param else text


# --- answers --------------------------------------------------------------------------------


def usage_wire(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` object (unknown counts as 0, details only when known)."""
    prompt = usage.prompt_tokens or 0
    completion = usage.completion_tokens or 0
    total = usage.total_tokens if usage.total_tokens is not None else prompt + completion
    wire: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
    }
    if usage.cached_tokens is not None:
        wire["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens is not None:
        wire["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return wire


def completion(
    *,
    completion_id: str,
    created: int,
    model: str,
    text: str,
    tool_calls: tuple[ToolCall, ...],
    usage: Usage,
    finish_reason: str | None,
) -> dict[str, Any]:
    """A `chat.completion` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = [msgspec.to_builtins(call) for call in tool_calls]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or "stop",
            }
        ],
        "usage": usage_wire(usage),
        "system_fingerprint": None,
    }


def chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk`: a delta, or (with `usage` and no delta) the usage chunk."""
    choices: list[dict[str, Any]] = []
    if delta is not None or finish_reason is not None:
        choices.append(
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
        )
    payload: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
        "system_fingerprint": None,
    }
    if usage is not None:
        payload["usage"] = usage_wire(usage)
    return payload


def tool_call_delta(delta: ToolCallDelta) -> dict[str, Any]:
    """A stream's tool-call fragment in OpenAI's shape (id, type and name on the first)."""
    function: dict[str, Any] = {"arguments": delta.arguments}
    entry: dict[str, Any] = {"index": delta.index, "function": function}
    if delta.id is not None:
        entry["id"] = delta.id
        entry["type"] = "function"
    if delta.name is not None:
        function["name"] = delta.name
    return {"tool_calls": [entry]}


def model_list(entries: list[tuple[str, str]], created: int) -> dict[str, Any]:
    """`GET /v1/models`: one entry per (id, owner)."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": owner}
            for model_id, owner in entries
        ],
    }
