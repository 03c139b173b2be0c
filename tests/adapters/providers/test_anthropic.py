"""AnthropicProvider against the fake server: headers, required max_tokens, parsing, paging."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from tests.fakes.provider_server import FakeProviderServer, MissingFields, Reply

pytestmark = pytest.mark.anyio


def provider(server: FakeProviderServer, key: str | None) -> AnthropicProvider:
    return AnthropicProvider(
        ProviderEndpoint(
            name="anthropic", api="anthropic", base_url=server.anthropic_url, api_key=key
        )
    )


async def test_complete_sends_api_key_version_and_default_max_tokens(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("claude-x", Reply("Howdy", prompt_tokens=9, completion_tokens=3))

    reply = await provider(fake_server, api_key).complete(
        client, ChatRequest(model="claude-x", prompt="Hi", system="Be brief", temperature=0.0)
    )

    sent = fake_server.last_request()
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == api_key
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-x",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hi"}],
        "system": "Be brief",
        "temperature": 0.0,
    }
    assert reply.text == "Howdy"
    assert reply.model == "claude-x"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (9, 3, 12)
    assert reply.raw_usage == {"input_tokens": 9, "output_tokens": 3}


async def test_explicit_max_tokens_is_sent(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("c", Reply())

    await provider(fake_server, api_key).complete(
        client, ChatRequest(model="c", prompt="p", max_tokens=77)
    )

    assert fake_server.last_request().body["max_tokens"] == 77


async def test_only_text_blocks_make_the_text(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "x"},
        {"type": "text", "text": "Forty"},
        {"type": "text", "text": "-two"},
    ]
    fake_server.script("c", MissingFields({"content": content, "usage": {"input_tokens": 1}}))

    reply = await provider(fake_server, api_key).complete(
        client, ChatRequest(model="c", prompt="p")
    )

    assert reply.text == "Forty-two"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (1, None, None)


async def test_missing_key_fails_before_sending(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, None).complete(client, ChatRequest(model="c", prompt="p"))

    assert caught.value.kind == "no_credentials"
    assert fake_server.requests == []


async def test_list_models_follows_has_more(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.models = ["claude-a", "claude-b", "claude-c"]
    fake_server.anthropic_page_size = 2

    models = await provider(fake_server, api_key).list_models(client)

    assert models == ["claude-a", "claude-b", "claude-c"]
    sent = fake_server.requests
    assert [r.query.get("after_id") for r in sent] == [None, ["claude-b"]]
    assert all(r.headers["x-api-key"] == api_key for r in sent)
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in sent)
