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
from collections.abc import Callable
from datetime import datetime

from freegin_ai.adapters.gateway.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    header,
    send_bytes,
    send_error,
    send_json,
)
from freegin_ai.adapters.gateway.completions import Completions
from freegin_ai.adapters.gateway.metrics import CONTENT_TYPE, GatewayMetrics, KnownModels
from freegin_ai.adapters.gateway.routing import WORKLOAD_ALIASES
from freegin_ai.adapters.gateway.security import BearerCheck
from freegin_ai.adapters.gateway.wire import ApiError, model_list
from freegin_ai.adapters.providers.errors_mapping import scrub
from freegin_ai.adapters.router import Router
from freegin_ai.projections.queries import list_health, list_roster

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
        self.metrics = metrics or GatewayMetrics(self._cooling, KnownModels(self._known_models))
        self.wall_clock = wall_clock
        self.elapsed = elapsed
        self.completions = Completions(
            router,
            self.metrics,
            request_timeout=request_timeout,
            wall_clock=wall_clock,
            elapsed=elapsed,
        )
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
                raw = await self._read_body(scope, receive)
                await self.completions.handle(scope, receive, tracked, raw)
            elif route == "models":
                await self._models(tracked)
            elif route == "model":
                await self._model(path.split("/models/", 1)[1], tracked)
            elif route == "healthz":
                await send_json(tracked, 200, {"status": "ok"})
            else:
                body = self.metrics.exposition()
                await send_bytes(tracked, 200, body, CONTENT_TYPE.encode())
        except ApiError as error:
            if not status[0]:
                await send_error(tracked, error)
        except Exception as error:
            _log("internal error: " + self._redact("".join(traceback.format_exception(error))))
            if not status[0]:
                await send_error(tracked, ApiError(500, "internal error", type="server_error"))
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
        if not self.auth.allows(header(scope, b"authorization")):
            raise ApiError(
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>` with the "
                "gateway's key (FREEGIN_SERVE_API_KEY)",
                code="invalid_api_key",
                headers=(("WWW-Authenticate", "Bearer"),),
            )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = header(scope, b"content-length")
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
        await send_json(send, 200, model_list(self._model_entries(), int(self.wall_clock())))

    async def _model(self, model_id: str, send: Send) -> None:
        for entry in model_list(self._model_entries(), int(self.wall_clock()))["data"]:
            if entry["id"] == model_id:
                await send_json(send, 200, entry)
                return
        raise ApiError(
            404, f"The model `{model_id}` does not exist", param="model", code="model_not_found"
        )

    def _known_models(self) -> set[tuple[str, str]]:
        """Every (provider, model) the catalog knows: active in the roster, or in config.toml."""
        with self.router.catalog.reading() as conn:
            known = {(row.provider, row.model) for row in list_roster(conn)}
        for provider, settings in self.router.config.providers.items():
            known.update((provider, model) for model in settings.models)
        return known

    def _cooling(self) -> list[tuple[str, str, str]]:
        now = self.router.clock().isoformat()
        with self.router.catalog.reading() as conn:
            rows = list_health(conn)
        return [
            (r.provider, r.model, r.last_error_kind or "error")
            for r in rows
            if r.cooldown_until and r.cooldown_until > now
        ]


def _log(line: str) -> None:
    stamp = datetime.now().astimezone().strftime("%H:%M:%S")
    print(f"{stamp} freegin-ai serve: {line}", file=sys.stderr, flush=True)
