"""Hostile replies over real HTTP, for every wire format: one deadline per attempt, a capped
body, token counts within the domain's ranges, no blank answers.

A reply that drips a byte a second must end at the deadline even though every single read is
quick; a body that never ends, or is merely too big, must fail at the cap without the process
holding it all in memory.
"""

from __future__ import annotations

import time

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint, WireLimits
from freegin_ai.adapters.providers.registry import make_provider
from tests.fakes.provider_server import Drip, Endless, FakeProviderServer, Reply, Status

pytestmark = pytest.mark.anyio

MODEL = "hostile-model"
API_PATHS = {
    "openai": ("groq", "/v1"),
    "gemini": ("google", "/v1beta"),
    "anthropic": ("anthropic", "/v1"),
}


@pytest.fixture(params=sorted(API_PATHS))
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def endpoint(
    server: FakeProviderServer, api: str, key: str, limits: WireLimits
) -> ProviderEndpoint:
    name, path = API_PATHS[api]
    return ProviderEndpoint(
        name=name, api=api, base_url=f"{server.url}{path}", api_key=key, limits=limits
    )


async def call(
    server: FakeProviderServer, api: str, key: str, limits: WireLimits
) -> tuple[ProviderError, float]:
    provider = make_provider(endpoint(server, api, key, limits))
    # Per-read timeouts far longer than the drip interval: only the deadline can stop it.
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client:
        started = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            await provider.complete(client, ChatRequest(model=MODEL, prompt="p"))
        return caught.value, time.monotonic() - started


async def test_a_dripping_reply_ends_at_the_deadline(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Drip(interval=0.2))
        error, took = await call(server, api, api_key, WireLimits(deadline_seconds=1.0))

    assert error.kind == "timeout"
    assert "within 1 s" in str(error)
    assert took < 3.0  # the whole body would take a minute at this pace
    assert api_key not in str(error)


async def test_an_endless_body_fails_at_the_cap(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Endless())
        error, took = await call(
            server, api, api_key, WireLimits(deadline_seconds=20.0, max_reply_bytes=1_000_000)
        )

    assert error.kind == "malformed"
    assert "reply larger than 1000000 bytes" in str(error)
    assert took < 10.0


async def test_a_declared_length_over_the_cap_fails_before_reading(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Reply("x" * 50_000))
        error, _ = await call(server, api, api_key, WireLimits(max_reply_bytes=10_000))

    assert error.kind == "malformed"
    assert "larger than 10000 bytes" in str(error)


async def test_a_reply_under_the_cap_is_read_whole(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Reply("y" * 50_000))
        provider = make_provider(
            endpoint(server, api, api_key, WireLimits(max_reply_bytes=200_000))
        )
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await provider.complete(client, ChatRequest(model=MODEL, prompt="p"))

    assert reply.text == "y" * 50_000


async def test_an_error_reply_over_the_cap_keeps_its_status_and_first_words(
    api: str, api_key: str
) -> None:
    body = b'{"error": {"message": "overloaded' + b"!" * 100_000 + b'"}}'
    with FakeProviderServer() as server:
        server.script(MODEL, Status(503, raw=body))
        error, _ = await call(server, api, api_key, WireLimits(max_reply_bytes=4_096))

    assert error.kind == "server"
    assert error.status == 503
    assert "overloaded" in str(error)


async def test_a_reply_nested_too_deep_for_the_json_parser_is_malformed(
    api: str, api_key: str
) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Status(200, raw=b"[" * 100_000 + b"]" * 100_000))
        error, _ = await call(server, api, api_key, WireLimits())

    assert error.kind == "malformed"


@pytest.mark.parametrize("tokens", [2**70, 3_000_000_000, -5])
async def test_token_counts_outside_the_domain_range_make_the_reply_malformed(
    api: str, api_key: str, tokens: int
) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Reply("fine", prompt_tokens=tokens))
        error, _ = await call(server, api, api_key, WireLimits())

    assert error.kind == "malformed"
    assert "must be from 0 to 1000000000" in str(error)


async def test_a_null_answer_is_a_failure_not_a_blank_success(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Reply(text=None))
        error, _ = await call(server, api, api_key, WireLimits())

    assert error.kind == "empty"
    assert "empty answer" in str(error)
    assert error.retryable_elsewhere


async def test_a_whitespace_answer_is_empty_too(api: str, api_key: str) -> None:
    with FakeProviderServer() as server:
        server.script(MODEL, Reply(text=" \n"))
        error, _ = await call(server, api, api_key, WireLimits())

    assert "empty answer" in str(error)
