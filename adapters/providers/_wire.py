"""Wire helpers shared by the adapters: send one JSON request, open an event stream, and read
fields from the reply.

`send_json` and `open_events` turn every failure into a ProviderError (see `errors_mapping`);
the readers raise a `malformed` ProviderError when a field is missing or has the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers._sse import SSEDecoder, SSEError, SSEEvent
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    error_for_exception,
    error_for_status,
    error_in_body,
    malformed,
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


async def send_json(
    client: httpx.AsyncClient,
    ctx: CallContext,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: object | None = None,
    params: Mapping[str, str] | None = None,
) -> object:
    """Send one request and return the decoded JSON of a 2xx reply.

    The caller's client timeouts apply: no `timeout=` is passed here, so they are never disabled.
    """
    try:
        response = await client.request(
            method,
            url,
            headers={"accept": "application/json", **_content_type(body), **headers},
            content=None if body is None else _encode(body),
            params=params,
        )
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise error_for_exception(ctx, exc) from None
    if not response.is_success:
        raise error_for_status(ctx, response)
    try:
        return json.loads(response.content)
    except ValueError:
        raise malformed(ctx, "body is not JSON", status=response.status_code) from None


def _content_type(body: object | None) -> dict[str, str]:
    return {} if body is None else {"content-type": "application/json"}


@asynccontextmanager
async def open_events(
    client: httpx.AsyncClient,
    ctx: CallContext,
    url: str,
    *,
    headers: Mapping[str, str],
    body: object,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """POST a streaming request and yield its server-sent events as they arrive.

    A non-2xx status raises its ProviderError before anything is yielded; a 2xx JSON body
    (an error object, or a provider that ignored `stream`) is an error or malformed. Leaving
    the context closes the response, and with it the connection, at once.
    """
    request_headers = {
        "accept": "text/event-stream",
        "content-type": "application/json",
        **headers,
    }
    try:
        async with client.stream(
            "POST", url, headers=request_headers, content=_encode(body), params=params
        ) as response:
            if not response.is_success:
                await response.aread()
                raise error_for_status(ctx, response)
            kind = response.headers.get("content-type", "")
            if kind.startswith("application/json"):
                await response.aread()
                raise _json_instead_of_events(ctx, response)
            yield _events(ctx, response)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise error_for_exception(ctx, exc) from None


async def _events(ctx: CallContext, response: httpx.Response) -> AsyncIterator[SSEEvent]:
    decoder = SSEDecoder()
    try:
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                yield event
    except SSEError as error:
        raise malformed(ctx, str(error), status=response.status_code) from None
    except (httpx.HTTPError, UnicodeError) as exc:
        raise error_for_exception(ctx, exc) from None


def _json_instead_of_events(ctx: CallContext, response: httpx.Response) -> ProviderError:
    try:
        data = json.loads(response.content)
    except ValueError:
        return malformed(ctx, "body is not JSON", status=response.status_code)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return error_in_body(ctx, response.status_code, data["error"])
    return malformed(ctx, "expected an event stream, got JSON", status=response.status_code)


def decode_event(ctx: CallContext, event: SSEEvent) -> dict[str, object]:
    """An event's data as a JSON object, or a malformed error."""
    try:
        data = _decode(event.data)
    except msgspec.DecodeError:
        raise malformed(ctx, f"event data is not JSON: {event.data[:80]!r}") from None
    return as_dict(ctx, data, "event data")


def with_options(body: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The body with the caller's pass-through options deep-merged in (theirs win)."""
    for key, value in options.items():
        current = body.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            body[key] = with_options(dict(current), value)
        else:
            body[key] = value
    return body


def as_dict(ctx: CallContext, value: object, where: str) -> dict[str, object]:
    """The value as a JSON object, or a malformed error naming `where`."""
    if not isinstance(value, dict):
        raise malformed(ctx, f"expected an object at {where}")
    return value


def as_list(ctx: CallContext, value: object, where: str) -> list[object]:
    """The value as a JSON array, or a malformed error naming `where`."""
    if not isinstance(value, list):
        raise malformed(ctx, f"expected an array at {where}")
    return value


def as_str(ctx: CallContext, value: object, where: str) -> str:
    """The value as a string, or a malformed error naming `where`."""
    if not isinstance(value, str):
        raise malformed(ctx, f"expected a string at {where}")
    return value


def require(ctx: CallContext, obj: Mapping[str, object], key: str, where: str) -> object:
    """`obj[key]`, or a malformed error naming the missing field."""
    if key not in obj:
        raise malformed(ctx, f"missing field {where}.{key}")
    return obj[key]


def optional_int(value: object) -> int | None:
    """A token count: a non-negative int, or None when absent or not a count."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def nested_int(usage: Mapping[str, object], outer: str, inner: str) -> int | None:
    """A token count one level down, e.g. usage.prompt_tokens_details.cached_tokens."""
    details = usage.get(outer)
    return optional_int(details.get(inner)) if isinstance(details, dict) else None


def usage_dict(value: object) -> dict[str, object]:
    """The provider's usage object as reported, or an empty dict."""
    return dict(value) if isinstance(value, dict) else {}


def reported_model(body: Mapping[str, object], key: str, default: str) -> str:
    """The model the provider says answered, falling back to the one asked for."""
    value = body.get(key)
    return value if isinstance(value, str) and value else default


def no_credentials(provider: str, model: str | None) -> ProviderError:
    """The error for a provider that needs a key and has none; nothing is sent."""
    label = CallContext(provider=provider, model=model).label
    return ProviderError("no_credentials", f"{label}: no API key configured")


def json_arguments(value: object) -> str:
    """A tool call's arguments (a JSON object from Gemini or Anthropic) as OpenAI's JSON text."""
    return _encode(value if value is not None else {}).decode()


def parse_arguments(arguments: str) -> object:
    """OpenAI's JSON-text arguments as an object for Gemini and Anthropic ({} when empty)."""
    if not arguments.strip():
        return {}
    try:
        return _decode(arguments)
    except msgspec.DecodeError:
        return {"arguments": arguments}  # not JSON: pass the text on rather than drop it
