"""The few ASGI helpers the gateway needs: types, request headers, sending JSON and errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from freegin_ai.adapters.gateway.wire import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
_ENCODER = msgspec.json.Encoder()


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's raw value (`name` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def header_value(scope: Scope, name: bytes) -> str | None:
    """A request header as text, or None."""
    value = header(scope, name)
    return value.decode("latin-1") if value is not None else None


def ascii_header(text: str) -> bytes:
    """Printable ASCII only: a header must never be split or smuggled by a model name."""
    return "".join(c if " " <= c <= "~" else "?" for c in text).encode("ascii")


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | tuple[()] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    payload: Any,
    headers: list[tuple[bytes, bytes]] | tuple[()] = (),
) -> None:
    await send_bytes(send, status, _ENCODER.encode(payload), JSON, headers)


async def send_error(send: Send, error: ApiError) -> None:
    headers = [(k.lower().encode(), ascii_header(v)) for k, v in error.headers]
    await send_json(send, error.status, error.body(), headers)
