"""The Anthropic adapter: the Messages API, `POST {base_url}/messages`.

Headers `x-api-key` and `anthropic-version: 2023-06-01`; `max_tokens` is required by the API,
so a request without one asks for DEFAULT_MAX_TOKENS.
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
from freegin_ai.adapters.providers.errors_mapping import CallContext
from freegin_ai.adapters.providers.replies import anthropic_usage, checked, unusable_answer

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
#: At most this many pages of the model list are read (1,000 models a page).
MAX_MODEL_PAGES = 10
_PAGE_SIZE = "1000"


class AnthropicProvider:
    """A ChatProvider for Anthropic's Messages API."""

    def __init__(self, endpoint: ProviderEndpoint) -> None:
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self._endpoint.name!r}, base_url={self._base!r})"

    def _headers(self, model: str | None) -> dict[str, str]:
        if not self._endpoint.api_key:
            raise no_credentials(self._endpoint.name, model)
        return {"x-api-key": self._endpoint.api_key, "anthropic-version": ANTHROPIC_VERSION}

    async def complete(self, client: httpx.AsyncClient, request: ChatRequest) -> ChatReply:
        """Send one message; raise ProviderError on any failure."""
        ctx = CallContext(
            provider=self._endpoint.name, model=request.model, secret=self._endpoint.api_key
        )
        headers = self._headers(request.model)
        body: dict[str, object] = {
            "model": request.model,
            "max_tokens": (
                request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
            ),
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        seen: list[ResponseMeta] = []
        data = await send_json(
            client,
            ctx,
            "POST",
            f"{self._base}/messages",
            limits=self._endpoint.limits,
            headers=headers,
            body=body,
            meta=seen,
        )
        reply = as_dict(ctx, data, "$")
        texts = []
        for index, block in enumerate(as_list(ctx, require(ctx, reply, "content", "$"), "content")):
            item = as_dict(ctx, block, f"$.content[{index}]")
            if item.get("type") == "text":
                texts.append(as_str(ctx, require(ctx, item, "text", f"$.content[{index}]"), "text"))
        raw_usage = usage_dict(reply.get("usage"))
        usage = checked(ctx, anthropic_usage(raw_usage))
        text = "".join(texts)
        stop = reply.get("stop_reason")
        failure = unusable_answer(ctx, text, stop if isinstance(stop, str) else None, usage)
        if failure is not None:
            raise failure
        return ChatReply(
            text=text,
            model=reported_model(reply, "model", request.model),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            raw_usage=raw_usage,
            meta=seen[-1] if seen else None,
        )

    async def list_models(self, client: httpx.AsyncClient) -> list[str]:
        """Return `data[].id`, following `has_more`/`last_id` for at most MAX_MODEL_PAGES pages."""
        ctx = CallContext(provider=self._endpoint.name, secret=self._endpoint.api_key)
        headers = self._headers(None)
        ids: list[str] = []
        after: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params = {"limit": _PAGE_SIZE}
            if after:
                params["after_id"] = after
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
            for index, item in enumerate(as_list(ctx, require(ctx, page, "data", "$"), "$.data")):
                entry = as_dict(ctx, item, f"$.data[{index}]")
                ids.append(as_str(ctx, require(ctx, entry, "id", f"$.data[{index}]"), "id"))
            last_id = page.get("last_id")
            if page.get("has_more") is not True or not isinstance(last_id, str) or not last_id:
                break
            after = last_id
        return ids
