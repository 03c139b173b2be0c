"""OpenAICompatProvider against the fake server: request shape, reply parsing, model listing."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from tests.fakes.provider_server import FakeProviderServer, MissingFields, Reply

pytestmark = pytest.mark.anyio


def provider(
    server: FakeProviderServer, key: str | None, name: str = "groq", **kwargs: object
) -> OpenAICompatProvider:
    endpoint = ProviderEndpoint(name=name, api="openai", base_url=server.openai_url, api_key=key)
    return OpenAICompatProvider(endpoint, **kwargs)  # type: ignore[arg-type]


async def test_complete_sends_bearer_key_and_chat_body(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("llama-x", Reply("Hello there", prompt_tokens=11, completion_tokens=4))
    request = ChatRequest(
        model="llama-x", prompt="Hi", system="Be brief", max_tokens=50, temperature=0.2
    )

    reply = await provider(fake_server, api_key).complete(client, request)

    sent = fake_server.last_request()
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {api_key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "llama-x",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hi"},
        ],
        "stream": False,
        "max_tokens": 50,
        "temperature": 0.2,
    }
    assert reply.text == "Hello there"
    assert reply.model == "llama-x"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (11, 4, 15)
    assert reply.raw_usage == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


async def test_optional_fields_are_left_out(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", Reply())

    await provider(fake_server, api_key).complete(client, ChatRequest(model="m", prompt="p"))

    assert fake_server.last_request().body == {
        "model": "m",
        "messages": [{"role": "user", "content": "p"}],
        "stream": False,
    }


async def test_openai_itself_gets_max_completion_tokens(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("gpt-x", Reply())

    await provider(fake_server, api_key, name="openai").complete(
        client, ChatRequest(model="gpt-x", prompt="p", max_tokens=7)
    )

    body = fake_server.last_request().body
    assert body["max_completion_tokens"] == 7
    assert "max_tokens" not in body


async def test_no_key_sends_no_authorization_header(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    # Ollama: a local server that needs no key.
    fake_server.script("llama3.2", Reply("local"))

    reply = await provider(fake_server, None, name="ollama").complete(
        client, ChatRequest(model="llama3.2", prompt="p")
    )

    assert reply.text == "local"
    assert "authorization" not in fake_server.last_request().headers


async def test_required_key_missing_fails_before_sending(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, None, require_key=True).complete(
            client, ChatRequest(model="m", prompt="p")
        )

    assert caught.value.kind == "no_credentials"
    assert "groq/m" in str(caught.value)
    assert fake_server.requests == []


async def test_null_content_is_an_empty_answer_failure_that_keeps_its_usage(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    # Reasoning models can spend the whole budget thinking and say nothing.
    body = {
        "model": "r",
        "choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 64, "total_tokens": 68},
    }
    fake_server.script("r", MissingFields(body))

    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, api_key).complete(client, ChatRequest(model="r", prompt="p"))

    assert caught.value.kind == "empty"
    assert caught.value.retryable_elsewhere
    assert "finish reason length" in str(caught.value)
    assert caught.value.usage is not None
    assert (caught.value.usage.prompt_tokens, caught.value.usage.completion_tokens) == (4, 64)


async def test_list_models_reads_data_ids(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.models = ["llama-3.3-70b-versatile", "qwen-qwq-32b"]

    models = await provider(fake_server, api_key).list_models(client)

    assert models == ["llama-3.3-70b-versatile", "qwen-qwq-32b"]
    sent = fake_server.last_request()
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {api_key}"


async def test_list_models_from_a_catalog_url_with_a_bare_array(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    # GitHub Models lists its catalog at /catalog/models as a JSON array.
    fake_server.models = ["openai/gpt-4.1-mini", "meta/llama-3.3-70b-instruct"]
    catalog = f"{fake_server.url}/catalog/models"

    models = await provider(fake_server, api_key, name="github", models_url=catalog).list_models(
        client
    )

    assert models == ["openai/gpt-4.1-mini", "meta/llama-3.3-70b-instruct"]
    assert fake_server.last_request().path == "/catalog/models"


async def test_an_error_object_in_a_200_reply_is_an_error(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    # OpenRouter reports an upstream failure after it has already sent 200.
    error = {"code": 429, "message": f"Provider returned error for {api_key}"}
    fake_server.script("or", MissingFields({"error": error}))

    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, api_key).complete(client, ChatRequest(model="or", prompt="p"))

    assert (caught.value.kind, caught.value.status) == ("rate_limited", 429)
    assert str(caught.value).startswith("groq/or: HTTP 200 with error 429 rate_limited: ")
    assert api_key not in str(caught.value)
