"""The provider registry: each known provider's wire format, default base URL and key variables.

Where an endpoint comes from, first match wins:

    base URL  FREEGIN_<PROVIDER>_BASE_URL  >  [providers.<name>] base_url  >  built-in default
    key       the provider's environment variables, in order  >  the credential store

Cloudflare's base URL holds the account id: `{account_id}` is filled from
FREEGIN_CLOUDFLARE_ACCOUNT_ID or CLOUDFLARE_ACCOUNT_ID; make_provider refuses a URL that still
has the placeholder, so nothing is sent to a half-built URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.providers.anthropic import AnthropicProvider
from freegin_ai.adapters.providers.base import ChatProvider, ProviderEndpoint
from freegin_ai.adapters.providers.gemini import GeminiProvider
from freegin_ai.adapters.providers.huggingface import HuggingFaceProvider
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider
from freegin_ai.domain.providers import PROVIDERS, parse_provider

KeySource = Literal["environment", "stored", "none"]

#: When the entries below were checked against their documentation (unless one says later).
CHECKED = "2026-11-24"

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class CredentialLookup(Protocol):
    """Anything that returns a stored key by canonical provider name (CredentialStore, a dict)."""

    def get(self, provider: str, /) -> str | None:
        """The stored key, or None."""
        ...


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """What is built in about one provider.

    `docs` is the page the base URL and key variables were checked against, `models_docs`
    the page its seeded default models (or, with none seeded, the models it serves) were
    checked against, both on `checked`. `retired` is the date the provider shut its API down
    (a retired provider is never called).
    """

    name: str
    api: str  # "openai", "huggingface" (chat router + task API), "gemini" or "anthropic"
    base_url: str
    key_env: tuple[str, ...]
    needs_key: bool = True
    models_url: str | None = None  # where to list models when not `{base_url}/models`
    account_env: tuple[str, ...] = ()  # variables filling `{account_id}` in the base URL
    docs: str = ""
    models_docs: str = ""
    retired: str | None = None
    retired_docs: str = ""
    checked: str = CHECKED


#: When OpenAI, Anthropic, Mistral and Ollama were checked again (issue 15).
RECHECKED = "2026-11-25"


def _key_env(name: str, *customary: str) -> tuple[str, ...]:
    return (f"FREEGIN_{name.upper()}_API_KEY", *customary)


_SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="huggingface",
        api="huggingface",
        base_url="https://router.huggingface.co/v1",
        key_env=_key_env("huggingface", "HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"),
        docs="https://huggingface.co/changelog/inference-providers-openai-compatible",
        models_docs="https://huggingface.co/docs/inference-providers/tasks/index",
    ),
    ProviderSpec(
        name="google",
        api="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        key_env=_key_env("google", "GEMINI_API_KEY", "GOOGLE_API_KEY"),
        docs="https://ai.google.dev/api",
        models_docs="https://ai.google.dev/gemini-api/docs/deprecations",
    ),
    ProviderSpec(
        name="groq",
        api="openai",
        base_url="https://api.groq.com/openai/v1",
        key_env=_key_env("groq", "GROQ_API_KEY"),
        docs="https://console.groq.com/docs/openai",
        models_docs="https://console.groq.com/docs/models",
    ),
    ProviderSpec(
        name="deepseek",
        api="openai",
        base_url="https://api.deepseek.com",
        key_env=_key_env("deepseek", "DEEPSEEK_API_KEY"),
        docs="https://api-docs.deepseek.com/",
        models_docs="https://api-docs.deepseek.com/quick_start/pricing",
    ),
    ProviderSpec(
        name="openrouter",
        api="openai",
        base_url="https://openrouter.ai/api/v1",
        key_env=_key_env("openrouter", "OPENROUTER_API_KEY"),
        docs="https://openrouter.ai/docs/quickstart",
        models_docs="https://openrouter.ai/docs/guides/routing/routers/free-router",
    ),
    # No seeded defaults: OpenAI has no free tier, so a person adopts what they pay for.
    # The API reference now lives on developers.openai.com; base URL and
    # `Authorization: Bearer $OPENAI_API_KEY` are unchanged.
    ProviderSpec(
        name="openai",
        api="openai",
        base_url="https://api.openai.com/v1",
        key_env=_key_env("openai", "OPENAI_API_KEY"),
        docs="https://developers.openai.com/api/reference/overview",
        models_docs="https://developers.openai.com/api/docs/models",
        checked=RECHECKED,
    ),
    # No seeded defaults (paid API). The API lives at https://api.anthropic.com with
    # `x-api-key` and `anthropic-version: 2023-06-01`; the adapter adds /messages and the
    # listing /models to this base.
    ProviderSpec(
        name="anthropic",
        api="anthropic",
        base_url="https://api.anthropic.com/v1",
        key_env=_key_env("anthropic", "ANTHROPIC_API_KEY"),
        docs="https://platform.claude.com/docs/en/api/overview",
        models_docs="https://platform.claude.com/docs/en/models/overview",
        checked=RECHECKED,
    ),
    ProviderSpec(
        name="together",
        api="openai",
        base_url="https://api.together.ai/v1",
        key_env=_key_env("together", "TOGETHER_API_KEY"),
        docs="https://docs.together.ai/docs/inference/openai-compatibility",
    ),
    ProviderSpec(
        name="cerebras",
        api="openai",
        base_url="https://api.cerebras.ai/v1",
        key_env=_key_env("cerebras", "CEREBRAS_API_KEY"),
        docs="https://inference-docs.cerebras.ai",
    ),
    # No seeded defaults: its `-latest` aliases move between model generations, so a person
    # picks one (`sync-models` then lists what the key may use). Codestral's own endpoint and
    # key (codestral.mistral.ai, CODESTRAL_API_KEY) are a different service, not this one.
    ProviderSpec(
        name="mistral",
        api="openai",
        base_url="https://api.mistral.ai/v1",
        key_env=_key_env("mistral", "MISTRAL_API_KEY"),
        docs="https://docs.mistral.ai/api/",
        models_docs="https://docs.mistral.ai/getting-started/models/",
        checked=RECHECKED,
    ),
    ProviderSpec(
        name="github",
        api="openai",
        base_url="https://models.github.ai/inference",
        key_env=_key_env("github", "GITHUB_TOKEN"),
        models_url="https://models.github.ai/catalog/models",
        docs="https://docs.github.com/en/rest/models/catalog",
        retired="2026-07-30",
        retired_docs="https://github.com/orgs/community/discussions/203602",
    ),
    ProviderSpec(
        name="cloudflare",
        api="openai",
        base_url="https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1",
        key_env=_key_env("cloudflare", "CLOUDFLARE_API_TOKEN"),
        account_env=("FREEGIN_CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_ACCOUNT_ID"),
        docs="https://developers.cloudflare.com/workers-ai/configuration/open-ai-compatibility",
    ),
    # No seeded defaults: a local server serves only the models pulled into it (its /v1/models
    # lists them). Locally no key is needed (sent, it is ignored); OLLAMA_API_KEY is the key
    # for Ollama's cloud (base URL https://ollama.com/v1), for those who point it there. The
    # docs moved from the repository's docs/openai.md to docs.ollama.com.
    ProviderSpec(
        name="ollama",
        api="openai",
        base_url="http://127.0.0.1:11434/v1",
        key_env=_key_env("ollama", "OLLAMA_API_KEY"),
        needs_key=False,
        docs="https://docs.ollama.com/api/openai-compatibility",
        models_docs="https://docs.ollama.com/api/openai-compatibility",
        checked=RECHECKED,
    ),
)

#: Every provider in domain.providers.PROVIDERS, by canonical name.
PROVIDER_SPECS: Mapping[str, ProviderSpec] = {spec.name: spec for spec in _SPECS}

if set(PROVIDER_SPECS) != set(PROVIDERS):  # pragma: no cover - caught by the registry tests
    raise RuntimeError("the provider registry and domain.providers.PROVIDERS disagree")


def get_spec(name: str) -> ProviderSpec:
    """The built-in spec for a provider name or alias (raises UnknownProviderError)."""
    return PROVIDER_SPECS[parse_provider(name)]


def base_url_env(name: str) -> str:
    """The variable overriding a provider's base URL, e.g. FREEGIN_GROQ_BASE_URL."""
    return f"FREEGIN_{parse_provider(name).upper()}_BASE_URL"


def key_source(
    name: str, env: Mapping[str, str], credentials: CredentialLookup | None
) -> KeySource:
    """Where the key for a provider would come from: the environment, the store, or nowhere."""
    spec = get_spec(name)
    if _env_key(spec, env) is not None:
        return "environment"
    if credentials is not None and credentials.get(spec.name):
        return "stored"
    return "none"


def resolve_endpoint(
    name: str,
    config: Config,
    env: Mapping[str, str],
    credentials: CredentialLookup | None,
) -> ProviderEndpoint:
    """The endpoint to call for a provider, with every override applied."""
    spec = get_spec(name)
    variable = base_url_env(spec.name)
    override = env.get(variable, "").strip()
    if override:
        if not override.startswith(("http://", "https://")):
            raise ConfigError(f"{variable}: expected an http:// or https:// URL")
        base_url = override.rstrip("/")
    else:
        base_url = config.provider(spec.name).base_url or spec.base_url
    key = _env_key(spec, env)
    if key is None and credentials is not None:
        key = credentials.get(spec.name) or None
    return ProviderEndpoint(
        name=spec.name,
        api=spec.api,
        base_url=_fill_account(spec, base_url, env),
        api_key=key,
        limits=config.limits,
    )


def make_provider(endpoint: ProviderEndpoint) -> ChatProvider:
    """The adapter for an endpoint's wire format."""
    if "{" in endpoint.base_url or "}" in endpoint.base_url:
        hint = ""
        if endpoint.name in PROVIDER_SPECS and PROVIDER_SPECS[endpoint.name].account_env:
            hint = f" (set {PROVIDER_SPECS[endpoint.name].account_env[0]})"
        raise ConfigError(f"{endpoint.name}: base URL has an unfilled placeholder{hint}")
    spec = PROVIDER_SPECS.get(endpoint.name)
    if endpoint.api == "openai":
        models_url = None
        if spec is not None and spec.models_url and _is_default_url(spec, endpoint.base_url):
            models_url = spec.models_url
        return OpenAICompatProvider(
            endpoint,
            models_url=models_url,
            require_key=spec.needs_key if spec is not None else False,
        )
    if endpoint.api == "huggingface":
        return HuggingFaceProvider(endpoint)
    if endpoint.api == "gemini":
        return GeminiProvider(endpoint)
    if endpoint.api == "anthropic":
        return AnthropicProvider(endpoint)
    raise ConfigError(f"{endpoint.name}: unknown API kind {endpoint.api!r}")


def _env_key(spec: ProviderSpec, env: Mapping[str, str]) -> str | None:
    for variable in spec.key_env:
        value = env.get(variable, "").strip()
        if value:
            return value
    return None


def _fill_account(spec: ProviderSpec, base_url: str, env: Mapping[str, str]) -> str:
    if "{account_id}" not in base_url:
        return base_url
    for variable in spec.account_env:
        value = env.get(variable, "").strip()
        if value:
            if not _ACCOUNT_ID.match(value):
                raise ConfigError(f"{variable}: expected an account id (letters, digits, -, _)")
            return base_url.replace("{account_id}", value)
    return base_url


def _is_default_url(spec: ProviderSpec, base_url: str) -> bool:
    return base_url.rstrip("/") == spec.base_url.rstrip("/")
