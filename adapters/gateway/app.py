"""Gateway: the ASGI application behind `freegin-ai serve`.

A small raw ASGI app (ADR 0013): four routes do not need a framework, and every layer costs
time on the hot path.

    POST /v1/chat/completions     through the router (streaming too)
    GET  /v1/models               workload aliases and every active provider/model, read fresh
    GET  /v1/models/{id}          one of them
    GET  /healthz                 liveness; the only route that never needs the key
    GET  /metrics                 Prometheus text format

The same routes answer without the `/v1` prefix, for clients configured with a bare base URL.
Errors are OpenAI-shaped (wire.ApiError). Every attempt's usage is committed before its answer
is sent (ADR 0010), so there is nothing to flush at shutdown; closing the router afterwards
leaves the read tables current.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import uuid4

import anyio
import msgspec

from freegin_ai.adapters.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from freegin_ai.adapters.gateway.routing import (
    WORKLOAD_ALIASES,
    Target,
    failure_error,
    parse_workload_header,
    resolve_target,
)
from freegin_ai.adapters.gateway.security import BearerCheck
from freegin_ai.adapters.gateway.wire import (
    ApiError,
    ChatCompletionBody,
    Usage,
    chunk,
    completion,
    content_text,
    decode_chat_body,
    model_list,
)
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    GenerateRequest,
    GenerateResult,
    NoCandidateError,
    Router,
)
from freegin_ai.domain.errors import DomainError
from freegin_ai.projections.queries import list_health, list_roster

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
_ENCODER = msgspec.json.Encoder()
_ROUTES = {
    "/v1/chat/completions": "chat",
    "/chat/completions": "chat",
    "/v1/models": "models",
    "/models": "models",
    "/healthz": "healthz",
    "/metrics": "metrics",
}
_METHODS = {
    "chat": b"POST",
    "models": b"GET",
    "model": b"GET",
    "healthz": b"GET",
    "metrics": b"GET",
}


class Gateway:
    """The ASGI app over one router, which the caller opens and closes."""

    def __init__(
        self,
        router: Router,
        *,
        api_key: str | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
        request_timeout: float = 300.0,
        access_log: bool = False,
        metrics: GatewayMetrics | None = None,
        wall_clock: Callable[[], float] = time.time,
        elapsed: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.router = router
        self.auth = BearerCheck(api_key) if api_key else None
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.access_log = access_log
        self.metrics = metrics or GatewayMetrics(self._cooling)
        self.wall_clock = wall_clock
        self.elapsed = elapsed
        # Every provider key and the gateway's own: scrubbed from anything logged.
        self._secrets = [*router.providers.secrets(), *([api_key] if api_key else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan ---------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        await send({"type": "lifespan.startup.complete"})
        while message["type"] != "lifespan.shutdown":
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    # -- HTTP ---------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self.elapsed()
        path: str = scope["path"]
        route = _ROUTES.get(path)
        if route is None and path.startswith(("/v1/models/", "/models/")):
            route = "model"
        status = [0]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if route is None:
                raise ApiError(404, f"no route {path}", code="unknown_url")
            if scope["method"].encode() != _METHODS[route] and not (
                scope["method"] == "HEAD" and _METHODS[route] == b"GET"
            ):
                raise ApiError(
                    405,
                    f"{scope['method']} is not allowed on {path}",
                    code="method_not_allowed",
                    headers=(("Allow", _METHODS[route].decode()),),
                )
            if route != "healthz":
                self._authorize(scope)
            if route == "chat":
                await self._chat(scope, receive, tracked)
            elif route == "models":
                await self._models(tracked)
            elif route == "model":
                await self._model(path.split("/models/", 1)[1], tracked)
            elif route == "healthz":
                await _send_json(tracked, 200, {"status": "ok"})
            else:
                body = self.metrics.exposition()
                await _send(tracked, 200, body, CONTENT_TYPE.encode())
        except ApiError as error:
            if not status[0]:
                await _send_error(tracked, error)
        except Exception as error:
            _log("internal error: " + self._redact("".join(traceback.format_exception(error))))
            if not status[0]:
                await _send_error(tracked, ApiError(500, "internal error", type="server_error"))
        finally:
            label = route if route is not None else "other"
            self.metrics.http.labels(label, str(status[0])).inc()
            if self.access_log:
                ms = (self.elapsed() - started) * 1000
                client = (scope.get("client") or ("-",))[0]
                _log(f'{client} "{scope["method"]} {path}" {status[0]} {ms:.1f}ms')

    def _redact(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _authorize(self, scope: Scope) -> None:
        if self.auth is None:
            return
        if not self.auth.allows(_header(scope, b"authorization")):
            raise ApiError(
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>` with the "
                "gateway's key (FREEGIN_SERVE_API_KEY)",
                code="invalid_api_key",
                headers=(("WWW-Authenticate", "Bearer"),),
            )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "the client disconnected before sending the body")
            part: bytes = message.get("body", b"")
            size += len(part)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(part)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            f"the request body is larger than {self.max_body_bytes} bytes",
            code="request_too_large",
        )

    # -- chat completions -----------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self.elapsed()
        body = decode_chat_body(await self._read_body(scope, receive))
        _check_supported(body)
        workload = parse_workload_header(_text_header(scope, b"x-freegin-workload"))
        fallback = body.fallback or (_text_header(scope, b"x-freegin-fallback") or "").lower() in {
            "1",
            "true",
            "yes",
        }
        target = resolve_target(self.router, body.model, workload, fallback)
        request = _generate_request(body, target, _text_header(scope, b"x-freegin-request-key"))
        self.metrics.in_flight.inc()
        try:
            result = await self._generate(request, target)
        finally:
            self.metrics.in_flight.dec()
        self._observe(result, target, self.elapsed() - started, stream=body.stream)
        created = int(self.wall_clock())
        completion_id = f"chatcmpl-{uuid4().hex}"
        model_name = f"{result.provider}/{result.model}"
        usage = Usage(
            result.prompt_tokens,
            result.completion_tokens,
            result.total_tokens,
            result.cached_tokens,
            result.reasoning_tokens,
        )
        headers = _route_headers(result)
        if not body.stream:
            payload = completion(
                completion_id=completion_id,
                created=created,
                model=model_name,
                text=result.text,
                usage=usage,
            )
            await _send_json(send, 200, payload, headers)
            return
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        events = [
            chunk(
                completion_id=completion_id,
                created=created,
                model=model_name,
                delta={"role": "assistant", "content": result.text},
            ),
            chunk(
                completion_id=completion_id, created=created, model=model_name, finish_reason="stop"
            ),
        ]
        if include_usage:
            events.append(
                chunk(completion_id=completion_id, created=created, model=model_name, usage=usage)
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    *headers,
                ],
            }
        )
        data = b"".join(b"data: " + _ENCODER.encode(e) + b"\n\n" for e in events)
        await send({"type": "http.response.body", "body": data + b"data: [DONE]\n\n"})

    async def _generate(self, request: GenerateRequest, target: Target) -> GenerateResult:
        try:
            with anyio.fail_after(self.request_timeout):
                return await self._with_fallback(request, target)
        except TimeoutError:
            self._count_failure(target, "timeout")
            raise ApiError(
                504,
                f"no answer within {self.request_timeout:g} s",
                type="timeout",
                code="gateway_timeout",
            ) from None
        except DomainError as error:
            # The caller's fault (a prompt that is not UTF-8 text, an impossible model name):
            # nothing was sent or logged.
            raise ApiError(400, str(error)) from None
        except (NoCandidateError, AllAttemptsFailedError) as error:
            api_error = failure_error(self.router, error, self.router.clock())
            if isinstance(error, AllAttemptsFailedError):
                for a in error.attempts:
                    self.metrics.attempts.labels(
                        a.provider, a.model, error.decision.workload.value, a.error_kind or "error"
                    ).inc()
            self._count_failure(target, api_error.code or str(api_error.status))
            raise api_error from None

    async def _with_fallback(self, request: GenerateRequest, target: Target) -> GenerateResult:
        """A pinned `provider/model`, then (when the request asked) the workload's catalog."""
        try:
            return await self.router.generate(request)
        except (NoCandidateError, AllAttemptsFailedError) as error:
            if not (target.provider and target.fallback):
                raise
            first = error
        tried = tuple(first.attempts) if isinstance(first, AllAttemptsFailedError) else ()
        rest = replace(request, provider=None, model=None, fallback=False)
        try:
            result = await self.router.generate(rest)
        except AllAttemptsFailedError as second:
            raise AllAttemptsFailedError([*tried, *second.attempts], second.decision) from None
        except NoCandidateError:
            raise first from None
        return replace(result, attempts=(*tried, *result.attempts))

    def _count_failure(self, target: Target, outcome: str) -> None:
        self.metrics.requests.labels(
            target.provider or "", target.model or "", target.workload.value, outcome
        ).inc()

    def _observe(
        self, result: GenerateResult, target: Target, seconds: float, *, stream: bool
    ) -> None:
        workload = target.workload.value
        route = (result.provider, result.model, workload)
        m = self.metrics
        m.requests.labels(*route, "ok").inc()
        m.latency.labels(*route).observe(seconds)
        if stream:
            m.ttft.labels(*route).observe(seconds)
        for a in result.attempts:
            outcome = "ok" if a.success else (a.error_kind or "error")
            m.attempts.labels(a.provider, a.model, workload, outcome).inc()
        for kind, count in (
            ("prompt", result.prompt_tokens),
            ("completion", result.completion_tokens),
            ("cached", result.cached_tokens),
            ("reasoning", result.reasoning_tokens),
        ):
            if count:
                m.tokens.labels(*route, kind).inc(count)
        if result.cost_micros:
            m.cost.labels(*route).inc(result.cost_micros / 1_000_000)

    # -- models ---------------------------------------------------------------------------

    def _model_entries(self) -> list[tuple[str, str]]:
        with self.router.catalog.reading() as conn:
            rows = list_roster(conn)
        entries = [(alias, "freegin-ai") for alias in WORKLOAD_ALIASES]
        seen = set()
        for row in rows:
            key = f"{row.provider}/{row.model}"
            if key not in seen:
                seen.add(key)
                entries.append((key, row.provider))
        return entries

    async def _models(self, send: Send) -> None:
        await _send_json(send, 200, model_list(self._model_entries(), int(self.wall_clock())))

    async def _model(self, model_id: str, send: Send) -> None:
        for entry in model_list(self._model_entries(), int(self.wall_clock()))["data"]:
            if entry["id"] == model_id:
                await _send_json(send, 200, entry)
                return
        raise ApiError(
            404, f"The model `{model_id}` does not exist", param="model", code="model_not_found"
        )

    def _cooling(self) -> list[tuple[str, str, str]]:
        now = self.router.clock().isoformat()
        with self.router.catalog.reading() as conn:
            rows = list_health(conn)
        return [
            (r.provider, r.model, r.last_error_kind or "error")
            for r in rows
            if r.cooldown_until and r.cooldown_until > now
        ]


def _check_supported(body: ChatCompletionBody) -> None:
    """Parameters this version of the router cannot honour yet: refused, never ignored."""
    if body.tools:
        raise ApiError(400, "tools are not supported by this gateway yet", param="tools")
    fmt = body.response_format
    if fmt is not None and fmt.get("type", "text") != "text":
        raise ApiError(
            400, "response_format is not supported by this gateway yet", param="response_format"
        )
    for index, message in enumerate(body.messages):
        if message.role in ("tool", "function") or message.tool_calls:
            raise ApiError(
                400,
                "tool messages are not supported by this gateway yet",
                param=f"messages[{index}]",
            )


def _generate_request(body: ChatCompletionBody, target: Target, key: str | None) -> GenerateRequest:
    """The router's request: system messages joined, the rest as one prompt."""
    system = [content_text(m) for m in body.messages if m.role in ("system", "developer")]
    turns = [m for m in body.messages if m.role not in ("system", "developer")]
    if not turns:
        raise ApiError(400, "messages must contain a user message", param="messages")
    if len(turns) == 1 and turns[0].role == "user":
        prompt = content_text(turns[0])
    else:
        lines = [f"{m.role.capitalize()}: {content_text(m)}" for m in turns]
        prompt = "\n\n".join(lines) + "\n\nAssistant:"
    return GenerateRequest(
        prompt=prompt,
        workload=target.workload,
        provider=target.provider,
        model=target.model,
        fallback=target.fallback,
        system="\n\n".join(system) or None,
        max_tokens=body.token_limit,
        temperature=body.temperature,
        request_key=key,
    )


def _route_headers(result: GenerateResult) -> list[tuple[bytes, bytes]]:
    tried = ", ".join(
        f"{a.provider}/{a.model} {'ok' if a.success else a.error_kind}" for a in result.attempts
    )
    return [
        (b"x-freegin-provider", _header_value(result.provider)),
        (b"x-freegin-model", _header_value(result.model)),
        (b"x-freegin-attempts", str(len(result.attempts)).encode()),
        (b"x-freegin-tried", _header_value(tried)),
    ]


def _header_value(text: str) -> bytes:
    """Printable ASCII only: a header must never be split or smuggled by a model name."""
    return "".join(c if " " <= c <= "~" else "?" for c in text).encode("ascii")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _text_header(scope: Scope, name: bytes) -> str | None:
    value = _header(scope, name)
    return value.decode("latin-1") if value is not None else None


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | tuple[()] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    headers: list[tuple[bytes, bytes]] | tuple[()] = (),
) -> None:
    await _send(send, status, _ENCODER.encode(payload), JSON, headers)


async def _send_error(send: Send, error: ApiError) -> None:
    headers = [(k.lower().encode(), _header_value(v)) for k, v in error.headers]
    await _send_json(send, error.status, error.body(), headers)


def _log(line: str) -> None:
    stamp = datetime.now().astimezone().strftime("%H:%M:%S")
    print(f"{stamp} freegin-ai serve: {line}", file=sys.stderr, flush=True)
