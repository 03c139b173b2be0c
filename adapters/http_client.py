"""The outbound HTTP client: httpx's API on the aiohttp transport, chosen by measurement
(ADR 0012).

Every provider call goes through one `httpx.AsyncClient` per process (per event loop). Its
transport is aiohttp's connection pool (`httpx-aiohttp`) unless `[router] http_transport =
"httpcore"` asks for httpx's own pool. Timeouts keep httpx's meaning on both: `connect` for
the connection, `read` between two reads of the body (for a stream: the stall allowed between
chunks); the attempt's whole deadline is the router's and the wire layer's business.
"""

from __future__ import annotations

import httpx

#: The transports to choose from; the first is the default.
TRANSPORTS = ("aiohttp", "httpcore")
DEFAULT_TRANSPORT = TRANSPORTS[0]
#: Connections kept per process, and how long an idle one stays open.
MAX_CONNECTIONS = 200
KEEPALIVE_SECONDS = 30.0


def timeout_for(seconds: float) -> httpx.Timeout:
    """The per-read timeout for a deadline: connecting gets at most 10 s of it."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def new_client(
    timeout: float | httpx.Timeout, *, transport: str = DEFAULT_TRANSPORT
) -> httpx.AsyncClient:
    """An AsyncClient on the chosen transport, with timeouts always set."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    bounds = timeout if isinstance(timeout, httpx.Timeout) else timeout_for(timeout)
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=bounds)
    if transport == "httpcore":
        return httpx.AsyncClient(timeout=bounds, limits=limits)
    raise ValueError(f"unknown HTTP transport {transport!r} (expected one of {TRANSPORTS})")
