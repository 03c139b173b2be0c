"""Completions: `POST /v1/chat/completions` through the router, whole or streamed.

A streamed answer is sent as OpenAI's server-sent events: a first chunk with the assistant's
role, one chunk per text or tool-call delta, a chunk with the finish reason, the usage chunk
when `stream_options.include_usage` asks, then `data: [DONE]`. Nothing is sent before the
first delta, so a failure that makes the router fall back (or give up) before it still gets
a proper HTTP status. A provider failing after it ends the stream with an `error` event (the
SDKs raise it). A client that goes away mid-stream cancels the provider's call at once, and
the router still logs the attempt (finish reason `cancelled`).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import uuid4

import anyio
import msgspec

from freegin_ai.adapters.gateway.asgi import (
    Receive,
    Scope,
    Send,
    ascii_header,
    header_value,
    send_json,
)
from freegin_ai.adapters.gateway.metrics import GatewayMetrics
from freegin_ai.adapters.gateway.routing import (
    Target,
    failure_error,
    parse_workload_header,
    resolve_target,
)
from freegin_ai.adapters.gateway.wire import (
    ApiError,
    ChatCompletionBody,
    chunk,
    completion,
    decode_chat_body,
    invalid_request,
    tool_call_delta,
)
from freegin_ai.adapters.router import (
    AllAttemptsFailedError,
    Attempt,
    ChatStream,
    GenerateResult,
    NoCandidateError,
    Router,
    StreamInterruptedError,
    StreamOutput,
)
from freegin_ai.domain.chat import GenerateRequest, InvalidRequestError, TextDelta, Usage
from freegin_ai.domain.errors import DomainError

T = TypeVar("T")
_ENCODER = msgspec.json.Encoder()
_TRUE = {"1", "true", "yes"}


class Completions:
    """Answers chat completions with one router."""

    def __init__(
        self,
        router: Router,
        metrics: GatewayMetrics,
        *,
        request_timeout: float,
        wall_clock: Callable[[], float],
        elapsed: Callable[[], float],
    ) -> None:
        self.router = router
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.wall_clock = wall_clock
        self.elapsed = elapsed
        # Completion ids: unique per process start, then a counter (no system call each).
        self._id_prefix = f"chatcmpl-{uuid4().hex[:16]}"
        self._ids = itertools.count(1)

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):08x}"

    async def handle(self, scope: Scope, receive: Receive, send: Send, raw: bytes) -> None:
        started = self.elapsed()
        body = decode_chat_body(raw)
        workload = parse_workload_header(header_value(scope, b"x-freegin-workload"))
        fallback = body.fallback or (header_value(scope, b"x-freegin-fallback") or "") in _TRUE
        target = resolve_target(self.router, body.model, workload, fallback)
        request = generate_request(
            body,
            target,
            header_value(scope, b"x-freegin-request-key"),
            wait=self._wait(header_value(scope, b"x-freegin-wait")),
        )
        self.metrics.in_flight.inc()
        try:
            if body.stream:
                await self._stream(body, request, target, started, receive, send)
            else:
                await self._whole(request, target, started, send)
        finally:
            self.metrics.in_flight.dec()

    def _wait(self, value: str | None) -> float | None:
        """`x-freegin-wait: SECONDS`: how long the router may wait for a candidate out of
        quota or cooling down (never past the request's own timeout)."""
        if value is None or not value.strip():
            return None
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds < float("inf"):
            raise ApiError(
                400, "x-freegin-wait must be a number of seconds", param="x-freegin-wait"
            )
        return min(seconds, self.request_timeout)

    # -- whole answers ------------------------------------------------------------------------

    async def _whole(
        self, request: GenerateRequest, target: Target, started: float, send: Send
    ) -> None:
        result, tried = await self._routed(self.router.generate, request, target)
        attempts = (*tried, *result.attempts)
        self._observe(result, target, self.elapsed() - started, ttft=None, attempts=attempts)
        payload = completion(
            completion_id=self._new_id(),
            created=int(self.wall_clock()),
            model=f"{result.provider}/{result.model}",
            text=result.text,
            tool_calls=result.tool_calls,
            usage=_usage(result),
            finish_reason=result.finish_reason,
        )
        await send_json(send, 200, payload, route_headers(result.provider, result.model, attempts))

    # -- streams ------------------------------------------------------------------------------

    async def _stream(
        self,
        body: ChatCompletionBody,
        request: GenerateRequest,
        target: Target,
        started: float,
        receive: Receive,
        send: Send,
    ) -> None:
        (stream, first), tried = await self._routed(_first_item, request, target, self.router)
        ttft = self.elapsed() - started
        candidate = stream.candidate
        provider, model = (candidate.provider, candidate.model) if candidate else ("", "")
        name = f"{provider}/{model}"
        completion_id, created = self._new_id(), int(self.wall_clock())

        def event(payload: dict[str, Any]) -> bytes:
            return b"data: " + _ENCODER.encode(payload) + b"\n\n"

        def delta(content: dict[str, Any]) -> bytes:
            return event(
                chunk(completion_id=completion_id, created=created, model=name, delta=content)
            )

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # proxies must not hold the stream back
                    (b"x-freegin-provider", ascii_header(provider)),
                    (b"x-freegin-model", ascii_header(model)),
                ],
            }
        )
        result: GenerateResult | None = None
        ending = b""
        outcome = "client_disconnected"
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            try:
                await _body(send, delta({"role": "assistant", "content": ""}))
                item: StreamOutput = first
                while not isinstance(item, GenerateResult):
                    if isinstance(item, TextDelta):
                        await _body(send, delta({"content": item.text}))
                    else:
                        await _body(send, delta(tool_call_delta(item)))
                    item = await anext(stream)
                result = item
            except StreamInterruptedError as error:
                outcome = "interrupted"
                ending = event(
                    {
                        "error": {
                            "message": str(error),
                            "type": "upstream_error",
                            "param": None,
                            "code": "stream_interrupted",
                        }
                    }
                )
            finally:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()  # a client gone: the provider's call ends now
            group.cancel_scope.cancel()
        if result is not None:
            attempts = (*tried, *result.attempts)
            self._observe(result, target, self.elapsed() - started, ttft=ttft, attempts=attempts)
            final = chunk(
                completion_id=completion_id,
                created=created,
                model=name,
                finish_reason=result.finish_reason or "stop",
            )
            ending = event(final)
            if body.include_usage:
                ending += event(
                    chunk(
                        completion_id=completion_id,
                        created=created,
                        model=name,
                        usage=_usage(result),
                    )
                )
            ending += b"data: [DONE]\n\n"
        else:
            self._count(target, provider, model, outcome)
        await send({"type": "http.response.body", "body": ending, "more_body": False})

    # -- routing, fallback, failures ------------------------------------------------------------

    async def _routed(
        self,
        call: Callable[..., Awaitable[T]],
        request: GenerateRequest,
        target: Target,
        *args: Any,
    ) -> tuple[T, tuple[Attempt, ...]]:
        """`call(request)`; for a pin that asked for fallback, then the workload's catalog.

        Returns the answer and the attempts that failed before the call that answered;
        failures become ApiErrors.
        """
        try:
            with anyio.fail_after(self.request_timeout):
                try:
                    return await call(request, *args), ()
                except (NoCandidateError, AllAttemptsFailedError) as error:
                    if not (target.provider and target.fallback):
                        raise
                    first = error
                tried = tuple(first.attempts) if isinstance(first, AllAttemptsFailedError) else ()
                rest = msgspec.structs.replace(request, provider=None, model=None, fallback=False)
                try:
                    return await call(rest, *args), tried
                except AllAttemptsFailedError as second:
                    raise AllAttemptsFailedError(
                        [*tried, *second.attempts], second.decision
                    ) from None
                except NoCandidateError:
                    raise first from None
        except TimeoutError:
            self._count(target, target.provider or "", target.model or "", "timeout")
            raise ApiError(
                504,
                f"no answer within {self.request_timeout:g} s",
                type="timeout",
                code="gateway_timeout",
            ) from None
        except InvalidRequestError as error:
            raise invalid_request(error) from None
        except DomainError as error:
            # The caller's fault (a prompt that is not UTF-8 text, an impossible model name):
            # nothing was sent or logged.
            raise ApiError(400, str(error)) from None
        except (NoCandidateError, AllAttemptsFailedError) as error:
            api_error = failure_error(self.router, error, self.router.clock())
            if isinstance(error, AllAttemptsFailedError):
                workload = target.workload.value
                for a in error.attempts:
                    route = self.metrics.route(a.provider, a.model, workload)
                    self.metrics.attempts.labels(*route, a.error_kind or "error").inc()
            outcome = api_error.code or str(api_error.status)
            self._count(target, target.provider or "", target.model or "", outcome)
            raise api_error from None

    def _count(self, target: Target, provider: str, model: str, outcome: str) -> None:
        route = self.metrics.route(provider, model, target.workload.value)
        self.metrics.requests.labels(*route, outcome).inc()

    def _observe(
        self,
        result: GenerateResult,
        target: Target,
        seconds: float,
        *,
        ttft: float | None,
        attempts: tuple[Attempt, ...],
    ) -> None:
        workload = target.workload.value
        m = self.metrics
        m.known.answered(result.provider, result.model)
        route = m.route(result.provider, result.model, workload)
        m.requests.labels(*route, "ok").inc()
        m.latency.labels(*route).observe(seconds)
        if ttft is not None:
            m.ttft.labels(*route).observe(ttft)
        for a in attempts:
            outcome = "ok" if a.success else (a.error_kind or "error")
            m.attempts.labels(*m.route(a.provider, a.model, workload), outcome).inc()
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


async def _first_item(request: GenerateRequest, router: Router) -> tuple[ChatStream, StreamOutput]:
    """Open a stream and wait for its first item (the router falls back until then)."""
    stream = router.stream(request)
    try:
        first = await anext(stream)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
        raise
    return stream, first


def _usage(result: GenerateResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.total_tokens,
        cached_tokens=result.cached_tokens,
        reasoning_tokens=result.reasoning_tokens,
    )


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


def generate_request(
    body: ChatCompletionBody,
    target: Target,
    request_key: str | None,
    *,
    wait: float | None = None,
) -> GenerateRequest:
    """The router's request for a chat-completions body and its route."""
    return GenerateRequest(
        messages=body.messages,
        tools=body.tools or (),
        tool_choice=body.tool_choice,
        response_format=body.response_format,
        stop=body.stops,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.token_limit,
        seed=body.seed,
        workload=target.workload,
        provider=target.provider,
        model=target.model,
        fallback=target.fallback,
        request_key=request_key,
        wait=wait,
    )


def route_headers(
    provider: str, model: str, attempts: tuple[Attempt, ...]
) -> list[tuple[bytes, bytes]]:
    """Who answered, and every attempt made on the way."""
    tried = ", ".join(
        f"{a.provider}/{a.model} {'ok' if a.success else a.error_kind}" for a in attempts
    )
    return [
        (b"x-freegin-provider", ascii_header(provider)),
        (b"x-freegin-model", ascii_header(model)),
        (b"x-freegin-attempts", str(len(attempts)).encode()),
        (b"x-freegin-tried", ascii_header(tried)),
    ]
