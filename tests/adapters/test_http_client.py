"""The HTTP clients' own choices (ADR 0019, 0022): proxies from the environment, read once;
certificates checked as httpx checks them, with the bundle loaded only for a TLS connection.

Everything else it does (requests, streams, timeouts, errors) is exercised over real HTTP by
the provider adapter tests, which run on both transports.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from freegin_ai.adapters.http_client import (
    TRANSPORTS,
    AiohttpClient,
    new_client,
    timeout_for,
    transport_for,
)
from tests.fakes.provider_server import FakeProviderServer

TLS = Path(__file__).resolve().parents[1] / "data" / "tls"

PROXY = "http://proxy.internal:3128"


def client(**proxies: str) -> AiohttpClient:
    return AiohttpClient(timeout_for(5.0), proxies=proxies)


def test_no_proxy_configured_means_direct() -> None:
    assert client().proxy_for("https://api.groq.com/openai/v1/chat/completions") is None


def test_the_scheme_picks_the_proxy_and_all_is_the_fallback() -> None:
    c = client(https=PROXY, all="http://all.internal:8080")

    assert c.proxy_for("https://api.groq.com/openai/v1/chat/completions") == PROXY
    assert c.proxy_for("http://localhost:11434/v1/chat/completions") == "http://all.internal:8080"


def test_no_proxy_hosts_connect_directly() -> None:
    c = client(https=PROXY, http=PROXY, no="localhost,.corp.example")

    assert c.proxy_for("http://localhost:11434/api/chat") is None
    assert c.proxy_for("https://llm.corp.example/v1/chat/completions") is None
    assert c.proxy_for("https://user:pw@api.mistral.ai:443/v1/models") == PROXY


def test_the_choice_goes_by_host_whatever_the_path_port_or_credentials() -> None:
    c = client(https=PROXY, no="internal.example")

    assert c.proxy_for("https://api.groq.com/a") == PROXY
    assert c.proxy_for("https://api.groq.com:443/b?c=d") == PROXY
    assert c.proxy_for("https://internal.example/v1") is None
    assert c.proxy_for("https://key@internal.example:8443/v1") is None


def test_the_environment_is_read_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "localhost")
    c = AiohttpClient(timeout_for(5.0))
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:1")

    assert c.proxy_for("https://generativelanguage.googleapis.com/v1beta/models") == PROXY
    assert c.proxy_for("https://localhost:8443/v1") is None


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def https_url() -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (tests/data/tls)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "localhost.pem", TLS / "localhost-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


async def fetch(url: str, transport: str) -> tuple[int, bytes]:
    async with new_client(5.0, transport=transport) as c, c.stream("GET", url) as response:
        return response.status_code, await response.aread()


@pytest.mark.anyio
async def test_a_certificate_nobody_vouches_for_is_refused(
    https_url: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
        await fetch(https_url, transport)


@pytest.mark.anyio
async def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    https_url: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "localhost.pem"))
    assert await fetch(https_url, transport) == (200, b"hello")


@pytest.mark.anyio
async def test_plain_http_never_loads_the_certificate_bundle(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bundle that cannot be loaded: only a TLS connection would notice.
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem")
    with FakeProviderServer() as fake:
        status, body = await fetch(f"{fake.openai_url}/models", transport)
    assert status == 200 and b"fake-model-a" in body


class _ForwardProxy(BaseHTTPRequestHandler):
    """A forward proxy: passes plain-HTTP requests (absolute form) on and tunnels CONNECT,
    noting each target."""

    seen: list[str]

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        target = urllib.parse.urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.netloc, timeout=5)
        upstream.request("GET", target.path or "/")
        reply = upstream.getresponse()
        body = reply.read()
        upstream.close()
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.server.seen.append(f"CONNECT {self.path}")  # type: ignore[attr-defined]
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=5)
        self.send_response(200)
        self.end_headers()
        sockets = [self.connection, upstream]
        try:
            while True:  # relay both ways until either side closes
                readable, _, _ = select.select(sockets, [], [], 5)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on 127.0.0.1: its URL, and the request targets it passed on."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    seen: list[str] = []
    server.seen = seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.anyio
async def test_both_transports_go_through_the_environment_s_proxy_unless_no_proxy_says(
    transport: str, forward_proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, seen = forward_proxy
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with FakeProviderServer() as fake:
        url = f"{fake.openai_url}/models"
        status, body = await fetch(url, transport)
        assert status == 200 and b"fake-model-a" in body
        assert seen == [url]  # the proxy passed the request on
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert (await fetch(url, transport))[0] == 200
    assert seen == [url]  # the host NO_PROXY names was reached directly


@pytest.mark.anyio
async def test_https_goes_through_the_proxy_s_tunnel_with_the_certificate_checked(
    https_url: str,
    transport: str,
    forward_proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, seen = forward_proxy
    clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "localhost.pem"))
    assert await fetch(https_url, transport) == (200, b"hello")
    assert seen == [f"CONNECT {https_url.split('//')[1].rstrip('/')}"]
    # The tunnel carries TLS end to end: a certificate nobody vouches for is still refused.
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
        await fetch(https_url, transport)


@pytest.mark.parametrize(
    ("chosen", "one_shot", "transport"),
    [
        ("auto", True, "httpcore"),
        ("auto", False, "aiohttp"),
        ("aiohttp", True, "aiohttp"),
        ("httpcore", False, "httpcore"),
    ],
)
def test_auto_is_httpx_own_pool_for_one_shot_commands_and_aiohttp_for_the_rest(
    chosen: str, one_shot: bool, transport: str
) -> None:
    assert transport_for(chosen, one_shot=one_shot) == transport


@pytest.mark.anyio
async def test_a_new_client_on_auto_is_the_long_running_kind() -> None:
    client = new_client(5.0, transport="auto")
    try:
        assert isinstance(client, AiohttpClient)
    finally:
        await client.aclose()
