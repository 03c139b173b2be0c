"""GeminiProvider against the fake server: the key in a header (never the URL), parsing, paging."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.gemini import GeminiProvider
from tests.fakes.provider_server import FakeProviderServer, MissingFields, Reply

pytestmark = pytest.mark.anyio


def provider(server: FakeProviderServer, key: str | None) -> GeminiProvider:
    return GeminiProvider(
        ProviderEndpoint(name="google", api="gemini", base_url=server.gemini_url, api_key=key)
    )


async def test_complete_sends_key_in_header_not_url(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("gemini-x", Reply("Bonjour", prompt_tokens=6, completion_tokens=2))
    request = ChatRequest(
        model="gemini-x", prompt="Hi", system="Be brief", max_tokens=64, temperature=0.5
    )

    reply = await provider(fake_server, api_key).complete(client, request)

    sent = fake_server.last_request()
    assert (sent.method, sent.path) == ("POST", "/v1beta/models/gemini-x:generateContent")
    assert sent.headers["x-goog-api-key"] == api_key
    assert "authorization" not in sent.headers
    assert api_key not in sent.raw_url
    assert sent.query == {}
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5},
    }
    assert reply.text == "Bonjour"
    assert reply.model == "gemini-x"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (6, 2, 8)
    assert reply.raw_usage["totalTokenCount"] == 8


async def test_models_prefix_is_stripped_from_the_model_name(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("gemini-y", Reply())

    await provider(fake_server, api_key).complete(
        client, ChatRequest(model="models/gemini-y", prompt="p")
    )

    assert fake_server.last_request().path == "/v1beta/models/gemini-y:generateContent"
    assert "generationConfig" not in fake_server.last_request().body


async def test_text_joins_parts_and_skips_thoughts(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    parts = [{"text": "thinking...", "thought": True}, {"text": "Hel"}, {"text": "lo"}]
    fake_server.script("g", MissingFields({"candidates": [{"content": {"parts": parts}}]}))

    reply = await provider(fake_server, api_key).complete(
        client, ChatRequest(model="g", prompt="p")
    )

    assert reply.text == "Hello"
    assert reply.total_tokens is None


async def test_blocked_prompt_is_filtered_so_the_router_falls_back(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("g", MissingFields({"promptFeedback": {"blockReason": "SAFETY"}}))

    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, api_key).complete(client, ChatRequest(model="g", prompt="p"))

    assert caught.value.kind == "filtered"
    assert caught.value.retryable_elsewhere
    assert "SAFETY" in str(caught.value)


async def test_missing_key_fails_before_sending(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, None).complete(client, ChatRequest(model="g", prompt="p"))

    assert caught.value.kind == "no_credentials"
    assert fake_server.requests == []


async def test_list_models_follows_page_tokens_with_the_key_in_a_header(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.models = [f"gemini-{n}" for n in range(5)]
    fake_server.gemini_page_size = 2

    models = await provider(fake_server, api_key).list_models(client)

    assert models == ["gemini-0", "gemini-1", "gemini-2", "gemini-3", "gemini-4"]
    sent = fake_server.requests
    assert [r.query.get("pageToken") for r in sent] == [None, ["2"], ["4"]]
    for request in sent:
        assert request.path == "/v1beta/models"
        assert request.headers["x-goog-api-key"] == api_key
        assert api_key not in request.raw_url


async def test_list_models_stops_after_a_bounded_number_of_pages(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.models = [f"m{n}" for n in range(50)]
    fake_server.gemini_page_size = 1

    models = await provider(fake_server, api_key).list_models(client)

    assert len(models) == 10
    assert len(fake_server.requests) == 10


async def test_list_models_error_is_mapped_and_redacted(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    # The Gemini list route is not scripted per model, so ask a base URL that answers 404.
    broken = GeminiProvider(
        ProviderEndpoint(
            name="google", api="gemini", base_url=f"{fake_server.url}/nowhere", api_key=api_key
        )
    )
    with pytest.raises(ProviderError) as caught:
        await broken.list_models(client)

    assert caught.value.kind == "not_found"
    assert "google (list models)" in str(caught.value)
    assert api_key not in str(caught.value)
