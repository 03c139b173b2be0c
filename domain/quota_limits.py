"""The shipped table of published free-tier limits, each with its source and the date checked.

These are defaults: `[limits."provider/model"]` in config.toml overrides an entry, and what a
provider's responses say corrects both (domain.quota). Free tiers change without notice;
re-check an entry against its source before relying on it, and update `checked`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from freegin_ai.domain.quota import PACIFIC_MIDNIGHT, UTC_MIDNIGHT, QuotaLimits

#: OpenRouter counts every `:free` model of an account against one allowance.
OPENROUTER_FREE_BUCKET = ":free"
#: A bucket shared by every model of a provider's account.
ACCOUNT_BUCKET = "*"

_GROQ = "https://console.groq.com/docs/rate-limits"
_OPENROUTER = "https://openrouter.ai/docs/api/reference/limits"
_CEREBRAS = "https://inference-docs.cerebras.ai/support/rate-limits"
_CLOUDFLARE = "https://developers.cloudflare.com/workers-ai/platform/pricing/"
_GEMINI = "https://ai.google.dev/gemini-api/docs/rate-limits"
_CHECKED = "2026-11-24"


@dataclass(frozen=True, slots=True)
class PublishedLimit:
    """One row of the table: a model (or `*` for every model of the provider) and its limits.

    `note` says what the table cannot express (e.g. Cloudflare counts neurons, not tokens).
    """

    provider: str
    model: str
    limits: QuotaLimits
    note: str = ""


def _groq(model: str, rpm: int, rpd: int, tpm: int, tpd: int) -> PublishedLimit:
    return PublishedLimit(
        "groq",
        model,
        QuotaLimits(
            requests_per_minute=rpm,
            requests_per_day=rpd,
            tokens_per_minute=tpm,
            tokens_per_day=tpd,
            source=_GROQ,
            checked=_CHECKED,
        ),
    )


def _cerebras(model: str) -> PublishedLimit:
    return PublishedLimit(
        "cerebras",
        model,
        QuotaLimits(
            requests_per_minute=30,
            requests_per_day=14_400,
            tokens_per_minute=60_000,
            tokens_per_day=1_000_000,
            source=_CEREBRAS,
            checked=_CHECKED,
        ),
        note="the whole max_completion_tokens is reserved up front",
    )


PUBLISHED_LIMITS: tuple[PublishedLimit, ...] = (
    _groq("llama-3.1-8b-instant", 30, 14_400, 6_000, 500_000),
    _groq("llama-3.3-70b-versatile", 30, 1_000, 12_000, 100_000),
    _groq("openai/gpt-oss-120b", 30, 1_000, 8_000, 200_000),
    _groq("openai/gpt-oss-20b", 30, 1_000, 8_000, 200_000),
    PublishedLimit(
        "openrouter",
        OPENROUTER_FREE_BUCKET,
        QuotaLimits(
            requests_per_minute=20,
            requests_per_day=50,
            day_reset=UTC_MIDNIGHT,
            bucket=OPENROUTER_FREE_BUCKET,
            source=_OPENROUTER,
            checked=_CHECKED,
        ),
        note="per account, all :free models together; 1,000/day once $10 of credit was bought",
    ),
    _cerebras("llama3.1-8b"),
    _cerebras("gpt-oss-120b"),
    _cerebras("qwen-3-32b"),
    PublishedLimit(
        "cloudflare",
        "*",
        QuotaLimits(bucket=ACCOUNT_BUCKET, source=_CLOUDFLARE, checked=_CHECKED),
        note="10,000 neurons a day per account, reset 00:00 UTC; neurons per call are not "
        "reported, so only what responses say is enforced",
    ),
    PublishedLimit(
        "google",
        "*",
        QuotaLimits(day_reset=PACIFIC_MIDNIGHT, source=_GEMINI, checked=_CHECKED),
        note="per-project limits are shown in AI Studio, not published: set them in "
        '[limits."google/<model>"]; days reset at midnight Pacific time',
    ),
)

_BY_KEY = {(p.provider, p.model): p for p in PUBLISHED_LIMITS}


@lru_cache(maxsize=4096)
def published_entry(provider: str, model: str) -> PublishedLimit | None:
    """The table's row for a model: the model's own, its shared bucket's, or the provider's."""
    exact = _BY_KEY.get((provider, model))
    if exact is not None:
        return exact
    if provider == "openrouter" and model.endswith(OPENROUTER_FREE_BUCKET):
        return _BY_KEY[("openrouter", OPENROUTER_FREE_BUCKET)]
    return _BY_KEY.get((provider, "*"))


def published_limits(provider: str, model: str) -> QuotaLimits:
    """The published limits of a model (an empty QuotaLimits when nothing is published)."""
    entry = published_entry(provider, model)
    return entry.limits if entry is not None else QuotaLimits()


def quota_bucket(provider: str, model: str) -> str:
    """The counter a model's calls go to: an account-wide bucket, or the model itself."""
    entry = published_entry(provider, model)
    if entry is not None and entry.limits.bucket:
        return entry.limits.bucket
    return model


def day_reset_of(provider: str) -> str:
    """When a provider's days begin: midnight Pacific for Gemini, else midnight UTC."""
    return PACIFIC_MIDNIGHT if provider == "google" else UTC_MIDNIGHT
