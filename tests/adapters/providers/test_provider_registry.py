"""The registry: a spec for every provider, key lookup order, and adapters picked by API kind."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.config import Config, ProviderSettings
from freegin_ai.adapters.errors import ConfigError, ProviderError
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.gemini import GeminiProvider
from freegin_ai.adapters.providers.huggingface import HuggingFaceProvider
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from freegin_ai.adapters.providers.registry import (
    PROVIDER_SPECS,
    key_source,
    make_provider,
    resolve_endpoint,
)
from freegin_ai.domain.defaults import OTHER_DEFAULTS
from freegin_ai.domain.errors import UnknownProviderError
from freegin_ai.domain.providers import PROVIDERS
from tests.fakes.provider_server import FakeProviderServer, Reply


def test_every_provider_has_a_spec() -> None:
    assert set(PROVIDER_SPECS) == set(PROVIDERS)
    for name, spec in PROVIDER_SPECS.items():
        assert spec.api in {"openai", "huggingface", "gemini", "anthropic"}
        # Every entry names the page it was checked against.
        assert spec.docs.startswith("https://")
        assert spec.key_env[0] == f"FREEGIN_{name.upper()}_API_KEY"
        expected_scheme = "http://127.0.0.1" if name == "ollama" else "https://"
        assert spec.base_url.startswith(expected_scheme)
        assert not spec.base_url.endswith("/")


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("huggingface", "HF_TOKEN"),
        ("huggingface", "HUGGINGFACEHUB_API_TOKEN"),
        ("google", "GEMINI_API_KEY"),
        ("google", "GOOGLE_API_KEY"),
        ("groq", "GROQ_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("cerebras", "CEREBRAS_API_KEY"),
        ("mistral", "MISTRAL_API_KEY"),
        ("github", "GITHUB_TOKEN"),
        ("cloudflare", "CLOUDFLARE_API_TOKEN"),
        ("ollama", "OLLAMA_API_KEY"),
    ],
)
def test_customary_key_variables(provider: str, variable: str) -> None:
    endpoint = resolve_endpoint(provider, Config(), {variable: "k-env"}, None)

    assert endpoint.api_key == "k-env"


def test_key_order_freegin_variable_then_customary_then_store() -> None:
    stored = {"google": "k-stored"}
    everything = {
        "FREEGIN_GOOGLE_API_KEY": "k-freegin",
        "GEMINI_API_KEY": "k-gemini",
        "GOOGLE_API_KEY": "k-google",
    }

    def key(env: dict[str, str]) -> str | None:
        return resolve_endpoint("gemini", Config(), env, stored).api_key

    assert key(everything) == "k-freegin"
    assert key({k: v for k, v in everything.items() if k != "FREEGIN_GOOGLE_API_KEY"}) == "k-gemini"
    assert key({"GOOGLE_API_KEY": "k-google"}) == "k-google"
    assert key({"GEMINI_API_KEY": "  "}) == "k-stored"  # blank is unset
    assert resolve_endpoint("google", Config(), {}, None).api_key is None


def test_key_source() -> None:
    stored = {"groq": "k-stored"}

    assert key_source("groq", {"GROQ_API_KEY": "k"}, stored) == "environment"
    assert key_source("groq", {}, stored) == "stored"
    assert key_source("deepseek", {}, stored) == "none"
    assert key_source("ollama", {}, None) == "none"


def test_the_endpoint_never_shows_its_key() -> None:
    endpoint = resolve_endpoint("groq", Config(), {"GROQ_API_KEY": "sk-hidden"}, None)

    assert "sk-hidden" not in repr(endpoint)
    assert "sk-hidden" not in repr(make_provider(endpoint))


def test_unknown_provider() -> None:
    with pytest.raises(UnknownProviderError):
        resolve_endpoint("nosuch", Config(), {}, None)


def test_adapter_is_picked_by_api_kind() -> None:
    def adapter(name: str) -> object:
        return make_provider(resolve_endpoint(name, Config(), {}, None))

    assert isinstance(adapter("google"), GeminiProvider)
    assert isinstance(adapter("anthropic"), AnthropicProvider)
    assert isinstance(adapter("huggingface"), HuggingFaceProvider)
    for name in ("groq", "github", "ollama", "openrouter"):
        assert isinstance(adapter(name), OpenAICompatProvider)


def test_unknown_api_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make_provider(ProviderEndpoint(name="x", api="soap", base_url="http://127.0.0.1:1"))


def test_cloudflare_needs_its_account_id() -> None:
    unfilled = resolve_endpoint("cloudflare", Config(), {}, None)
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        make_provider(unfilled)

    filled = resolve_endpoint("cf", Config(), {"CLOUDFLARE_ACCOUNT_ID": "abc123"}, None)
    assert filled.base_url == "https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1"
    assert isinstance(make_provider(filled), OpenAICompatProvider)

    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        resolve_endpoint("cloudflare", Config(), {"CLOUDFLARE_ACCOUNT_ID": "a/../b"}, None)


def test_a_bad_base_url_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FREEGIN_GROQ_BASE_URL"):
        resolve_endpoint("groq", Config(), {"FREEGIN_GROQ_BASE_URL": "ftp://x"}, None)


@pytest.mark.anyio
async def test_resolved_endpoint_calls_the_override_with_the_stored_key(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    # Base URL from the environment, key from the store: the whole path to one call.
    fake_server.script("llama-3.3-70b-versatile", Reply("routed"))
    config = Config(providers={"groq": ProviderSettings(base_url="http://127.0.0.1:1/v1")})
    env = {"FREEGIN_GROQ_BASE_URL": fake_server.openai_url}

    endpoint = resolve_endpoint("groq", config, env, {"groq": "k-stored"})
    reply = await make_provider(endpoint).complete(
        client, ChatRequest(model="llama-3.3-70b-versatile", prompt="p")
    )

    assert reply.text == "routed"
    assert fake_server.last_request().headers["authorization"] == "Bearer k-stored"


@pytest.mark.anyio
async def test_github_lists_models_from_base_url_when_overridden(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    # The built-in catalog URL only goes with the built-in base URL.
    env = {"FREEGIN_GITHUB_BASE_URL": fake_server.openai_url, "GITHUB_TOKEN": "gh-token"}
    endpoint = resolve_endpoint("github", Config(), env, None)

    models = await make_provider(endpoint).list_models(client)

    assert models == fake_server.models
    assert fake_server.last_request().path == "/v1/models"


@pytest.mark.anyio
async def test_provider_needing_a_key_fails_without_one(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    endpoint = resolve_endpoint(
        "groq", Config(), {"FREEGIN_GROQ_BASE_URL": fake_server.openai_url}, None
    )

    with pytest.raises(ProviderError) as caught:
        await make_provider(endpoint).complete(client, ChatRequest(model="m", prompt="p"))

    assert caught.value.kind == "no_credentials"
    assert fake_server.requests == []


def test_github_models_is_retired_and_never_called_even_with_a_key() -> None:
    spec = PROVIDER_SPECS["github"]
    assert spec.retired == "2026-07-30"
    assert spec.retired_docs.startswith("https://github.com/")
    providers = ProviderSet(Config(), {"GITHUB_TOKEN": "gh-token"}, None)
    reason = providers.unavailable("github")
    assert reason is not None and "retired by the provider on 2026-07-30" in reason
    assert "github" not in providers.available()


def test_seeded_non_hf_defaults_name_the_page_they_were_checked_against() -> None:
    for default in OTHER_DEFAULTS:
        assert PROVIDER_SPECS[default.provider].models_docs.startswith("https://")
    assert {d.model for d in OTHER_DEFAULTS if d.provider == "deepseek"} == {"deepseek-flash"}


@pytest.mark.parametrize("name", ["openai", "anthropic", "mistral", "ollama"])
def test_rechecked_entries_name_their_pages_and_seed_no_defaults(name: str) -> None:
    # Checked again against each provider's documentation (issue 15): where the API and its
    # keys are documented today, and where its models are listed. None of them seeds a
    # default (paid APIs, moving aliases, a local server serving what was pulled), so no
    # seeded default can name a model the provider does not serve.
    spec = PROVIDER_SPECS[name]
    assert spec.checked == "2026-11-25"
    assert spec.docs.startswith("https://") and spec.models_docs.startswith("https://")
    assert "github.com/ollama" not in spec.docs  # the old docs/openai.md moved
    assert name not in {d.provider for d in OTHER_DEFAULTS}
