"""The default roster seeded on first use, once per (provider, workload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freegin_ai.domain.workloads import Workload


@dataclass(frozen=True, slots=True)
class DefaultModel:
    """One seeded roster entry."""

    provider: str
    workload: Workload
    model: str
    priority: int
    rationale: str
    #: The Hub's pipeline tag and tags (Hugging Face models): which API the model needs.
    pipeline_tag: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def metadata(self) -> dict[str, Any] | None:
        """What the seeded roster entry records about the model."""
        meta: dict[str, Any] = {}
        if self.pipeline_tag:
            meta["pipeline_tag"] = self.pipeline_tag
        if self.tags:
            meta["tags"] = list(self.tags)
        return meta or None


def _entries(
    provider: str, model: str, rationale: str, priorities: dict[Workload, int]
) -> list[DefaultModel]:
    return [DefaultModel(provider, w, model, p, rationale) for w, p in priorities.items()]


W = Workload

#: The guide's HuggingFace table, exactly.
HUGGINGFACE_DEFAULTS: tuple[DefaultModel, ...] = (
    DefaultModel(
        "huggingface",
        W.CHAT,
        "mistralai/Mistral-7B-Instruct-v0.2",
        100,
        "General-purpose chat model",
        "text-generation",
        ("conversational",),  # a chat model: served by the chat router
    ),
    DefaultModel(
        "huggingface",
        W.CODE,
        "bigcode/starcoder",
        100,
        "Specialized for code generation",
        "text-generation",
    ),
    DefaultModel(
        "huggingface",
        W.SUMMARIZATION,
        "facebook/bart-large-cnn",
        100,
        "Optimized for summarization",
        "summarization",
    ),
    DefaultModel(
        "huggingface",
        W.EXTRACTION,
        "tiiuae/falcon-7b-instruct",
        100,
        "Good for information extraction",
        "text-generation",
    ),
    DefaultModel(
        "huggingface",
        W.CREATIVE,
        "mistralai/Mistral-7B-Instruct-v0.2",
        100,
        "Creative writing and ideation",
        "text-generation",
        ("conversational",),
    ),
    DefaultModel(
        "huggingface",
        W.CLASSIFICATION,
        "facebook/bart-large-mnli",
        100,
        "Text classification and NLI",
        "zero-shot-classification",
    ),
)

#: Defaults for the other providers the router supports: priorities from the original tool,
#: model ids updated to ones the providers serve as of 2026-11-24 (the original tool's
#: llama-3.3-70b-versatile, deepseek-chat, gemini-2.0-flash and deepseek-r1:free are retired).
#: Each was checked against the page named beside it (also ProviderSpec.models_docs), and
#: `sync-models` checks each against the provider's own listing.
OTHER_DEFAULTS: tuple[DefaultModel, ...] = (
    # https://console.groq.com/docs/models (production model)
    *_entries(
        "groq",
        "openai/gpt-oss-120b",
        "Fast free-tier open-weight 120B model on Groq",
        {W.CHAT: 10, W.CODE: 10, W.SUMMARIZATION: 20, W.CREATIVE: 15},
    ),
    # https://api-docs.deepseek.com/quick_start/pricing: "use deepseek-flash"; deepseek-v4-flash
    # is an old name now served by DeepSeek-V4.1-Flash.
    *_entries(
        "deepseek",
        "deepseek-flash",
        "Inexpensive general model (DeepSeek-V4.1-Flash, successor of deepseek-chat)",
        {
            W.CHAT: 20,
            W.CODE: 15,
            W.SUMMARIZATION: 25,
            W.EXTRACTION: 20,
            W.CREATIVE: 25,
            W.CLASSIFICATION: 25,
        },
    ),
    # https://ai.google.dev/gemini-api/docs/deprecations (stable, no shutdown date announced)
    *_entries(
        "google",
        "gemini-3.5-flash",
        "Gemini Flash: fast, generous free tier",
        {W.CHAT: 40, W.CODE: 35, W.SUMMARIZATION: 40},
    ),
    # https://openrouter.ai/docs/guides/routing/routers/free-router
    *_entries(
        "openrouter",
        "openrouter/free",
        "OpenRouter's router over its free models",
        {W.CHAT: 50, W.CODE: 50},
    ),
)

DEFAULT_MODELS: tuple[DefaultModel, ...] = HUGGINGFACE_DEFAULTS + OTHER_DEFAULTS


def default_metadata(provider: str, model: str) -> dict[str, Any] | None:
    """What the defaults know about a model, for a catalog seeded before they recorded it."""
    for d in DEFAULT_MODELS:
        if (d.provider, d.model) == (provider, model) and d.metadata:
            return d.metadata
    return None
