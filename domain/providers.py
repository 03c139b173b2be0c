"""Provider names: the providers the catalog knows, and the aliases people type."""

from __future__ import annotations

from freegin_ai.domain.errors import UnknownProviderError

#: Canonical provider names, in the order they are listed to people.
PROVIDERS: tuple[str, ...] = (
    "huggingface",
    "google",
    "groq",
    "deepseek",
    "openrouter",
    "openai",
    "anthropic",
    "together",
    "cerebras",
    "mistral",
    "github",
    "cloudflare",
    "ollama",
)

_ALIASES: dict[str, str] = {
    "hf": "huggingface",
    "hugging-face": "huggingface",
    "hugging_face": "huggingface",
    "gemini": "google",
    "google-gemini": "google",
    "claude": "anthropic",
    "together-ai": "together",
    "togetherai": "together",
    "github-models": "github",
    "gh": "github",
    "workers-ai": "cloudflare",
    "cloudflare-workers-ai": "cloudflare",
    "cf": "cloudflare",
    "mistralai": "mistral",
    "or": "openrouter",
}


def parse_provider(text: str) -> str:
    """Return the canonical name for a provider name or alias, case-insensitively."""
    key = text.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PROVIDERS:
        raise UnknownProviderError(
            f"unknown provider {text!r} (expected one of: {', '.join(PROVIDERS)})"
        )
    return key
