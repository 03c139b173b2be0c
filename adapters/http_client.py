"""The outbound HTTP client: a narrow interface (`HttpClient`), served by aiohttp's connection
pool directly, or by httpx's own client (ADR 0019, superseding ADR 0012).

Every provider call goes through one client per process (per event loop) and uses four things
of it: `stream(method, url, headers=, content=, params=)` as an async context manager giving a
response (`status_code`, case-insensitive `headers`, `is_success`, `encoding`, `aread()`,
`aiter_bytes()`), `timeout`, and `aclose()`. That is httpx's own API, so an
`httpx.AsyncClient` is an `HttpClient` as it is (`[router] http_transport = "httpcore"`, a
one-shot command's choice under "auto", and tests that bring their own). `AiohttpClient`, a
long-running process's, puts the same four on an aiohttp session with none of httpx's request
and response models in between: against a fast local server that halves the cost of a call
(`make bench-peers` prints both).

Failures keep httpx's vocabulary on both: `AiohttpClient` raises httpx's exceptions
(`ConnectError`, `ConnectTimeout`, `ReadTimeout`, `ReadError`, `RemoteProtocolError`,
`InvalidURL`, `UnsupportedProtocol`), with aiohttp's as their cause. Timeouts keep httpx's
meaning: `connect` for the connection, `read` between two reads of the body (for a stream:
the stall allowed between chunks); the attempt's whole deadline is the router's and the wire
layer's business.
"""

from __future__ import annotations

import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    import aiohttp

#: The transports a client runs on.
TRANSPORTS = ("aiohttp", "httpcore")
#: What config.toml may say: a transport, or "auto" (the default) to let the process choose.
TRANSPORT_CHOICES = ("auto", *TRANSPORTS)
DEFAULT_TRANSPORT = "auto"
#: Connections kept per process, and how long an idle one stays open.
MAX_CONNECTIONS = 200
KEEPALIVE_SECONDS = 30.0


class HttpResponse(Protocol):
    """What the wire layer reads of a response (httpx.Response has it all)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        ...

    @property
    def is_success(self) -> bool: ...

    @property
    def encoding(self) -> str | None: ...

    async def aread(self) -> bytes: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded (content-encoding undone), chunk by chunk as it arrives."""
        ...


class HttpClient(Protocol):
    """What provider calls use of a client (httpx.AsyncClient has it all)."""

    @property
    def timeout(self) -> httpx.Timeout: ...

    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[HttpResponse]:
        """Send a request; the response's body is read inside the context, closed on leaving."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> HttpClient: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def timeout_for(seconds: float) -> httpx.Timeout:
    """The per-read timeout for a deadline: connecting gets at most 10 s of it."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def transport_for(chosen: str, *, one_shot: bool = False) -> str:
    """The transport a process runs on (ADR 0022): what config.toml names, or for "auto" httpx's
    own pool in a one-shot command (a call or two; aiohttp is never imported, ~0.1 s less) and
    aiohttp's pool in a process that serves many (half the cost of each call, ADR 0019)."""
    if chosen != "auto":
        return chosen
    return "httpcore" if one_shot else "aiohttp"


def new_client(
    timeout: float | httpx.Timeout, *, transport: str = DEFAULT_TRANSPORT, one_shot: bool = False
) -> HttpClient:
    """A client on the chosen transport ("auto": by the process's kind, `transport_for`), with
    timeouts always set."""
    bounds = timeout if isinstance(timeout, httpx.Timeout) else timeout_for(timeout)
    transport = transport_for(transport, one_shot=one_shot)
    if transport == "aiohttp":
        return AiohttpClient(bounds)
    if transport == "httpcore":
        return httpx.AsyncClient(timeout=bounds, transport=PoolPerScheme())
    raise ValueError(f"unknown HTTP transport {transport!r} (expected one of {TRANSPORTS})")


#: The limits of httpx's own pools (the httpcore transport), as aiohttp's session has them.
_LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS,
    max_keepalive_connections=MAX_CONNECTIONS,
    keepalive_expiry=KEEPALIVE_SECONDS,
)


class EnvProxies:
    """The proxies the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY; any
    case), read once when the client is made, with each origin's choice kept: both clients
    choose a request's proxy the same way."""

    def __init__(self, proxies: Mapping[str, str] | None = None) -> None:
        self._proxies = dict(urllib.request.getproxies() if proxies is None else proxies)
        self._choice: dict[tuple[str, str], str | None] = {}

    def for_url(self, url: str) -> str | None:
        """The proxy for `url`, or None to connect directly."""
        if not self._proxies:
            return None
        scheme, _, rest = url.partition("://")
        origin = (scheme.lower(), rest.split("/", 1)[0].rpartition("@")[2])
        if origin not in self._choice:
            host = urllib.parse.urlsplit(f"//{origin[1]}").hostname or ""
            bypass = _bypassed(host, self._proxies.get("no", ""))
            proxy = None if bypass else self._proxies.get(scheme) or self._proxies.get("all")
            self._choice[origin] = proxy
        return self._choice[origin]


class PoolPerScheme(httpx.AsyncBaseTransport):
    """httpx's own connection pool, made on first use for each scheme and proxy: a process
    that only talks plain HTTP (a local Ollama) never loads the CA bundle, which httpx's
    client would load when it is made (30-60 ms, ADR 0022). HTTPS is checked as httpx checks
    it; the proxy is the environment's (`EnvProxies`), as for the aiohttp client (httpx's
    client leaves the environment's proxies to a transport of one's own)."""

    def __init__(self, proxies: EnvProxies | None = None) -> None:
        self._proxies = proxies or EnvProxies()
        self._pools: dict[tuple[str, str | None], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        proxy = self._proxies.for_url(str(request.url))
        pool = self._pools.get((scheme, proxy))
        if pool is None:
            # A pool that never opens TLS needs no certificates to check.
            secure = _opens_tls(str(request.url), proxy)
            pool = httpx.AsyncHTTPTransport(verify=secure, limits=_LIMITS, proxy=proxy)
            self._pools[(scheme, proxy)] = pool
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class AiohttpClient:
    """An HttpClient on one aiohttp session, made on first use inside the event loop that
    uses it (aiohttp binds a session to its loop). Redirects are not followed (a provider API
    answers where it is asked); proxies come from the environment (HTTPS_PROXY, NO_PROXY), as
    with httpx; certificates are checked as httpx checks them (certifi, SSL_CERT_FILE)."""

    def __init__(self, timeout: httpx.Timeout, proxies: Mapping[str, str] | None = None) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._client_timeout: aiohttp.ClientTimeout | None = None
        self._closed = False
        # aiohttp's trust_env looks the proxy up again on every request (about 1 ms): the
        # environment's proxies are read once, and each origin's choice is kept.
        self._proxies = EnvProxies(proxies)
        # Made at the first TLS connection (loading certifi's bundle takes about 50 ms): a
        # process that only talks plain HTTP (a local Ollama) never pays for it.
        self._tls: ssl.SSLContext | None = None

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    async def __aenter__(self) -> AiohttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        import aiohttp

        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
        self._client_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._timeout.pool,
            sock_connect=self._timeout.connect,
            sock_read=self._timeout.read,
        )
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS context of every secure connection: certificates checked as httpx checks
        them (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR)."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def proxy_for(self, url: str) -> str | None:
        """The proxy for `url`, or None to connect directly: as the environment said when the
        client was made (`EnvProxies`)."""
        return self._proxies.for_url(url)

    def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Exchange:
        """Send a request; the response's body is read inside the context, and its connection
        goes back to the pool (or is closed, when the body was not read to its end) on leaving."""
        return _Exchange(self, method, url, content, params, headers)

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return its response once the headers are in."""
        session = self._session or self._open()
        proxy = self.proxy_for(url)
        with _httpx_errors:
            request = session.request(
                method,
                url,
                data=content,
                params=params,
                headers=headers,
                allow_redirects=False,
                timeout=self._client_timeout,
                proxy=proxy,
                ssl=self._tls_context() if _opens_tls(url, proxy) else True,
            )
            return await request.__aenter__()

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _Exchange(AbstractAsyncContextManager["AiohttpResponse"]):
    """One request on an AiohttpClient, as `async with client.stream(...) as response`. A
    plain class: a generator-based context manager costs several times as much per call."""

    __slots__ = ("_args", "_client", "_raw")

    def __init__(
        self,
        client: AiohttpClient,
        method: str,
        url: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self._client = client
        self._args = (method, url, content, params, headers)
        self._raw: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> AiohttpResponse:
        self._raw = raw = await self._client._send(*self._args)
        return AiohttpResponse(raw)

    async def __aexit__(self, *exc: object) -> None:
        if self._raw is not None:
            self._raw.release()


class AiohttpResponse:
    """An aiohttp response as an HttpResponse; failures while reading raise httpx's errors."""

    __slots__ = ("_raw", "headers", "status_code")

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw
        self.status_code: int = raw.status
        self.headers: Mapping[str, str] = raw.headers

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def encoding(self) -> str | None:
        return self._raw.charset

    async def aread(self) -> bytes:
        with _httpx_errors:
            return await self._raw.read()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with _httpx_errors:
            async for chunk in self._raw.content.iter_any():
                yield chunk


def _opens_tls(url: str, proxy: str | None) -> bool:
    """Whether a request opens a TLS connection: to an https URL, or to an https proxy."""
    return url[:6].lower() == "https:" or (proxy or "")[:6].lower() == "https:"


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names the host: `*`, the host itself, or a domain it is under."""
    host = host.lower().rstrip(".")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        name = entry.lstrip(".")
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name  # a port
        if entry == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


class _HttpxErrors:
    """Raise aiohttp's failures as the httpx exception that means the same (`with
    _httpx_errors:`). A plain class: it runs twice a request, and a generator-based
    context manager costs several times as much."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            raise _as_httpx(exc) from exc
        if isinstance(exc, TimeoutError):
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
            # A header value aiohttp refuses (a newline, say).
            raise httpx.LocalProtocolError(str(exc)) from exc


_httpx_errors = _HttpxErrors()


def _as_httpx(exc: aiohttp.ClientError) -> Exception:
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.InvalidURL):
        unsupported = isinstance(exc, aiohttp.NonHttpUrlClientError)
        return httpx.UnsupportedProtocol(message) if unsupported else httpx.InvalidURL(message)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)
