"""Running the gateway: uvicorn (httptools parser, uvloop event loop) on one bound socket.

The process starts in the composition root (`bootstrap.start_serving`), which hands back
its parts; `serving_router` puts the router façade over them, and the parts, not the
router, are what the process stops at the end.

The socket is bound before the server starts, so `--port 0` works and the address printed
is the one listened on. SIGTERM and SIGINT stop accepting connections, let in-flight requests
finish within the grace period (each one's usage committed before its answer); a second SIGINT
forces the exit. uvicorn re-raises the signal it caught once it is done; the handlers installed
here make that re-raise a no-op, so the process exits 0 once the router is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import socket
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.gateway.app import Gateway
from freegin_ai.adapters.router import Router

if TYPE_CHECKING:
    from freegin_ai.adapters.bootstrap import ServingParts


def serving_router(parts: ServingParts) -> Router:
    """The router over a serving process's parts; it owns none of them (`parts.aclose`)."""
    catalog = Catalog(parts.catalog.store, parts=parts.catalog)
    # A model adopted or retired with the CLI applies from the gateway's next request: on
    # SQLite the router looks at the tables' positions, on PostgreSQL the follower hears it.
    follower = parts.follower
    return Router(
        catalog,
        parts.providers,
        usage=parts.usage,
        client=parts.client,
        watch_tables=True,
        catalog_notices=lambda: follower.catalog_notices,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """`http://host:port` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}"


def run(
    app: Gateway,
    sock: socket.socket,
    *,
    grace_seconds: float,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=math.ceil(grace_seconds),
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            on_ready()
        await serving

    with _quiet_signals():
        loop_factory = config.get_loop_factory()
        if loop_factory is None:
            asyncio.run(main())
        else:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(main())


@contextlib.contextmanager
def _quiet_signals() -> Iterator[None]:
    """While serving uvicorn handles the signals; what it re-raises afterwards lands here."""

    def ignore(signum: int, frame: FrameType | None) -> None:
        """Shutdown already happened."""

    saved = {sig: signal.signal(sig, ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
