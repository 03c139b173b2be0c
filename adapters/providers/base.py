"""The provider port: one chat completion over HTTP (whole or streamed), and listing a
provider's models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.domain.chat import (
    GenerateRequest,
    Message,
    ResponseFormat,
    StreamItem,
    Tool,
    ToolCall,
    ToolChoice,
    UserMessage,
    content_text,
    with_first_turn,
)
from freegin_ai.domain.usage import TokenUsage


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """What the router asks a provider for: one model, a conversation, how to answer.

    `prompt` and `system` are the shortcut for a one-turn conversation; `messages` follow
    them. `options` is the pass-through already chosen for this provider (deep-merged into
    the request body).
    """

    model: str
    prompt: str | None = None
    system: str | None = None
    messages: tuple[Message, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The task API a Hugging Face model needs ("summarization", "zero-shot-classification",
    #: "text-generation"); None or "chat" is a chat completion.
    task: str | None = None
    #: The bare text a task model works on (the article, the text to classify); else `prompt`.
    inputs: str | None = None
    #: Candidate labels for zero-shot classification.
    labels: tuple[str, ...] = ()

    @classmethod
    def for_model(
        cls,
        model: str,
        request: GenerateRequest,
        options: Mapping[str, Any] | None = None,
        task: str | None = None,
    ) -> ChatRequest:
        """The provider request for one candidate model of a router request."""
        return cls(
            model=model,
            messages=request.conversation(),
            tools=request.tools,
            tool_choice=request.tool_choice,
            response_format=request.response_format,
            stop=request.stop,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            options=options or {},
            task=task,
            inputs=request.inputs,
            labels=request.labels,
        )

    def conversation(self) -> tuple[Message, ...]:
        """`system` and `prompt` as messages, then `messages`."""
        return with_first_turn(self.system, self.prompt, self.messages)

    def task_text(self) -> str:
        """What a task model works on: `inputs`, else the last user turn's text."""
        if self.inputs is not None:
            return self.inputs
        for message in reversed(self.conversation()):
            if isinstance(message, UserMessage):
                return content_text(message.content)
        return ""


@dataclass(frozen=True, kw_only=True)
class ResponseMeta:
    """What the router needs from a response besides its body: the status, the rate-limit
    headers only (names containing `ratelimit`, and `retry-after*`), and a failed reply's body
    (Gemini names the spent quota there). Kept in memory; only the normalized facts made of it
    (adapters.providers.rate_limits) are logged."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def response_meta(status: int, headers: Mapping[str, str], body: str = "") -> ResponseMeta:
    """The ResponseMeta of a response: rate-limit headers kept, every other header dropped."""
    kept = {
        k.lower(): v
        for k, v in headers.items()
        if "ratelimit" in k.lower() or k.lower().startswith("retry-after")
    }
    return ResponseMeta(status=status, headers=kept, body=body[:20_000])


@dataclass(frozen=True, kw_only=True)
class ChatReply:
    """What a provider answered, with the token counts it reported (None when it did not)."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    #: Prompt tokens served from the provider's cache (part of prompt_tokens).
    cached_tokens: int | None = None
    #: Reasoning ("thinking") tokens (part of completion_tokens).
    reasoning_tokens: int | None = None
    raw_usage: dict[str, object] = field(default_factory=dict)
    #: Tool calls in OpenAI's shape (ids, names, JSON arguments).
    tool_calls: tuple[ToolCall, ...] = ()
    #: Normalized: stop, length, tool_calls or content_filter (None when not reported).
    finish_reason: str | None = None
    #: The response's status and rate-limit headers, for the quota ledger.
    meta: ResponseMeta | None = None

    @property
    def usage(self) -> TokenUsage:
        """The token counts as the one record that travels on to the usage event."""
        return TokenUsage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.total_tokens,
            cached_tokens=self.cached_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )


#: One attempt (connect, headers and body together) must end within this many seconds.
DEFAULT_DEADLINE_SECONDS = 30.0
#: A reply body larger than this is a failed attempt (4 MiB: chat replies are kilobytes).
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class WireLimits:
    """What one attempt may cost: one deadline for the whole exchange, and a cap on the body.

    The deadline is not per read: a reply that drips one byte a second still ends at the
    deadline. The cap counts decoded bytes, so a compressed body cannot slip past it.
    """

    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES


@dataclass(frozen=True, kw_only=True)
class ProviderEndpoint:
    """Where and how to reach one provider: its wire format, base URL and key (if any).

    `api_key` is a secret: it is never logged, stored in events or put in messages.
    """

    name: str
    api: str  # "openai", "huggingface", "gemini" or "anthropic"
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    limits: WireLimits = field(default_factory=WireLimits)


class ChatProvider(Protocol):
    """A provider adapter for one wire format.

    `features` names what it can serve beyond plain text (domain.chat.FEATURES).
    """

    features: frozenset[str]

    async def complete(self, client: HttpClient, request: ChatRequest) -> ChatReply:
        """Send one chat completion; raise ProviderError on any failure."""
        ...

    def stream(
        self,
        client: HttpClient,
        request: ChatRequest,
        meta: list[ResponseMeta] | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Stream one chat completion: text and tool-call deltas, then one StreamEnd.

        Raises ProviderError on any failure, before or during the stream. Closing the
        iterator early closes the connection. With `meta`, the response's status and
        rate-limit headers are appended to it once they are in.
        """
        ...

    async def list_models(self, client: HttpClient) -> list[str]:
        """Return the model ids the provider lists; raise ProviderError on failure."""
        ...
