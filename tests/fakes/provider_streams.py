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
from dataclasses import dataclass
from typing import Any

#: A keep-alive line each format's providers send while the model thinks.
KEEPALIVE = {"openai": b": keep-alive\n\n", "gemini": b": keep-alive\n\n"}


@dataclass(frozen=True)
class Script:
    """One streamed reply before a format renders it: the answering model, text, tool calls
    (name, arguments), usage in the format's own words, finish reason in the format's own
    word, and how many characters each text piece holds."""

    model: str
    text: str | None
    calls: list[tuple[str, dict[str, Any]]]
    usage: dict[str, Any]
    finish: str
    chunk_chars: int

    def text_pieces(self) -> list[str]:
        return pieces(self.text or "", self.chunk_chars)


def pieces(text: str, size: int) -> list[str]:
    """The text in chunks of `size` characters (at least one chunk, maybe empty)."""
    if not text:
        return []
    return [text[i : i + size] for i in range(0, len(text), size)]


def argument_pieces(args: dict[str, Any]) -> list[str]:
    """A tool call's JSON arguments in two halves, as providers send them in fragments."""
    arguments = json.dumps(args)
    return pieces(arguments, max(1, len(arguments) // 2 + 1))


def _data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _event(kind: str, **fields: Any) -> bytes:
    """An Anthropic event: named `kind`, its data an object whose `type` is `kind` too."""
    return f"event: {kind}\n".encode() + _data({"type": kind, **fields})


def openai_events(script: Script, *, include_usage: bool) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _data(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": script.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in script.text_pieces()]
    for index, (name, args) in enumerate(script.calls):
        head = {"index": index, "id": f"call_{index}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
        )
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
            for part in argument_pieces(args)
        ]
    events.append(chunk({}, script.finish))
    if include_usage:
        usage = {"id": "chatcmpl-fake", "model": script.model, "choices": [], "usage": script.usage}
        events.append(_data(usage))
    events.append(b"data: [DONE]\n\n")
    return events


def gemini_events(script: Script) -> list[bytes]:
    parts: list[dict[str, Any]] = [{"text": piece} for piece in script.text_pieces()]
    parts += [{"functionCall": {"name": name, "args": args}} for name, args in script.calls]
    if not parts:
        parts = [{"text": ""}]
    events = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if last:
            candidate["finishReason"] = script.finish
        usage = script.usage
        partial = usage if last else {"promptTokenCount": usage.get("promptTokenCount", 0)}
        events.append(
            _data(
                {"candidates": [candidate], "usageMetadata": partial, "modelVersion": script.model}
            )
        )
    return events


def anthropic_events(script: Script) -> list[bytes]:
    usage = script.usage
    start_usage = {k: v for k, v in usage.items() if k != "output_tokens"} | {"output_tokens": 1}
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": script.model,
        "content": [],
        "stop_reason": None,
        "usage": start_usage,
    }
    events = [_event("message_start", message=message), _event("ping")]
    block = 0
    if script.text:
        deltas = [{"type": "text_delta", "text": piece} for piece in script.text_pieces()]
        events += _content_block(0, {"type": "text", "text": ""}, deltas)
        block = 1
    for offset, (name, args) in enumerate(script.calls):
        tool = {"type": "tool_use", "id": f"toolu_{offset}", "name": name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in argument_pieces(args)]
        events += _content_block(block + offset, tool, deltas)
    events.append(
        _event(
            "message_delta",
            delta={"stop_reason": script.finish, "stop_sequence": None},
            usage={"output_tokens": usage.get("output_tokens", 0)},
        )
    )
    events.append(_event("message_stop"))
    return events


def _content_block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    """An Anthropic content block: its start, its deltas, its stop."""
    return [
        _event("content_block_start", index=index, content_block=start),
        *(_event("content_block_delta", index=index, delta=delta) for delta in deltas),
        _event("content_block_stop", index=index),
    ]
