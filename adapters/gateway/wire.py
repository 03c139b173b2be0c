"""OpenAI's chat-completions wire format, as the gateway reads and writes it.

Requests are decoded with msgspec into `ChatCompletionBody` (unknown fields are ignored, as
OpenAI's SDKs send parameters a gateway may not know); a field of the wrong type or a rule
broken becomes an `ApiError` with OpenAI's error shape and the parameter named:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature",
               "code": null}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

#: Roles a message may have (`developer` is OpenAI's newer name for `system`).
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


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


class Message(msgspec.Struct, kw_only=True):
    """One message of the conversation; `content` is text or a list of content parts."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionBody(msgspec.Struct, kw_only=True):
    """The body of `POST /v1/chat/completions` (the fields the gateway reads)."""

    model: str
    messages: list[Message]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    #: freegin-ai's own: with a `provider/model` pin, fall back to other providers.
    fallback: bool = False

    @property
    def token_limit(self) -> int | None:
        return (
            self.max_completion_tokens
            if self.max_completion_tokens is not None
            else (self.max_tokens)
        )


_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


def decode_chat_body(raw: bytes) -> ChatCompletionBody:
    """Decode and check a chat-completions body; raise ApiError (400) naming the parameter."""
    try:
        body = msgspec.json.decode(raw, type=ChatCompletionBody)
    except msgspec.ValidationError as error:
        raise ApiError(400, _describe(str(error)), param=_param(str(error))) from None
    except msgspec.DecodeError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (The body must be a JSON "
            "object; see https://platform.openai.com/docs/api-reference/chat/create.)",
        ) from None
    check_chat_body(body)
    return body


def check_chat_body(body: ChatCompletionBody) -> None:
    """The rules msgspec's types do not express."""
    if not body.model.strip():
        raise ApiError(400, "you must provide a model parameter", param="model")
    if not body.messages:
        raise ApiError(400, "messages must be a non-empty array", param="messages")
    for index, message in enumerate(body.messages):
        if message.role not in ROLES:
            raise ApiError(
                400,
                f"invalid role {message.role!r} (expected one of: {', '.join(sorted(ROLES))})",
                param=f"messages[{index}].role",
            )
        if isinstance(message.content, list):
            for part_index, part in enumerate(message.content):
                if part.get("type") not in ("text", "input_text") or not isinstance(
                    part.get("text"), str
                ):
                    raise ApiError(
                        400,
                        "only text content parts are supported",
                        param=f"messages[{index}].content[{part_index}]",
                    )
    if body.temperature is not None and not 0 <= body.temperature <= 2:
        raise ApiError(400, "temperature must be between 0 and 2", param="temperature")
    if body.top_p is not None and not 0 <= body.top_p <= 1:
        raise ApiError(400, "top_p must be between 0 and 1", param="top_p")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name)
        if value is not None and value <= 0:
            raise ApiError(400, f"{name} must be a positive integer", param=name)
    if body.n is not None and body.n != 1:
        raise ApiError(400, "only n=1 is supported", param="n")


def content_text(message: Message) -> str:
    """A message's text: the string, or its text parts joined."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content)


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


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer, as the gateway reports them."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    def wire(self) -> dict[str, Any]:
        prompt = self.prompt_tokens or 0
        completion = self.completion_tokens or 0
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": self.total_tokens
            if self.total_tokens is not None
            else prompt + completion,
        }
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage


def completion(
    *,
    completion_id: str,
    created: int,
    model: str,
    text: str,
    usage: Usage,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A `chat.completion` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage.wire(),
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
        payload["usage"] = usage.wire()
    return payload


def model_list(entries: list[tuple[str, str]], created: int) -> dict[str, Any]:
    """`GET /v1/models`: one entry per (id, owner)."""
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": owner}
            for model_id, owner in entries
        ],
    }
