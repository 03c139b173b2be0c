"""Every failure becomes the same ProviderError kind for every adapter, and never shows the key.

One table of scripted failures, run against each of the three wire formats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatProvider, ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.gemini import GeminiProvider
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from tests.fakes.provider_server import (
    Behaviour,
    FakeProviderServer,
    Malformed,
    MissingFields,
    PaymentRequired,
    RateLimited,
    ServerError,
    Stall,
    Status,
    Unauthorized,
    refused_url,
)

pytestmark = pytest.mark.anyio

MODEL = "scripted-model"


def _openai(base: str, key: str) -> ChatProvider:
    return OpenAICompatProvider(
        ProviderEndpoint(name="groq", api="openai", base_url=f"{base}/v1", api_key=key)
    )


def _gemini(base: str, key: str) -> ChatProvider:
    return GeminiProvider(
        ProviderEndpoint(name="google", api="gemini", base_url=f"{base}/v1beta", api_key=key)
    )


def _anthropic(base: str, key: str) -> ChatProvider:
    return AnthropicProvider(
        ProviderEndpoint(name="anthropic", api="anthropic", base_url=f"{base}/v1", api_key=key)
    )


Factory = Callable[[str, str], ChatProvider]
ADAPTERS: dict[str, tuple[Factory, str]] = {
    "openai": (_openai, "groq"),
    "gemini": (_gemini, "google"),
    "anthropic": (_anthropic, "anthropic"),
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> tuple[Factory, str]:
    return ADAPTERS[request.param]


async def fail(
    server: FakeProviderServer,
    client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    key: str,
    behaviour: Behaviour | None,
) -> ProviderError:
    if behaviour is not None:
        server.script(MODEL, behaviour)
    factory, _ = adapter
    with pytest.raises(ProviderError) as caught:
        await factory(server.url, key).complete(client, ChatRequest(model=MODEL, prompt="p"))
    return caught.value


def assert_clean_message(error: ProviderError, provider: str, key: str) -> None:
    message = str(error)
    assert key not in message
    assert "\n" not in message
    assert message.startswith(f"{provider}/{MODEL}: ")
    assert len(message) < 320


CASES: list[tuple[str, Behaviour | None, str, int | None, float | None]] = [
    ("429 with seconds", RateLimited(retry_after="7"), "rate_limited", 429, 7.0),
    ("429 without Retry-After", RateLimited(retry_after=None), "rate_limited", 429, None),
    ("500", ServerError(), "server", 500, None),
    ("503", ServerError(status=503, message="overloaded"), "server", 503, None),
    ("401", Unauthorized(), "auth", 401, None),
    ("403", Status(403, "forbidden"), "auth", 403, None),
    ("402", PaymentRequired(), "credit", 402, None),
    (
        "429 insufficient_quota",
        Status(429, "You exceeded your current quota", code="insufficient_quota"),
        "credit",
        429,
        None,
    ),
    (
        "400 credit balance too low",
        Status(400, "Your credit balance is too low to access the API"),
        "credit",
        400,
        None,
    ),
    ("unknown model", None, "not_found", 404, None),
    ("400", Status(400, "messages: field required"), "bad_request", 400, None),
    ("422", Status(422, "unprocessable"), "bad_request", 422, None),
    ("not JSON", Malformed(), "malformed", 200, None),
    ("JSON without the fields", MissingFields(), "malformed", None, None),
]


@pytest.mark.parametrize(
    ("behaviour", "kind", "status", "retry_after"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_status_maps_to_kind(
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
    behaviour: Behaviour | None,
    kind: str,
    status: int | None,
    retry_after: float | None,
) -> None:
    error = await fail(fake_server, client, adapter, api_key, behaviour)

    assert error.kind == kind
    assert error.status == status
    assert error.retry_after == retry_after
    assert_clean_message(error, adapter[1], api_key)
    if status is not None and status != 200:
        assert f"HTTP {status}" in str(error)


async def test_retry_after_http_date(
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)

    error = await fail(
        fake_server, client, adapter, api_key, RateLimited(retry_after=format_datetime(when, True))
    )

    assert error.kind == "rate_limited"
    assert error.retry_after is not None
    assert 25.0 <= error.retry_after <= 31.0


async def test_stalled_provider_times_out(
    fake_server: FakeProviderServer,
    short_client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
) -> None:
    error = await fail(fake_server, short_client, adapter, api_key, Stall(seconds=2.0))

    assert error.kind == "timeout"
    assert error.status is None
    assert_clean_message(error, adapter[1], api_key)


async def test_refused_connection(
    client: httpx.AsyncClient, adapter: tuple[Factory, str], api_key: str
) -> None:
    factory, provider = adapter

    with pytest.raises(ProviderError) as caught:
        await factory(refused_url(), api_key).complete(client, ChatRequest(model=MODEL, prompt="p"))

    assert caught.value.kind == "connection"
    assert_clean_message(caught.value, provider, api_key)


async def test_list_models_failure_is_mapped(
    client: httpx.AsyncClient, adapter: tuple[Factory, str], api_key: str
) -> None:
    factory, provider = adapter

    with pytest.raises(ProviderError) as caught:
        await factory(refused_url(), api_key).list_models(client)

    assert caught.value.kind == "connection"
    assert str(caught.value).startswith(f"{provider} (list models): ")


async def test_key_echoed_by_the_provider_is_redacted(
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
) -> None:
    # Some providers quote the key they rejected; it must not travel on in our message.
    error = await fail(
        fake_server, client, adapter, api_key, Unauthorized(f"Incorrect API key: {api_key}")
    )

    assert error.kind == "auth"
    assert api_key not in str(error)
    assert "[redacted]" in str(error)


async def test_long_bodies_are_cut_short(
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
) -> None:
    error = await fail(fake_server, client, adapter, api_key, ServerError(message="x" * 5000))

    assert len(str(error)) < 320


async def test_no_error_message_ever_contains_the_key(
    fake_server: FakeProviderServer,
    client: httpx.AsyncClient,
    short_client: httpx.AsyncClient,
    adapter: tuple[Factory, str],
    api_key: str,
) -> None:
    # Every scripted failure, each with the key planted in whatever the provider says back.
    factory, _ = adapter
    planted: list[Behaviour] = [
        RateLimited(message=f"slow down {api_key}"),
        ServerError(message=f"boom {api_key} boom"),
        Unauthorized(message=f"bad key {api_key}"),
        PaymentRequired(message=f"no money on {api_key}"),
        Status(400, f"invalid {api_key}"),
        Status(418, raw=f"<html>{api_key}</html>".encode()),
        Malformed(body=f"not json {api_key}".encode()),
        MissingFields({"oops": api_key}),
    ]
    messages = []
    for behaviour in planted:
        messages.append(str(await fail(fake_server, client, adapter, api_key, behaviour)))
    messages.append(str(await fail(fake_server, short_client, adapter, api_key, Stall(2.0))))
    with pytest.raises(ProviderError) as refused:
        await factory(refused_url(), api_key).complete(client, ChatRequest(model=MODEL, prompt="p"))
    messages.append(str(refused.value))

    assert len(messages) == len(planted) + 2
    for message in messages:
        assert api_key not in message
