"""`serve`: run the OpenAI-compatible gateway in front of the catalog."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from freegin_ai.cli import startup


def register(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="serve an OpenAI-compatible API in front of the catalog",
        description=(
            "Serve POST /v1/chat/completions, GET /v1/models, /healthz and /metrics. The "
            "request's model field picks the route: a workload (chat, code, summarization, "
            "extraction, creative, classification, auto), provider/model, or a model id of "
            "the roster. With FREEGIN_SERVE_API_KEY (or --api-key-file) every endpoint but "
            "/healthz needs `Authorization: Bearer <key>`; without a key only a loopback "
            "address is allowed. SIGTERM or Ctrl-C stops accepting, lets requests in flight "
            "finish within the grace period (usage is committed before each answer)."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=8000, help="port to listen on, 0 for any (default: 8000)"
    )
    p.add_argument(
        "--api-key-file",
        type=Path,
        help="read the gateway's API key from this file (else FREEGIN_SERVE_API_KEY)",
    )
    p.add_argument(
        "--grace-seconds",
        type=_positive,
        default=30.0,
        help="on SIGTERM, how long requests in flight may take to finish (default: 30)",
    )
    p.add_argument(
        "--request-timeout",
        type=_positive,
        default=300.0,
        help="answer 504 when a request takes longer, fallback included (default: 300)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_size,
        default=4 * 1024 * 1024,
        help="answer 413 to larger request bodies (default: 4194304)",
    )
    p.add_argument("--access-log", action="store_true", help="log one line per request to stderr")
    p.set_defaults(handler=serve)


def _port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (0-65535)")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _size(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def serve(args: argparse.Namespace) -> int:
    import anyio

    from freegin_ai.adapters.gateway.security import check_listen_address, load_api_key

    api_key = load_api_key(os.environ, args.api_key_file)
    check_listen_address(args.host, api_key)

    from freegin_ai.adapters import bootstrap
    from freegin_ai.adapters.gateway.app import Gateway
    from freegin_ai.adapters.gateway.server import address, bind, run, serving_router

    sock = bind(args.host, args.port)
    try:
        parts = bootstrap.start_serving(os.environ)
    except BaseException:
        sock.close()
        raise
    where = address(sock)

    def ready() -> None:
        auth = "API key required" if api_key else "no API key: loopback only"
        print(f"freegin-ai serve: listening on {where} ({auth})", file=sys.stderr, flush=True)

    try:
        app = Gateway(
            serving_router(parts),
            api_key=api_key,
            max_body_bytes=args.max_body_bytes,
            request_timeout=args.request_timeout,
            access_log=args.access_log,
        )
        startup.settle()  # a server keeps running: the collector as usual (ADR 0023)
        run(app, sock, grace_seconds=args.grace_seconds, on_ready=ready)
    finally:
        sock.close()
        # The usage log stopped, the read tables current, the store closed.
        anyio.run(parts.aclose)
    print("freegin-ai serve: stopped", file=sys.stderr, flush=True)
    return 0
