"""Wire helpers shared by the adapters: one bounded exchange with a provider, and readers for
the fields of its reply.

Every exchange is bounded twice (WireLimits): one deadline for connect, headers and body
together (`deadline`), and a cap on the reply body (`capped_chunks`, `read_body`). A streaming
adapter builds on the same pieces: open `client.stream(...)` inside `deadline(...)` and read
with `capped_chunks`.

`send_json` turns every failure into a ProviderError (see `errors_mapping`); the readers raise a
`malformed` ProviderError when a field is missing or has the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import httpx

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ResponseMeta, WireLimits, response_meta
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    error_for_exception,
    error_for_status,
    malformed,
)

#: Errors of sending or reading that mean "no usable answer came": turned into ProviderErrors.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, UnicodeError)


@asynccontextmanager
async def deadline(ctx: CallContext, seconds: float) -> AsyncIterator[None]:
    """Cancel whatever runs inside after `seconds` and raise a `timeout` ProviderError.

    One deadline for the whole attempt: httpx's own timeouts are per read, so a reply that
    drips a byte at a time would otherwise never time out.
    """
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise ProviderError(
            "timeout", f"{ctx.label}: timeout: no complete reply within {seconds:g} s"
        ) from None


async def capped_chunks(
    response: httpx.Response, ctx: CallContext, limit: int
) -> AsyncIterator[bytes]:
    """The reply body chunk by chunk (decoded), failing as soon as it passes `limit` bytes.

    A Content-Length over the limit fails before reading anything.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(ctx, limit, response.status_code)
    seen = 0
    try:
        async for chunk in response.aiter_bytes():
            seen += len(chunk)
            if seen > limit:
                raise too_large(ctx, limit, response.status_code)
            yield chunk
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(ctx, exc) from None


async def read_body(
    response: httpx.Response, ctx: CallContext, limit: int, *, truncate: bool = False
) -> bytes:
    """The whole reply body, at most `limit` bytes; over it, fail (or keep the start: `truncate`).

    Error replies are read with `truncate`: only their first words go into a message.
    """
    if truncate:
        kept = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                kept += chunk[: limit - len(kept)]
                if len(kept) >= limit:
                    break
        except TRANSPORT_ERRORS:
            pass  # what arrived is enough to describe the error
        return bytes(kept)
    parts = [chunk async for chunk in capped_chunks(response, ctx, limit)]
    return b"".join(parts)


def too_large(ctx: CallContext, limit: int, status: int | None = None) -> ProviderError:
    """The failure for a reply body over the cap: a malformed reply, so the router falls back."""
    return malformed(ctx, f"reply larger than {limit} bytes", status=status)


async def send_json(
    client: httpx.AsyncClient,
    ctx: CallContext,
    method: str,
    url: str,
    *,
    limits: WireLimits,
    headers: Mapping[str, str],
    body: object | None = None,
    params: Mapping[str, str] | None = None,
    meta: list[ResponseMeta] | None = None,
) -> object:
    """Send one request and return the decoded JSON of a 2xx reply, within `limits`.

    The client's own timeouts still apply per read; `limits.deadline_seconds` bounds the whole.
    With `meta`, the response's status and rate-limit headers are appended to it (a failed
    response carries them on its ProviderError instead).
    """
    async with deadline(ctx, limits.deadline_seconds):
        try:
            async with client.stream(
                method,
                url,
                headers={"accept": "application/json", **headers},
                json=body,
                params=params,
            ) as response:
                if not response.is_success:
                    text = await read_body(response, ctx, limits.max_reply_bytes, truncate=True)
                    raise error_for_status(ctx, response, text)
                content = await read_body(response, ctx, limits.max_reply_bytes)
                if meta is not None:
                    meta.append(response_meta(response.status_code, response.headers))
        except TRANSPORT_ERRORS as exc:
            raise error_for_exception(ctx, exc) from None
    return decode_json(ctx, content, response.status_code)


def decode_json(ctx: CallContext, content: bytes, status: int | None = None) -> object:
    """A reply body's JSON; anything undecodable (bad UTF-8, nesting too deep) is malformed."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        raise malformed(ctx, "body is not JSON", status=status) from None


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
    """A token count as reported: the whole number, or None when absent or not one.

    Negative and absurd counts are kept: `replies.checked` makes such a reply malformed.
    """
    if isinstance(value, bool) or not isinstance(value, int):
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
