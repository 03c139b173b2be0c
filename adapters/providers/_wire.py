"""Wire helpers shared by the adapters: one bounded exchange with a provider (whole, or as
server-sent events), and readers for the fields of its reply.

Every exchange is bounded twice (WireLimits): one deadline for connect, headers and body
together (`deadline`), and a cap on the reply body (`capped_chunks`, `read_body`). A streaming
adapter builds on the same pieces: open `client.stream(...)` inside `deadline(...)` and read
with `capped_chunks`.

A stream (`open_events`) gets the same deadline up to its headers and the same cap on its
whole body; between events its stalls are bounded by the client's read timeout, and its whole
length by the router. `send_json` and `open_events` turn every failure into a ProviderError
(see `errors_mapping`); the readers raise a `malformed` ProviderError when a field is missing
or has the wrong type.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any

import httpx
import msgspec

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.http_client import HttpClient, HttpResponse
from freegin_ai.adapters.providers._sse import SSEDecoder, SSEError, SSEEvent
from freegin_ai.adapters.providers.base import (
    ProviderEndpoint,
    ResponseMeta,
    WireLimits,
    response_meta,
)
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    error_for_exception,
    error_for_status,
    error_in_body,
    malformed,
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

#: Errors of sending or reading that mean "no usable answer came": turned into ProviderErrors.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, UnicodeError)


class deadline:  # lower-case: used as a function, `async with deadline(ctx, seconds)`
    """Cancel whatever runs inside after `seconds` and raise a `timeout` ProviderError.

    One deadline for the whole attempt: httpx's own timeouts are per read, so a reply that
    drips a byte at a time would otherwise never time out. asyncio's timeout as the standard
    library does it (one timer; at expiry the task is cancelled, and that cancellation is
    taken back at the block's end unless someone else asked for one too), entered on every
    attempt, so held in this one plain class: wrapping `asyncio.timeout` costs a second
    object and two more coroutines per call, anyio's scope three times as much, a
    generator-based context manager as much again.
    """

    __slots__ = ("_cancelling", "_ctx", "_expired_now", "_handle", "_seconds", "_task")

    def __init__(self, ctx: CallContext, seconds: float) -> None:
        self._ctx = ctx
        self._seconds = seconds
        self._expired_now = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired_now = True
        self._task.cancel()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        # Our own cancellation, and nobody else's since the block began: the deadline passed.
        if (
            self._expired_now
            and self._task.uncancel() <= self._cancelling
            and kind is asyncio.CancelledError
        ):
            raise self._expired() from None
        if kind is not None and issubclass(kind, TimeoutError):
            raise self._expired() from None  # a timeout from inside counts the same

    def _expired(self) -> ProviderError:
        return ProviderError(
            "timeout", f"{self._ctx.label}: timeout: no complete reply within {self._seconds:g} s"
        )


async def capped_chunks(
    response: HttpResponse, ctx: CallContext, limit: int
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
    response: HttpResponse, ctx: CallContext, limit: int, *, truncate: bool = False
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
    headers = response.headers
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= limit and "content-encoding" not in headers:
        # An uncompressed body of a declared length within the cap: read whole (the
        # transport frames the body by that length, so it cannot grow past it).
        try:
            return await response.aread()
        except TRANSPORT_ERRORS as exc:
            raise error_for_exception(ctx, exc) from None
    parts = [chunk async for chunk in capped_chunks(response, ctx, limit)]
    return b"".join(parts)


def too_large(ctx: CallContext, limit: int, status: int | None = None) -> ProviderError:
    """The failure for a reply body over the cap: a malformed reply, so the router falls back."""
    return malformed(ctx, f"reply larger than {limit} bytes", status=status)


async def send_json(
    client: HttpClient,
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
                headers={"accept": "application/json", **_content_type(body), **headers},
                content=None if body is None else _encode(body),
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


def _content_type(body: object | None) -> dict[str, str]:
    return {} if body is None else {"content-type": "application/json"}


@asynccontextmanager
async def open_events(
    client: HttpClient,
    ctx: CallContext,
    url: str,
    *,
    limits: WireLimits,
    headers: Mapping[str, str],
    body: object,
    params: Mapping[str, str] | None = None,
    meta: list[ResponseMeta] | None = None,
) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """POST a streaming request and yield its server-sent events as they arrive.

    Connect and headers must come within the attempt's deadline; a non-2xx status raises its
    ProviderError before anything is yielded, and so does a 2xx JSON body (an error object, or
    a provider that ignored `stream`). With `meta`, the response's status and rate-limit
    headers are appended to it once the headers are in. Leaving the context closes the
    response, and with it the connection, at once.
    """
    request_headers = {
        "accept": "text/event-stream",
        "content-type": "application/json",
        **headers,
    }
    try:
        async with AsyncExitStack() as stack:
            async with deadline(ctx, limits.deadline_seconds):
                response = await stack.enter_async_context(
                    client.stream(
                        "POST", url, headers=request_headers, content=_encode(body), params=params
                    )
                )
                if not response.is_success:
                    text = await read_body(response, ctx, limits.max_reply_bytes, truncate=True)
                    raise error_for_status(ctx, response, text)
                if response.headers.get("content-type", "").startswith("application/json"):
                    content = await read_body(response, ctx, limits.max_reply_bytes)
                    raise _json_instead_of_events(ctx, content, response.status_code)
                if meta is not None:
                    meta.append(response_meta(response.status_code, response.headers))
            events = _events(ctx, response, limits.max_reply_bytes)
            try:
                yield events
            finally:
                await events.aclose()
    except TRANSPORT_ERRORS as exc:
        raise error_for_exception(ctx, exc) from None


#: How long the end of a body is waited for once its stream has finished.
FINISH_SECONDS = 0.1


async def finish_body(events: AsyncIterator[SSEEvent]) -> None:
    """Read what is left of a finished stream's body (usually only the end of its chunked
    framing), so its connection goes back to the pool instead of being closed; whatever it
    holds is ignored, and a body that does not end at once is left (its connection closed)."""
    with contextlib.suppress(TimeoutError, ProviderError):
        async with asyncio.timeout(FINISH_SECONDS):
            async for _ in events:
                pass


async def _events(
    ctx: CallContext, response: HttpResponse, limit: int
) -> AsyncGenerator[SSEEvent, None]:
    decoder = SSEDecoder()
    try:
        async for chunk in capped_chunks(response, ctx, limit):
            for event in decoder.feed(chunk):
                yield event
    except SSEError as error:
        raise malformed(ctx, str(error), status=response.status_code) from None


def _json_instead_of_events(ctx: CallContext, content: bytes, status: int) -> ProviderError:
    data = decode_json(ctx, content, status)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return error_in_body(ctx, status, data["error"])
    return malformed(ctx, "expected an event stream, got JSON", status=status)


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


def decode_json(ctx: CallContext, content: bytes, status: int | None = None) -> object:
    """A reply body's JSON (msgspec: a quarter of the stdlib's cost per reply); anything
    undecodable (bad UTF-8, nesting too deep, a number out of range) is malformed."""
    try:
        return _decode(content)
    except (msgspec.DecodeError, ValueError, RecursionError):
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


def listed_ids(ctx: CallContext, items: object) -> list[str]:
    """The `id` of every object in a model list's `data` array."""
    ids = []
    for index, item in enumerate(as_list(ctx, items, "$.data")):
        entry = as_dict(ctx, item, f"$.data[{index}]")
        ids.append(as_str(ctx, require(ctx, entry, "id", f"$.data[{index}]"), "id"))
    return ids


def call_context(endpoint: ProviderEndpoint, model: str | None) -> CallContext:
    """What errors of a call to `endpoint` name (and scrub: its key)."""
    return CallContext(provider=endpoint.name, model=model, secret=endpoint.api_key)


def no_credentials(provider: str, model: str | None) -> ProviderError:
    """The error for a provider that needs a key and has none; nothing is sent."""
    label = CallContext(provider=provider, model=model).label
    return ProviderError("no_credentials", f"{label}: no API key configured")
