"""A fast fake OpenAI-compatible server for benchmarks: `python -m tests.bench.fast_server`.

One asyncio process on 127.0.0.1 (an ephemeral port, printed on stdout as `PORT <n>`) that
answers every `POST …/chat/completions` at once with a fixed reply: JSON, or server-sent events
when the body asks for `"stream": true` (CHUNKS text deltas, a usage chunk, `[DONE]`). It parses
no JSON and keeps connections alive, so the client side is what gets measured. It stops on
SIGTERM, or after `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

CHUNKS = 20
TEXT = "ok"

_JSON_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


def _sse_body() -> bytes:
    def event(payload: object) -> bytes:
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        return event(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1764000000,
                "model": "bench-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"w{i} "}) for i in range(CHUNKS)]
    parts.append(chunk({}, "stop"))
    usage = {"prompt_tokens": 5, "completion_tokens": CHUNKS, "total_tokens": 5 + CHUNKS}
    parts.append(
        event({"id": "chatcmpl-bench", "model": "bench-model", "choices": [], "usage": usage})
    )
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _response(body: bytes, kind: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n"
    )  # fmt: skip
    return head + body


JSON_RESPONSE = _response(_JSON_BODY, b"application/json")
SSE_RESPONSE = _response(_sse_body(), b"text/event-stream")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = 0
            if start >= 0:
                line_end = head.find(b"\r\n", start)
                length = int(head[start + 15 : line_end if line_end >= 0 else None].strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            if b"/chat/completions" not in head.split(b"\r\n", 1)[0]:
                self.transport.write(NOT_FOUND)
            elif b'"stream":true' in body.replace(b" ", b""):
                self.transport.write(SSE_RESPONSE)
            else:
                self.transport.write(JSON_RESPONSE)


async def serve(seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=900.0, help="stop after this long")
    args = parser.parse_args()
    try:
        import uvloop  # the fake must not be the bottleneck

        uvloop.run(serve(args.seconds))
    except ImportError:
        asyncio.run(serve(args.seconds))
    sys.exit(0)


if __name__ == "__main__":
    main()
