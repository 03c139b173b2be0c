"""The OpenAI-compatible adapter: chat completions over `POST {base_url}/chat/completions`.

Serves every provider that speaks OpenAI's wire format: OpenAI, Groq, DeepSeek, Together,
OpenRouter, Cerebras, Mistral, GitHub Models, Cloudflare Workers AI, the Hugging Face router
and a local Ollama. The key goes in `Authorization: Bearer`, and only when there is one.
"""

from __future__ import annotations

import httpx

from freegin_ai.adapters.providers._wire import (
    as_dict,
    as_list,
    as_str,
    no_credentials,
    reported_model,
    require,
    send_json,
    usage_dict,
)
from freegin_ai.adapters.providers.base import (
    ChatReply,
    ChatRequest,
    ProviderEndpoint,
    ResponseMeta,
)
from freegin_ai.adapters.providers.errors_mapping import CallContext, error_in_body, malformed
from freegin_ai.adapters.providers.replies import checked, openai_usage, unusable_answer

# OpenAI's own API rejects `max_tokens` for its reasoning and GPT-5 models and wants
# `max_completion_tokens`; the other providers still document `max_tokens`.
_TOKEN_LIMIT_FIELD = {"openai": "max_completion_tokens"}


class OpenAICompatProvider:
    """A ChatProvider for the OpenAI chat-completions wire format.

    `models_url` replaces `{base_url}/models` for providers that list models elsewhere
    (GitHub Models: `https://models.github.ai/catalog/models`, a bare JSON array).
    `require_key` makes a call without a key fail with `no_credentials` before sending.
    """

    def __init__(
        self,
        endpoint: ProviderEndpoint,
        *,
        models_url: str | None = None,
        require_key: bool = False,
    ) -> None:
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")
        self._models_url = models_url or f"{self._base}/models"
        self._require_key = require_key

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(name={self._endpoint.name!r}, base_url={self._base!r})"

    def _headers(self, model: str | None) -> dict[str, str]:
        key = self._endpoint.api_key
        if not key:
            if self._require_key:
                raise no_credentials(self._endpoint.name, model)
            return {}
        return {"authorization": f"Bearer {key}"}

    async def complete(self, client: httpx.AsyncClient, request: ChatRequest) -> ChatReply:
        """Send one chat completion; raise ProviderError on any failure."""
        ctx = CallContext(
            provider=self._endpoint.name, model=request.model, secret=self._endpoint.api_key
        )
        headers = self._headers(request.model)
        messages = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, object] = {"model": request.model, "messages": messages, "stream": False}
        if request.max_tokens is not None:
            body[_TOKEN_LIMIT_FIELD.get(self._endpoint.name, "max_tokens")] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        seen: list[ResponseMeta] = []
        data = await send_json(
            client,
            ctx,
            "POST",
            f"{self._base}/chat/completions",
            limits=self._endpoint.limits,
            headers=headers,
            body=body,
            meta=seen,
        )
        reply = as_dict(ctx, data, "$")
        if "choices" not in reply and isinstance(reply.get("error"), dict):
            raise error_in_body(ctx, 200, as_dict(ctx, reply["error"], "$.error"))
        choices = as_list(ctx, require(ctx, reply, "choices", "$"), "$.choices")
        if not choices:
            raise malformed(ctx, "no choices in reply")
        choice = as_dict(ctx, choices[0], "$.choices[0]")
        message = as_dict(ctx, require(ctx, choice, "message", "$.choices[0]"), "message")
        text = _content_text(ctx, require(ctx, message, "content", "$.choices[0].message"))
        raw_usage = usage_dict(reply.get("usage"))
        usage = checked(ctx, openai_usage(raw_usage))
        finish = choice.get("finish_reason")
        failure = unusable_answer(ctx, text, finish if isinstance(finish, str) else None, usage)
        if failure is not None:
            raise failure
        return ChatReply(
            text=text,
            model=reported_model(reply, "model", request.model),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            raw_usage=raw_usage,
            meta=seen[-1] if seen else None,
        )

    async def list_models(self, client: httpx.AsyncClient) -> list[str]:
        """Return the ids under `data[].id` (or of a bare array of objects with `id`)."""
        ctx = CallContext(provider=self._endpoint.name, secret=self._endpoint.api_key)
        data = await send_json(
            client,
            ctx,
            "GET",
            self._models_url,
            limits=self._endpoint.limits,
            headers=self._headers(None),
        )
        items = (
            data if isinstance(data, list) else require(ctx, as_dict(ctx, data, "$"), "data", "$")
        )
        ids = []
        for index, item in enumerate(as_list(ctx, items, "$.data")):
            entry = as_dict(ctx, item, f"$.data[{index}]")
            ids.append(as_str(ctx, require(ctx, entry, "id", f"$.data[{index}]"), "id"))
        return ids


def _content_text(ctx: CallContext, content: object) -> str:
    """`message.content`: a string, null (nothing said, e.g. only reasoning), or text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = as_list(ctx, content, "$.choices[0].message.content")
    texts = []
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(str(part["text"]))
    return "".join(texts)
