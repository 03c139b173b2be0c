"""The adapters read replies recorded from the real APIs (tests/data/recorded) right: token
counts with cached and thought tokens, filtered and empty answers as failures, and the
upstream cause an aggregator's error carries. Each reply is served by the fake server over
real HTTP, byte for byte as recorded."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.errors_mapping import CallContext, error_in_body
from freegin_ai.adapters.providers.gemini import GeminiProvider
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from freegin_ai.adapters.providers.replies import anthropic_usage, gemini_usage
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.recorded import recorded

pytestmark = pytest.mark.anyio


def _anthropic(server: FakeProviderServer, key: str) -> AnthropicProvider:
    return AnthropicProvider(
        ProviderEndpoint(name="anthropic", api="anthropic", base_url=server.anthropic_url,
                         api_key=key)
    )  # fmt: skip


def _gemini(server: FakeProviderServer, key: str) -> GeminiProvider:
    return GeminiProvider(
        ProviderEndpoint(name="google", api="gemini", base_url=server.gemini_url, api_key=key)
    )


def _openrouter(server: FakeProviderServer, key: str) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        ProviderEndpoint(name="openrouter", api="openai", base_url=server.openai_url,
                         api_key=key)
    )  # fmt: skip


async def test_anthropic_prompt_tokens_include_cache_reads(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("claude-sonnet-4-5", recorded("anthropic_cache_read").behaviour())

    reply = await _anthropic(fake_server, api_key).complete(
        client, ChatRequest(model="claude-sonnet-4-5", prompt="Please explain what Python is")
    )

    # input_tokens 3 + cache_creation 0 + cache_read 1,111: billed as 1,114 prompt tokens.
    assert (reply.prompt_tokens, reply.cached_tokens) == (1114, 1111)
    assert (reply.completion_tokens, reply.total_tokens) == (406, 1520)
    assert reply.model == "claude-sonnet-4-5-20250929"
    assert reply.text.startswith("# What is Python?")


def test_anthropic_cache_writes_count_as_prompt_tokens_too() -> None:
    # The documented first call of a cached prompt: the cache is written, nothing read yet.
    usage = anthropic_usage(
        {"cache_creation_input_tokens": 188086, "cache_read_input_tokens": 0,
         "input_tokens": 21, "output_tokens": 393}
    )  # fmt: skip
    assert (usage.prompt_tokens, usage.cached_tokens, usage.total_tokens) == (188107, 0, 188500)
    assert anthropic_usage({}).prompt_tokens is None


async def test_gemini_safety_block_with_empty_content_is_a_filtered_failure(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("gemini-2.5-flash", recorded("gemini_safety_blocked").behaviour())

    with pytest.raises(ProviderError) as caught:
        await _gemini(fake_server, api_key).complete(
            client, ChatRequest(model="gemini-2.5-flash", prompt="Tell me a joke")
        )

    error = caught.value
    assert error.kind == "filtered"
    assert error.retryable_elsewhere  # the router tries the next candidate
    assert "SAFETY" in str(error)
    # usageMetadata has no candidatesTokenCount: absent counts are 0, not unknown.
    assert error.usage is not None
    assert (error.usage.prompt_tokens, error.usage.completion_tokens) == (14, 0)
    assert error.usage.total_tokens == 14


async def test_gemini_thoughts_only_reply_bills_thoughts_as_output_and_fails_as_empty(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("gemini-2.5-pro", recorded("gemini_thoughts_only_max_tokens").behaviour())

    with pytest.raises(ProviderError) as caught:
        await _gemini(fake_server, api_key).complete(
            client, ChatRequest(model="gemini-2.5-pro", prompt="capital?", max_tokens=5)
        )

    error = caught.value
    assert error.kind == "empty"
    assert "MAX_TOKENS" in str(error)
    assert error.usage is not None
    assert (error.usage.prompt_tokens, error.usage.completion_tokens) == (15, 2)
    assert (error.usage.reasoning_tokens, error.usage.total_tokens) == (2, 17)


def test_gemini_without_usage_metadata_knows_nothing() -> None:
    usage = gemini_usage(None)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (None,) * 3
    assert gemini_usage({}).completion_tokens == 0


async def test_openrouter_429_keeps_the_upstream_cause(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("z-ai/glm-5.3-flash", recorded("openrouter_429_upstream").behaviour())

    with pytest.raises(ProviderError) as caught:
        await _openrouter(fake_server, api_key).complete(
            client, ChatRequest(model="z-ai/glm-5.3-flash", prompt="hi")
        )

    message = str(caught.value)
    assert caught.value.kind == "rate_limited"
    assert "BaseTen" in message
    assert "temporarily rate-limited upstream" in message
    assert "Provider returned error" not in message  # the wrapper's words say nothing


async def test_openrouter_retired_free_model_is_not_found(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    model = "google/gemini-2.5-flash:free"
    fake_server.script(model, recorded("openrouter_404_no_endpoints").behaviour())

    with pytest.raises(ProviderError) as caught:
        await _openrouter(fake_server, api_key).complete(
            client, ChatRequest(model=model, prompt="x")
        )

    assert caught.value.kind == "not_found"
    assert "No endpoints found" in str(caught.value)


def test_error_in_a_200_body_keeps_the_upstream_cause_and_redacts_it() -> None:
    secret = "sk-or-SECRET-123456"
    ctx = CallContext(provider="openrouter", model="m", secret=secret)
    raw = '{"error": {"message": "upstream overloaded, key ' + secret + '"}}'
    error = error_in_body(
        ctx, 200, {"code": 502, "message": "Provider returned error",
                   "metadata": {"raw": raw, "provider_name": "Chutes"}}
    )  # fmt: skip
    assert error.kind == "server"
    assert "Chutes: upstream overloaded" in str(error)
    assert secret not in str(error)
