"""The Hugging Face adapter: chat models through the OpenAI-compatible router, task models
through the `hf-inference` task API.

    chat               POST {base_url}/chat/completions   (router.huggingface.co/v1)
    summarization      POST {task_url}/{model} {"inputs"}  -> [{"summary_text"}]
    zero-shot          POST {task_url}/{model} {"inputs", "parameters": {"candidate_labels"}}
                         -> {"labels", "scores"} or [{"label", "score"}]
    text-generation    POST {task_url}/{model} {"inputs", "parameters"}  -> [{"generated_text"}]

`task_url` is `https://router.huggingface.co/hf-inference/models`, or derived from an
overridden base URL by replacing its trailing `/v1`. Which API a model needs is the request's
`task` (the router reads it from the model's Hub pipeline tag, kept in the catalog). The task
API reports no token counts; a zero-shot answer is its best-scoring label.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.providers._wire import as_dict, as_list, call_context, send_json
from freegin_ai.adapters.providers.base import (
    ChatReply,
    ChatRequest,
    ProviderEndpoint,
    ResponseMeta,
)
from freegin_ai.adapters.providers.errors_mapping import CallContext, malformed
from freegin_ai.adapters.providers.openai_compat import OpenAICompatProvider, bearer_headers
from freegin_ai.adapters.providers.replies import unusable_answer
from freegin_ai.domain.chat import StreamEnd, StreamItem, TextDelta
from freegin_ai.domain.model_api import ModelApi
from freegin_ai.domain.usage import NO_TOKENS

TASK_PATH = "hf-inference/models"


def task_url_for(base_url: str) -> str:
    """The task API's base for a chat base URL: `…/v1` becomes `…/hf-inference/models`."""
    base = base_url.rstrip("/")
    return f"{base.removesuffix('/v1')}/{TASK_PATH}"


class HuggingFaceProvider:
    """A ChatProvider for Hugging Face Inference Providers (chat) and hf-inference (tasks)."""

    def __init__(self, endpoint: ProviderEndpoint) -> None:
        self._endpoint = endpoint
        self._chat = OpenAICompatProvider(endpoint, require_key=True)
        self._task_url = task_url_for(endpoint.base_url)
        #: Tools and JSON output are served by chat models only; task models answer in text.
        self.features = self._chat.features

    def __repr__(self) -> str:
        return f"HuggingFaceProvider(name={self._endpoint.name!r}, task_url={self._task_url!r})"

    async def complete(self, client: HttpClient, request: ChatRequest) -> ChatReply:
        """A chat completion, or one task call for a task model; raise ProviderError."""
        api = _api(request)
        if api is ModelApi.CHAT:
            return await self._chat.complete(client, request)
        ctx = call_context(self._endpoint, request.model)
        headers = bearer_headers(self._endpoint, request.model, required=True)
        body = _task_body(ctx, api, request.task_text(), request)
        url = f"{self._task_url}/{quote(request.model, safe='/')}"
        data = await send_json(
            client, ctx, "POST", url, limits=self._endpoint.limits, headers=headers, body=body
        )
        answer = _task_answer(ctx, api, data)
        failure = unusable_answer(ctx, answer, None, NO_TOKENS)
        if failure is not None:
            raise failure
        return ChatReply(text=answer, model=request.model)

    async def stream(
        self,
        client: HttpClient,
        request: ChatRequest,
        meta: list[ResponseMeta] | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Stream a chat model's answer; a task model's answer comes as one piece."""
        if _api(request) is ModelApi.CHAT:
            async for item in self._chat.stream(client, request, meta):
                yield item
            return
        reply = await self.complete(client, request)
        yield TextDelta(text=reply.text)
        yield StreamEnd(finish_reason="stop", usage=reply.usage, model=reply.model)

    async def list_models(self, client: HttpClient) -> list[str]:
        """The chat models the router lists (task models are not listed there)."""
        return await self._chat.list_models(client)


_APIS = frozenset(ModelApi)


def _api(request: ChatRequest) -> ModelApi:
    """The API the request's task names: chat when it names none (or none we know)."""
    return ModelApi(request.task) if request.task in _APIS else ModelApi.CHAT


def _task_body(ctx: CallContext, api: ModelApi, text: str, request: ChatRequest) -> object:
    parameters: dict[str, object] = {}
    if api is ModelApi.ZERO_SHOT:
        if not request.labels:
            raise ProviderError(
                "bad_request",
                f"{ctx.label}: zero-shot classification needs candidate labels (--labels)",
            )
        parameters = {"candidate_labels": list(request.labels), "multi_label": False}
    elif api is ModelApi.TEXT_GENERATION:
        parameters = {"return_full_text": False}
        if request.max_tokens is not None:
            parameters["max_new_tokens"] = request.max_tokens
        if request.temperature is not None:
            parameters["temperature"] = request.temperature
    return {"inputs": text, "parameters": parameters}


def _task_answer(ctx: CallContext, api: ModelApi, data: object) -> str:
    """The answer text of a task reply."""
    if api is ModelApi.ZERO_SHOT:
        return _best_label(ctx, data)
    key = "summary_text" if api is ModelApi.SUMMARIZATION else "generated_text"
    item = as_list(ctx, data, "$")[0] if isinstance(data, list) and data else data
    value = as_dict(ctx, item, "$[0]").get(key)
    if not isinstance(value, str):
        raise malformed(ctx, f"missing field $[0].{key}")
    return value.strip()


def _best_label(ctx: CallContext, data: object) -> str:
    """The best-scoring label: `{"labels": [...], "scores": [...]}` (labels sorted by score,
    as hf-inference sends it) or a list of `{"label", "score"}` (the newer task schema)."""
    pairs: list[tuple[float, str]] = []
    if isinstance(data, dict):
        labels, scores = data.get("labels"), data.get("scores")
        if isinstance(labels, list) and isinstance(scores, list) and len(labels) == len(scores):
            pairs = [
                (float(s), str(label))
                for label, s in zip(labels, scores, strict=True)
                if isinstance(s, int | float)
            ]
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("score"), int | float):
                pairs.append((float(item["score"]), str(item.get("label", ""))))
    if not pairs:
        raise malformed(ctx, "no labels and scores in the classification reply")
    return max(pairs, key=lambda pair: pair[0])[1]
