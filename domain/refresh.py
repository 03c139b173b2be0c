"""Refresh: the pure half of `refresh-models`, asking an LLM for new candidate models.

`refresh_prompt` builds the context and the prompt; `refresh_parsing` reads the answer.
This module gathers their public names so callers import from one place.
"""

from __future__ import annotations

from freegin_ai.domain.errors import UnusableResponseError
from freegin_ai.domain.refresh_parsing import (
    MAX_SUGGESTIONS,
    Dropped,
    ParsedSuggestion,
    ParseResult,
    parse_suggestions,
)
from freegin_ai.domain.refresh_prompt import (
    Constraints,
    CurrentModel,
    RecentUsageStats,
    RefreshContext,
    UsageStats,
    UsageTotals,
    build_context,
    build_prompt,
    prompt_hash,
)

__all__ = [
    "MAX_SUGGESTIONS",
    "Constraints",
    "CurrentModel",
    "Dropped",
    "ParseResult",
    "ParsedSuggestion",
    "RecentUsageStats",
    "RefreshContext",
    "UnusableResponseError",
    "UsageStats",
    "UsageTotals",
    "build_context",
    "build_prompt",
    "parse_suggestions",
    "prompt_hash",
]
