"""The Gemini adapter: `POST {base_url}/models/{model}:generateContent`.

The key travels in the `x-goog-api-key` header and never in the URL, so it cannot end up in a
logged URL, an httpx error message or the usage table.
"""

from __future__ import annotations

import httpx

from freegin_ai.adapters.errors import ProviderError
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
from freegin_ai.adapters.providers.errors_mapping import CallContext, malformed, snippet
from freegin_ai.adapters.providers.replies import checked, gemini_usage, unusable_answer
from freegin_ai.domain.usage import TokenUsage

#: At most this many pages of the model list are read (1,000 models a page).
MAX_MODEL_PAGES = 10
_PAGE_SIZE = "1000"


class GeminiProvider:
    """A ChatProvider for Google's Gemini API (generativelanguage.googleapis.com)."""

    def __init__(self, endpoint: ProviderEndpoint) -> None:
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"GeminiProvider(name={self._endpoint.name!r}, base_url={self._base!r})"

    def _headers(self, model: str | None) -> dict[str, str]:
        if not self._endpoint.api_key:
            raise no_credentials(self._endpoint.name, model)
        return {"x-goog-api-key": self._endpoint.api_key}

    async def complete(self, client: httpx.AsyncClient, request: ChatRequest) -> ChatReply:
        """Send one generateContent call; raise ProviderError on any failure."""
        model = request.model.removeprefix("models/")
        ctx = CallContext(provider=self._endpoint.name, model=model, secret=self._endpoint.api_key)
        headers = self._headers(model)
        body: dict[str, object] = {
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}]
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        config: dict[str, object] = {}
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if config:
            body["generationConfig"] = config
        url = f"{self._base}/models/{model}:generateContent"
        seen: list[ResponseMeta] = []
        data = await send_json(
            client,
            ctx,
            "POST",
            url,
            limits=self._endpoint.limits,
            headers=headers,
            body=body,
            meta=seen,
        )
        reply = as_dict(ctx, data, "$")
        metadata = reply.get("usageMetadata")
        usage = checked(ctx, gemini_usage(metadata if isinstance(metadata, dict) else None))
        text, finish = _candidate_text(ctx, reply, usage)
        failure = unusable_answer(ctx, text, finish, usage)
        if failure is not None:
            raise failure
        return ChatReply(
            text=text,
            model=reported_model(reply, "modelVersion", model),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            raw_usage=usage_dict(metadata),
            meta=seen[-1] if seen else None,
        )

    async def list_models(self, client: httpx.AsyncClient) -> list[str]:
        """Return the models that support generateContent, without the `models/` prefix.

        Follows `nextPageToken` for at most MAX_MODEL_PAGES pages.
        """
        ctx = CallContext(provider=self._endpoint.name, secret=self._endpoint.api_key)
        headers = self._headers(None)
        names: list[str] = []
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params = {"pageSize": _PAGE_SIZE}
            if token:
                params["pageToken"] = token
            data = await send_json(
                client,
                ctx,
                "GET",
                f"{self._base}/models",
                limits=self._endpoint.limits,
                headers=headers,
                params=params,
            )
            page = as_dict(ctx, data, "$")
            for index, item in enumerate(as_list(ctx, page.get("models", []), "$.models")):
                entry = as_dict(ctx, item, f"$.models[{index}]")
                if not _generates_content(entry):
                    continue  # embedding and other non-chat models
                name = as_str(ctx, require(ctx, entry, "name", f"$.models[{index}]"), "name")
                names.append(name.removeprefix("models/"))
            next_token = page.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                break
            token = next_token
        return names


def _generates_content(entry: dict[str, object]) -> bool:
    methods = entry.get("supportedGenerationMethods")
    return not isinstance(methods, list) or "generateContent" in methods


def _candidate_text(
    ctx: CallContext, reply: dict[str, object], usage: TokenUsage
) -> tuple[str, str | None]:
    """The text of `candidates[0].content.parts[]` (skipping thought summaries), and the
    candidate's finishReason.

    A candidate cut short (MAX_TOKENS spent on thinking, SAFETY) may carry no parts or
    `content: {}`: its text is empty. A prompt blocked before any candidate is filtered.
    """
    candidates = reply.get("candidates")
    if not candidates:
        feedback = reply.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if isinstance(reason, str):
            raise ProviderError(
                "filtered",
                f"{ctx.label}: prompt blocked: {snippet(reason, ctx.secret)}",
                usage=usage,
            )
        raise malformed(ctx, "no candidates in reply")
    candidate = as_dict(ctx, as_list(ctx, candidates, "$.candidates")[0], "$.candidates[0]")
    finish = candidate.get("finishReason")
    finish_reason = finish if isinstance(finish, str) else None
    content = candidate.get("content")
    if content is None:
        return "", finish_reason
    parts = as_dict(ctx, content, "$.candidates[0].content").get("parts", [])
    texts = []
    for index, part in enumerate(as_list(ctx, parts, "$.candidates[0].content.parts")):
        piece = as_dict(ctx, part, f"$.candidates[0].content.parts[{index}]")
        if piece.get("thought") is True:
            continue
        text = piece.get("text")
        if isinstance(text, str):
            texts.append(text)
    return "".join(texts), finish_reason
