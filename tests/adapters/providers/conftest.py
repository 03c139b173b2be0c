"""Fixtures for the provider adapter tests: the fake provider server and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from freegin_ai.adapters.http_client import TRANSPORTS, HttpClient, new_client
from tests.fakes.provider_server import FakeProviderServer

#: Timeout for calls expected to answer; the stalling fake sleeps far longer than SHORT_TIMEOUT.
TIMEOUT = httpx.Timeout(5.0)
SHORT_TIMEOUT = httpx.Timeout(0.3)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def api_key() -> str:
    """A key distinctive enough that finding it in any text is never a coincidence."""
    return "sk-test-SECRET-9f8e7d6c5b4a3210"


@pytest.fixture
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every adapter test runs on each outbound transport (ADR 0019)."""
    name: str = request.param
    return name


@pytest.fixture
async def client(transport: str) -> AsyncIterator[HttpClient]:
    async with new_client(TIMEOUT, transport=transport) as http:
        yield http


@pytest.fixture
async def short_client(transport: str) -> AsyncIterator[HttpClient]:
    async with new_client(SHORT_TIMEOUT, transport=transport) as http:
        yield http
