"""Capabilities: whether a model, as its provider lists it, can take a request.

A pure lookup for the router (and anyone else, e.g. the conversation and gateway code that
sends tools and JSON schemas): `unmet(info, needs)` says why a model cannot serve a request,
or None when it can or when the listing does not say (unknown is never a reason to skip).
"""

from __future__ import annotations

from dataclasses import dataclass

from freegin_ai.domain.model_info import ModelInfo

#: A rough count of tokens per character of English text, to judge a prompt's length.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Needs:
    """What a request needs from a model."""

    tools: bool = False
    json_schema: bool = False
    prompt_tokens: int | None = None
    max_tokens: int | None = None


def prompt_token_estimate(*texts: str | None) -> int:
    """A generous estimate of the tokens in some text (rounding up)."""
    return tokens_in_chars(sum(len(t) for t in texts if t))


def tokens_in_chars(chars: int) -> int:
    """The estimate for `chars` characters: the one rule for a prompt's length, shared by
    the listing checks here and the quota's request estimate."""
    return -(-max(0, chars) // CHARS_PER_TOKEN)


def unmet(info: ModelInfo | None, needs: Needs) -> str | None:
    """Why the listed model cannot take the request, or None."""
    if info is None:
        return None
    if needs.tools and info.supports_tools is False:
        return "does not support tools (per its listing)"
    if needs.json_schema and info.supports_json is False:
        return "does not support JSON output (per its listing)"
    limit = info.max_output_tokens
    if needs.max_tokens is not None and limit is not None and needs.max_tokens > limit:
        return f"max_tokens {needs.max_tokens} exceeds its output limit {limit} (per its listing)"
    if info.context_window is not None and needs.prompt_tokens is not None:
        total = needs.prompt_tokens + (needs.max_tokens or 0)
        if total > info.context_window:
            return (
                f"about {total} tokens exceed its context window "
                f"{info.context_window} (per its listing)"
            )
    return None
