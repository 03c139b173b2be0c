"""How the fake provider streams: a scripted reply rendered as each wire format's server-sent
events, byte for byte as the providers send them.

    OpenAI     `data: {chunk}` per delta (role first, then content pieces, tool-call
               fragments by index), a finish chunk, a usage chunk with empty `choices` when
               `stream_options.include_usage` was asked, then `data: [DONE]`
    Gemini     `data: {GenerateContentResponse}` per piece (`?alt=sse`), usageMetadata on
               each, finishReason on the last; function calls arrive whole
    Anthropic  `event: <type>` + `data: {...}`: message_start, content_block_start / _delta /
               _stop (text_delta, input_json_delta), ping, message_delta, message_stop

`pieces()` cuts text into chunks of `chunk_chars` characters, so a test can put a multi-byte
character at a chunk edge; the server may further split each event's bytes (`split_bytes`).
"""

from __future__ import annotations

import json
from typing import Any

#: A keep-alive line each format's providers send while the model thinks.
KEEPALIVE = {"openai": b": keep-alive\n\n", "gemini": b": keep-alive\n\n"}


def pieces(text: str, size: int) -> list[str]:
    """The text in chunks of `size` characters (at least one chunk, maybe empty)."""
    if not text:
        return []
    return [text[i : i + size] for i in range(0, len(text), size)]


def _data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _event(kind: str, payload: Any) -> bytes:
    return f"event: {kind}\n".encode() + _data(payload)


def openai_events(
    model: str,
    text: str | None,
    calls: list[tuple[str, dict[str, Any]]],
    usage: dict[str, Any],
    finish: str,
    *,
    include_usage: bool,
    chunk_chars: int,
) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _data(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces(text or "", chunk_chars)]
    for index, (name, args) in enumerate(calls):
        arguments = json.dumps(args)
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        )
        for part in pieces(arguments, max(1, len(arguments) // 2 + 1)):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            )
    events.append(chunk({}, finish))
    if include_usage:
        events.append(_data({"id": "chatcmpl-fake", "model": model, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


def gemini_events(
    model: str,
    text: str | None,
    calls: list[tuple[str, dict[str, Any]]],
    usage: dict[str, Any],
    finish: str,
    *,
    chunk_chars: int,
) -> list[bytes]:
    parts: list[dict[str, Any]] = [{"text": piece} for piece in pieces(text or "", chunk_chars)]
    parts += [{"functionCall": {"name": name, "args": args}} for name, args in calls]
    if not parts:
        parts = [{"text": ""}]
    events = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if last:
            candidate["finishReason"] = finish
        partial = usage if last else {"promptTokenCount": usage.get("promptTokenCount", 0)}
        events.append(
            _data({"candidates": [candidate], "usageMetadata": partial, "modelVersion": model})
        )
    return events


def anthropic_events(
    model: str,
    text: str | None,
    calls: list[tuple[str, dict[str, Any]]],
    usage: dict[str, Any],
    finish: str,
    *,
    chunk_chars: int,
) -> list[bytes]:
    start_usage = {k: v for k, v in usage.items() if k != "output_tokens"} | {"output_tokens": 1}
    events = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "usage": start_usage,
                },
            },
        ),
        _event("ping", {"type": "ping"}),
    ]
    block = 0
    if text:
        events.append(
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        for piece in pieces(text, chunk_chars):
            events.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        block = 1
    for offset, (name, args) in enumerate(calls):
        index = block + offset
        events.append(
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"toolu_{offset}",
                        "name": name,
                        "input": {},
                    },
                },
            )
        )
        arguments = json.dumps(args)
        for part in pieces(arguments, max(1, len(arguments) // 2 + 1)):
            events.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": finish, "stop_sequence": None},
                "usage": {"output_tokens": usage.get("output_tokens", 0)},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events
