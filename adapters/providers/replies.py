"""Reading real replies: token usage per wire format, unusable answers, and an error's cause.

Small pure functions over decoded JSON, so every adapter (and a streaming one) reads replies
the same way. What real providers do that naive parsing gets wrong:

- Anthropic's `input_tokens` excludes the prompt tokens read from or written to its cache:
  the prompt is `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.
- Gemini leaves zero-valued counts out of `usageMetadata` (proto3), so an absent count is 0
  when the object is there at all; `thoughtsTokenCount` is billed output but not part of
  `candidatesTokenCount`.
- A safety-filtered answer (Gemini `SAFETY`, OpenAI `content_filter`, Anthropic `refusal`)
  and an empty answer arrive with status 200: they are failures, so the router falls back.
- OpenRouter wraps an upstream failure as "Provider returned error" and keeps the real reason
  in `error.metadata`: `errors_mapping.upstream_cause` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers._wire import nested_int, optional_int
from freegin_ai.adapters.providers.base import ChatReply, ResponseMeta
from freegin_ai.adapters.providers.errors_mapping import CallContext, malformed
from freegin_ai.domain.chat import ToolCall
from freegin_ai.domain.errors import ValueOutOfRangeError
from freegin_ai.domain.ranges import TOKENS_MAX, check_tokens
from freegin_ai.domain.usage import TokenUsage

#: Finish reasons that mean the provider withheld the answer (per wire format).
FILTERED_FINISH = frozenset(
    {
        # Gemini FinishReason values for blocked output
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        # OpenAI-compatible
        "content_filter",
        # Anthropic stop_reason
        "refusal",
    }
)


def _sum(*parts: int | None) -> int | None:
    """The sum, or None when any part is unknown."""
    total = 0
    for part in parts:
        if part is None:
            return None
        total += part
    return total


def openai_usage(usage: Mapping[str, object]) -> TokenUsage:
    """OpenAI's `usage`: prompt_tokens already includes cached tokens, completion the reasoning."""
    prompt = optional_int(usage.get("prompt_tokens"))
    completion = optional_int(usage.get("completion_tokens"))
    total = optional_int(usage.get("total_tokens"))
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total if total is not None else _sum(prompt, completion),
        cached_tokens=nested_int(usage, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=nested_int(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def anthropic_usage(usage: Mapping[str, object]) -> TokenUsage:
    """Anthropic's `usage`: the prompt is input + cache creation + cache read tokens."""
    uncached = optional_int(usage.get("input_tokens"))
    written = optional_int(usage.get("cache_creation_input_tokens")) or 0
    read = optional_int(usage.get("cache_read_input_tokens"))
    prompt = None if uncached is None else uncached + written + (read or 0)
    completion = optional_int(usage.get("output_tokens"))
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_sum(prompt, completion),
        cached_tokens=read,
    )


def gemini_usage(usage: Mapping[str, object] | None) -> TokenUsage:
    """Gemini's `usageMetadata`: absent counts are 0; thoughts are output.

    With no `usageMetadata` at all nothing is known, and every count stays None.
    """
    if usage is None:
        return TokenUsage()
    prompt = optional_int(usage.get("promptTokenCount")) or 0
    answer = optional_int(usage.get("candidatesTokenCount")) or 0
    thoughts = optional_int(usage.get("thoughtsTokenCount")) or 0
    tools = optional_int(usage.get("toolUsePromptTokenCount")) or 0
    completion = answer + thoughts
    total = optional_int(usage.get("totalTokenCount"))
    return TokenUsage(
        prompt_tokens=prompt + tools,
        completion_tokens=completion,
        total_tokens=total if total is not None else prompt + tools + completion,
        cached_tokens=optional_int(usage.get("cachedContentTokenCount")) or 0,
        reasoning_tokens=thoughts,
    )


def checked(ctx: CallContext, usage: TokenUsage) -> TokenUsage:
    """The usage, when every count is within the domain's range (domain.ranges); a reply
    claiming a negative count or 2^70 tokens is malformed, so the router falls back and
    nothing the read side cannot apply is logged."""
    for name in _TOKEN_FIELDS:
        count = getattr(usage, name)
        if count is None or (type(count) is int and 0 <= count <= TOKENS_MAX):
            continue  # the usual case, without building the check's message
        try:
            check_tokens(name, count)
        except ValueOutOfRangeError as error:
            raise malformed(ctx, str(error)) from None
    return usage


_TOKEN_FIELDS = tuple(item.name for item in fields(TokenUsage))


def unusable_answer(
    ctx: CallContext,
    text: str,
    finish_reason: str | None,
    usage: TokenUsage | None = None,
    *,
    tool_calls: bool = False,
) -> ProviderError | None:
    """The failure for an answer that must not count as a success, or None when it is usable.

    Filtered (the provider withheld or cut the answer for safety) comes first; then an answer
    with no text at all and no tool calls (e.g. every output token spent on thinking). The
    reply's usage rides on the error, so the tokens it cost are still logged.
    """
    filtered = finish_reason in FILTERED_FINISH
    if not filtered and (tool_calls or text.strip()):
        return None
    # A finish reason is the provider's text: one line, of bounded length, in the message.
    shown = " ".join((finish_reason or "").split())[:80]
    reason = f" (finish reason {shown})" if shown else ""
    if filtered:
        return ProviderError(
            "filtered",
            f"{ctx.label}: answer withheld by the provider's filter{reason}",
            usage=usage,
        )
    if not text.strip() and not tool_calls:
        return ProviderError("empty", f"{ctx.label}: empty answer{reason}", usage=usage)
    return None


def usable_reply(
    ctx: CallContext,
    text: str,
    calls: tuple[ToolCall, ...],
    stop: object,
    counts: TokenUsage,
    *,
    model: str,
    finish_reason: str | None,
    raw_usage: dict[str, object],
    meta: ResponseMeta | None,
) -> ChatReply:
    """A parsed answer as a ChatReply, or the failure `unusable_answer` finds in it (raised).

    `stop` is the finish reason in the provider's own words, `finish_reason` in OpenAI's.
    """
    failure = unusable_answer(
        ctx, text, stop if isinstance(stop, str) else None, counts, tool_calls=bool(calls)
    )
    if failure is not None:
        raise failure
    return ChatReply(
        text=text,
        model=model,
        prompt_tokens=counts.prompt_tokens,
        completion_tokens=counts.completion_tokens,
        total_tokens=counts.total_tokens,
        cached_tokens=counts.cached_tokens,
        reasoning_tokens=counts.reasoning_tokens,
        raw_usage=raw_usage,
        tool_calls=calls,
        finish_reason=finish_reason,
        meta=meta,
    )
