"""The scaffolding every one-format adapter shares: the call context, "send, then parse" for a
whole completion, "open the event stream, then feed the format's parser" for a streamed one,
and fetching the model list page by page.

A format's module subclasses WireAdapter and supplies only what is its own: its headers, its
URLs and its request body (methods), its reply parser and its StreamParser (given to
`__init__`). The exchange itself (deadline, body cap, error mapping, secret scrubbing) is
`_wire`'s.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Protocol

from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.providers._sse import SSEEvent
from freegin_ai.adapters.providers._wire import call_context, finish_body, open_events, send_json
from freegin_ai.adapters.providers.base import (
    ChatReply,
    ChatRequest,
    ProviderEndpoint,
    ResponseMeta,
)
from freegin_ai.adapters.providers.errors_mapping import CallContext
from freegin_ai.domain.chat import StreamEnd, StreamItem

#: At most this many pages of a paged model list are read.
MAX_MODEL_PAGES = 10
#: Models asked for per page of a paged model list.
PAGE_SIZE = "1000"

#: Reads one page of a model list: the ids on it, and the cursor of the next page (None: last).
PageReader = Callable[[CallContext, object], tuple[list[str], str | None]]


class StreamParser(Protocol):
    """A format's stream events to stream items; `done` once the format's end event came."""

    done: bool

    def feed(self, event: SSEEvent) -> list[StreamItem]:
        """The items this event carries (often one, maybe none)."""
        ...

    def end(self) -> StreamEnd:
        """The final item; a stream cut off before it finished raises `interrupted`."""
        ...


class ReplyParser(Protocol):
    """A format's `parse_reply`: a whole reply's decoded JSON as a ChatReply carrying `meta`."""

    def __call__(
        self, ctx: CallContext, data: object, model: str, *, meta: ResponseMeta | None = None
    ) -> ChatReply: ...


class WireAdapter(ABC):
    """A ChatProvider for one wire format, less what is the format's own."""

    #: Query parameters of a streaming call.
    stream_params: ClassVar[Mapping[str, str] | None] = None

    def __init__(
        self,
        endpoint: ProviderEndpoint,
        *,
        parse_reply: ReplyParser,
        stream_parser: Callable[[CallContext, str], StreamParser],
        models_url: str | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._base = endpoint.base_url.rstrip("/")
        self._models_url = models_url or f"{self._base}/models"
        self._parse_reply = parse_reply
        self._stream_parser = stream_parser

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._endpoint.name!r}, base_url={self._base!r})"

    @abstractmethod
    def _headers(self, model: str | None) -> dict[str, str]:
        """The format's auth headers; raises `no_credentials` where a key is needed and none set."""

    @abstractmethod
    def _url(self, model: str, *, stream: bool) -> str:
        """Where a completion for `model` is sent."""

    @abstractmethod
    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The request body in the format's words."""

    def _model(self, request: ChatRequest) -> str:
        """The model as the format names it."""
        return request.model

    async def complete(self, client: HttpClient, request: ChatRequest) -> ChatReply:
        """Send one completion; raise ProviderError on any failure."""
        seen: list[ResponseMeta] = []
        model = self._model(request)
        ctx = call_context(self._endpoint, model)
        data = await send_json(
            client,
            ctx,
            "POST",
            self._url(model, stream=False),
            limits=self._endpoint.limits,
            meta=seen,
            headers=self._headers(model),
            body=self._body(request, stream=False),
        )
        return self._parse_reply(ctx, data, model, meta=seen[-1] if seen else None)

    async def stream(
        self,
        client: HttpClient,
        request: ChatRequest,
        meta: list[ResponseMeta] | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Stream one completion: the parser's items as events come, then its end."""
        model = self._model(request)
        ctx = call_context(self._endpoint, model)
        headers = self._headers(model)
        body = self._body(request, stream=True)
        parser = self._stream_parser(ctx, model)
        async with open_events(
            client,
            ctx,
            self._url(model, stream=True),
            limits=self._endpoint.limits,
            headers=headers,
            body=body,
            params=self.stream_params,
            meta=meta,
        ) as events:
            async for event in events:
                for item in parser.feed(event):
                    yield item
                if parser.done:
                    await finish_body(events)
                    break
        yield parser.end()

    async def _list_models(
        self, client: HttpClient, read: PageReader, *, size: str = "", cursor: str = ""
    ) -> list[str]:
        """The ids `read` finds in the model list. A paged list is asked for PAGE_SIZE models
        a page (the `size` parameter) and followed by the cursor `read` returns (sent as the
        `cursor` parameter), for at most MAX_MODEL_PAGES pages."""
        ctx = call_context(self._endpoint, None)
        headers = self._headers(None)
        ids: list[str] = []
        params = {size: PAGE_SIZE} if size else None
        page_params = params
        for _ in range(MAX_MODEL_PAGES):
            data = await send_json(
                client,
                ctx,
                "GET",
                self._models_url,
                limits=self._endpoint.limits,
                headers=headers,
                params=page_params,
            )
            found, after = read(ctx, data)
            ids += found
            if after is None:
                break
            page_params = {**(params or {}), cursor: after}
        return ids
