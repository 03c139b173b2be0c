"""FakeProviderServer: a scripted LLM provider on 127.0.0.1, for adapter and router tests.

It speaks three wire formats on one ephemeral port, in a background thread:

    POST /v1/chat/completions          OpenAI-compatible          (server.openai_url)
    GET  /v1/models                    OpenAI list; Anthropic's when `anthropic-version` is sent
    POST /v1/messages                  Anthropic Messages         (server.anthropic_url)
    POST /v1beta/models/{m}:generateContent   Gemini              (server.gemini_url)
    GET  /v1beta/models                Gemini list, paged by `pageToken`
    GET  /catalog/models               GitHub Models catalog (a bare JSON array)
    GET  /api/models/{id}              Hugging Face Hub model info (server.hub[id], else 404)
    POST /hf-inference/models/{m}      Hugging Face task API (server.tasks[m] says which task:
                                       summarization, zero-shot-classification, text-generation)

Each model is scripted with behaviours taken in order, the last one repeating:

    server.script("m", RateLimited(retry_after="7"), Reply("hi"))

Hostile behaviours: `Drip` sends a reply one byte at a time, `Endless` a chunked body that
never ends, `Reply(text=None)` a null answer, `Reply(prompt_tokens=2**70)` absurd counts,
`Status(..., raw=...)` any bytes (a key echoed JSON-escaped, say).

Streams: a request asking for one (`"stream": true`, or Gemini's `:streamGenerateContent`) gets
the reply as that format's server-sent events (tests/fakes/provider_streams.py), text cut
into `server.chunk_chars` characters; `server.keepalive` adds keep-alive comments (pings),
`server.split_bytes` sends every event in two writes cut mid-way. `StreamCut` hangs up after
some events, `StreamStall` goes quiet between two. `Reply(tool_calls=...)` answers with tool
calls, `Reply(finish="content_filter")` as a content filter does.

A model nobody scripted answers 404, as a real provider does. `Reply(headers=...)` and
`Status(headers=...)` send a provider's rate-limit headers (see `groq_headers`,
`cerebras_headers`, `openrouter_headers`, `anthropic_headers`) and `gemini_quota_body` builds
Gemini's 429 body. `server.limit_per_minute("m", 10)` makes the fake enforce a limit itself
per calendar minute (429 beyond it) and count what each minute received, for quota tests.
Every request is recorded
(method, path, query, headers, body) in `server.requests`. A Stall sleeps on an event that
`stop()` sets, so shutting down never waits for it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import provider_streams

# --- behaviours -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer normally with this text and these token counts."""

    #: None answers `content: null` (OpenAI), no parts (Gemini), no content blocks (Anthropic).
    text: str | None = "ok"
    prompt_tokens: int = 3
    completion_tokens: int = 5
    #: Reported as each wire format does: cached prompt tokens, and reasoning tokens on top
    #: of the answer's (billed as output). Left out of the reply when 0.
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    #: Extra response headers (rate-limit headers, as each provider sends them).
    headers: tuple[tuple[str, str], ...] = ()
    #: Tool calls to answer with: (function name, arguments).
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: The finish reason in OpenAI's words (rendered in each format's); default stop, or
    #: tool_calls when there are some. "content_filter" with no text is a filtered answer.
    finish: str | None = None

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")


@dataclass(frozen=True)
class RateLimited:
    """429; `retry_after` is sent verbatim as the Retry-After header when not None."""

    retry_after: str | None = "7"
    message: str = "Rate limit reached, please slow down"


@dataclass(frozen=True)
class ServerError:
    """500 (or another 5xx) with an error body."""

    status: int = 500
    message: str = "internal server error"


@dataclass(frozen=True)
class Stall:
    """Sleep before answering (bounded, and cut short when the server stops), then reply."""

    seconds: float = 2.0
    then: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class StreamCut:
    """A stream that sends `after` events of the reply, then hangs up mid-body."""

    after: int = 2
    then: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class Drip:
    """A normal reply whose body goes out one byte every `interval` seconds (Content-Length
    sent first), until done or the server stops."""

    interval: float = 1.0
    then: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class StreamStall:
    """A stream that sends `after` events, goes quiet for `seconds`, then goes on."""

    after: int = 2
    seconds: float = 2.0
    then: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class Endless:
    """200 with a chunked body that never ends (until the client hangs up or the server stops)."""

    chunk: bytes = b'{"choices": [' + b" " * 65_536


@dataclass(frozen=True)
class Malformed:
    """200 with a body that is not JSON."""

    body: bytes = b'{"choices": [ this is not json'


@dataclass(frozen=True)
class MissingFields:
    """200 with valid JSON that lacks every field an adapter needs."""

    body: Any = field(default_factory=lambda: {"unexpected": True})


@dataclass(frozen=True)
class Unauthorized:
    """401; put a key in `message` to check that adapters redact it."""

    message: str = "Invalid API key"


@dataclass(frozen=True)
class PaymentRequired:
    """402, as OpenRouter and DeepSeek answer when the balance is gone."""

    message: str = "Insufficient Balance"


@dataclass(frozen=True)
class Status:
    """Any status with a provider-shaped error body (or `raw` bytes) and extra headers."""

    status: int
    message: str = "error"
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None


Behaviour = (
    Reply
    | RateLimited
    | ServerError
    | Stall
    | StreamCut
    | StreamStall
    | Drip
    | Endless
    | Malformed
    | MissingFields
    | Unauthorized
    | PaymentRequired
    | Status
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # decoded JSON, or the raw text when it was not JSON, or None
    raw_url: str  # the request target exactly as sent: path and query
    #: The client's port: requests with the same one came on the same connection.
    peer_port: int = 0


# --- the server -----------------------------------------------------------------------------


class FakeProviderServer:
    """A scripted provider; use as a context manager or call start() and stop()."""

    def __init__(self, *, max_stall_seconds: float = 5.0) -> None:
        self.models: list[str] = ["fake-model-a", "fake-model-b"]
        #: Hugging Face task models: model -> pipeline tag of the task API it speaks.
        self.tasks: dict[str, str] = {}
        #: Full listing entries (OpenAI-style `data[]`, or Gemini `models[]`) to list instead
        #: of bare ids made from `models`.
        self.listing: list[dict[str, Any]] | None = None
        #: A whole listing reply body (e.g. one recorded from a real API) sent as it is by
        #: GET /v1/models and /v1beta/models instead of one built from `listing`.
        self.listing_body: Any = None
        #: Hugging Face Hub model info by model id.
        self.hub: dict[str, dict[str, Any]] = {}
        self.gemini_page_size = 1000
        self.anthropic_page_size = 1000
        self.max_stall_seconds = max_stall_seconds
        self.chunk_chars = 4
        self.keepalive = False
        self.split_bytes = False
        #: Streams whose client hung up before the end.
        self.aborted_streams = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._limits: dict[str, int] = {}
        #: (model, "YYYY-MM-DDTHH:MM") → chat requests received in that minute.
        self.per_minute: dict[tuple[str, str], int] = {}
        #: model → how many requests the fake's own limit refused (429).
        self.refused: dict[str, int] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeProviderServer:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-provider"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake any stalled handler, stop serving and close the socket."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # addresses

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        if self._httpd is None:
            raise RuntimeError("the fake provider server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI-compatible adapters."""
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        """Base URL for the Anthropic adapter."""
        return f"{self.url}/v1"

    @property
    def gemini_url(self) -> str:
        """Base URL for the Gemini adapter."""
        return f"{self.url}/v1beta"

    # scripting and recording

    def script(self, model: str, *behaviours: Behaviour) -> None:
        """What `model` does on its next calls: one behaviour per call, the last repeating."""
        if not behaviours:
            raise ValueError("script() needs at least one behaviour")
        with self._lock:
            self._scripts[model] = list(behaviours)

    def limit_per_minute(self, model: str, limit: int) -> None:
        """Enforce `limit` chat requests per calendar minute (UTC) on a model: 429 beyond it."""
        with self._lock:
            self._limits[model] = limit

    def admit(self, model: str) -> bool:
        """Count a chat request against its minute; False when the model's limit is passed."""
        minute = time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
        with self._lock:
            key = (model, minute)
            self.per_minute[key] = self.per_minute.get(key, 0) + 1
            limit = self._limits.get(model)
            if limit is not None and self.per_minute[key] > limit:
                self.refused[model] = self.refused.get(model, 0) + 1
                return False
            return True

    def next_behaviour(self, model: str) -> Behaviour | None:
        with self._lock:
            queue = self._scripts.get(model)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def last_request(self) -> RecordedRequest:
        """The most recent request (fails when there was none)."""
        recorded = self.requests
        if not recorded:
            raise AssertionError("the fake provider server received no request")
        return recorded[-1]


def _mid_character(data: bytes) -> int:
    """Where to cut an event in two: inside a multi-byte UTF-8 character when it has one."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:  # the lead byte of a multi-byte character
            return index + 1
    return len(data) // 2


def groq_headers(
    *, requests_limit: int, requests_left: int, tokens_limit: int, tokens_left: int
) -> tuple[tuple[str, str], ...]:
    """Groq's headers: requests count per DAY, tokens per MINUTE; resets as durations."""
    return (
        ("x-ratelimit-limit-requests", str(requests_limit)),
        ("x-ratelimit-remaining-requests", str(requests_left)),
        ("x-ratelimit-reset-requests", "2m59.56s"),
        ("x-ratelimit-limit-tokens", str(tokens_limit)),
        ("x-ratelimit-remaining-tokens", str(tokens_left)),
        ("x-ratelimit-reset-tokens", "7.66s"),
    )


def cerebras_headers(
    *, requests_day: int, requests_left: int, tokens_minute: int, tokens_left: int
) -> tuple[tuple[str, str], ...]:
    """Cerebras's headers: the window is in the name; resets in seconds."""
    return (
        ("x-ratelimit-limit-requests-day", str(requests_day)),
        ("x-ratelimit-remaining-requests-day", str(requests_left)),
        ("x-ratelimit-reset-requests-day", "33011.382867097855"),
        ("x-ratelimit-limit-tokens-minute", str(tokens_minute)),
        ("x-ratelimit-remaining-tokens-minute", str(tokens_left)),
        ("x-ratelimit-reset-tokens-minute", "11.382867097854614"),
    )


def openrouter_headers(
    *, limit: int, left: int, reset_epoch_ms: int
) -> tuple[tuple[str, str], ...]:
    """OpenRouter's headers: requests, reset in epoch milliseconds."""
    return (
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", str(left)),
        ("X-RateLimit-Reset", str(reset_epoch_ms)),
    )


def anthropic_headers(
    *, requests_limit: int, requests_left: int, reset: str
) -> tuple[tuple[str, str], ...]:
    """Anthropic's headers: per minute, resets as RFC 3339 times."""
    return (
        ("anthropic-ratelimit-requests-limit", str(requests_limit)),
        ("anthropic-ratelimit-requests-remaining", str(requests_left)),
        ("anthropic-ratelimit-requests-reset", reset),
        ("anthropic-ratelimit-tokens-limit", "96000"),
        ("anthropic-ratelimit-tokens-remaining", "95000"),
        ("anthropic-ratelimit-tokens-reset", reset),
    )


def gemini_quota_body(quota_ids: list[str], retry_delay: str | None, model: str) -> bytes:
    """A Gemini 429 RESOURCE_EXHAUSTED body with QuotaFailure violations and RetryInfo."""
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "250" if "PerDay" in quota_id else "10",
                }
                for quota_id in quota_ids
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more", "url": "https://ai.google.dev/"}],
        },
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": retry_delay})  # fmt: skip
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing.",
            "status": "RESOURCE_EXHAUSTED",
            "details": details,
        }
    }
    return json.dumps(body).encode()


def refused_url() -> str:
    """A `http://127.0.0.1:<port>` nobody listens on: bind a port, close it, hand it out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- wire formats ---------------------------------------------------------------------------


def _openai_reply(model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},  # None: null
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens + reply.reasoning_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens + reply.reasoning_tokens,
            **(
                {"prompt_tokens_details": {"cached_tokens": reply.cached_tokens}}
                if reply.cached_tokens
                else {}
            ),
            **(
                {"completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens}}
                if reply.reasoning_tokens
                else {}
            ),
        },
    }


def _gemini_reply(model: str, reply: Reply) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [] if reply.text is None else [{"text": reply.text}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.completion_tokens,
            "totalTokenCount": reply.prompt_tokens
            + reply.completion_tokens
            + reply.reasoning_tokens,
            **({"thoughtsTokenCount": reply.reasoning_tokens} if reply.reasoning_tokens else {}),
            **({"cachedContentTokenCount": reply.cached_tokens} if reply.cached_tokens else {}),
        },
        "modelVersion": model,
    }


def _anthropic_reply(model: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if reply.text is None else [{"type": "text", "text": reply.text}],
        "stop_reason": "end_turn",
        # As the real API does: input_tokens excludes the tokens read from the cache.
        "usage": {
            "input_tokens": reply.prompt_tokens - reply.cached_tokens,
            "output_tokens": reply.completion_tokens + reply.reasoning_tokens,
            **({"cache_read_input_tokens": reply.cached_tokens} if reply.cached_tokens else {}),
        },
    }


_REPLIES = {"openai": _openai_reply, "gemini": _gemini_reply, "anthropic": _anthropic_reply}

#: Finish reasons (OpenAI's words) as each format says them.
_FINISH_WORDS = {
    "openai": {},
    "gemini": {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY",
               "tool_calls": "STOP"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal",
                  "tool_calls": "tool_use"},
}  # fmt: skip


def _finish(api: str, reply: Reply) -> str:
    word = reply.finish_reason
    return _FINISH_WORDS[api].get(word, word)


def _with_calls(api: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A whole reply with the scripted tool calls and finish reason in the format's shape."""
    calls = list(reply.tool_calls)
    silent = not reply.text
    if api == "openai":
        choice = body["choices"][0]
        choice["finish_reason"] = _finish(api, reply)
        if calls:
            choice["message"]["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for i, (name, args) in enumerate(calls)
            ]
        if silent:
            choice["message"]["content"] = None
    elif api == "gemini":
        candidate = body["candidates"][0]
        candidate["finishReason"] = _finish(api, reply)
        parts: list[dict[str, Any]] = [] if silent else [{"text": reply.text}]
        parts += [{"functionCall": {"name": name, "args": args}} for name, args in calls]
        candidate["content"] = {"role": "model", "parts": parts} if parts else {}
    else:
        body["stop_reason"] = _finish(api, reply)
        blocks: list[dict[str, Any]] = [] if silent else [{"type": "text", "text": reply.text}]
        blocks += [
            {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
            for i, (name, args) in enumerate(calls)
        ]
        body["content"] = blocks
    return body


def _stream_events(api: str, model: str, reply: Reply, body: Any, chunk_chars: int) -> list[bytes]:
    """The reply as the format's server-sent events."""
    whole = _REPLIES[api](model, reply)
    usage = whole["usageMetadata"] if api == "gemini" else whole["usage"]
    script = provider_streams.Script(
        model, reply.text, list(reply.tool_calls), usage, _finish(api, reply), chunk_chars
    )
    if api == "openai":
        options = body.get("stream_options") if isinstance(body, dict) else None
        include = isinstance(options, dict) and options.get("include_usage") is True
        return provider_streams.openai_events(script, include_usage=include)
    if api == "gemini":
        return provider_streams.gemini_events(script)
    return provider_streams.anthropic_events(script)


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _task_reply(task: str, reply: Reply, body: Any) -> Any:
    """The hf-inference task API's reply shapes (as recorded in tests/data/recorded)."""
    if task == "summarization":
        return [{"summary_text": reply.text}]
    if task == "zero-shot-classification":
        labels = list((body.get("parameters") or {}).get("candidate_labels") or [])
        # The reply text names the winning label; the rest follow with lower scores.
        ranked = sorted(labels, key=lambda label: label != reply.text)
        scores = [0.9] + [0.1 / max(1, len(ranked) - 1)] * (len(ranked) - 1) if ranked else []
        return {"sequence": body.get("inputs"), "labels": ranked, "scores": scores}
    return [{"generated_text": reply.text}]


def _error_body(api: str, status: int, message: str, code: str | None) -> dict[str, Any]:
    if api == "hf":
        return {"error": message}
    if api == "gemini":
        return {
            "error": {
                "code": status,
                "message": message,
                "status": code or _GOOGLE_STATUS.get(status, "UNKNOWN"),
            }
        }
    if api == "anthropic":
        return {"type": "error", "error": {"type": code or "api_error", "message": message}}
    return {"error": {"message": message, "type": code or "api_error", "code": code}}


# --- the handler ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server_version = "FakeProvider/1.0"

    @property
    def fake(self) -> FakeProviderServer:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `server.requests` instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers = {name.lower(): value for name, value in self.headers.items()}
        port = int(self.client_address[1])
        self.fake.record(RecordedRequest(method, path, query, headers, body, self.path, port))
        # A client that gave up (a timeout test) leaves nobody to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(method, path, query, headers, body)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        streaming = isinstance(body, dict) and body.get("stream") is True
        if method == "POST" and path == "/v1/chat/completions":
            self._chat("openai", str(model), body, streaming)
        elif method == "POST" and path == "/v1/messages":
            self._chat("anthropic", str(model), body, streaming)
        elif method == "POST" and path.startswith("/v1beta/models/"):
            name, _, action = path.removeprefix("/v1beta/models/").partition(":")
            if action == "generateContent":
                self._chat("gemini", name, body, False)
            elif action == "streamGenerateContent" and query.get("alt") == ["sse"]:
                self._chat("gemini", name, body, True)
            else:
                self._json(404, _error_body("gemini", 404, "unknown method", None))
        elif method == "GET" and path == "/v1/models":
            if "anthropic-version" in headers:
                self._anthropic_models(query)
            else:
                self._list("openai")
        elif method == "GET" and path == "/v1beta/models":
            self._gemini_models(query)
        elif method == "POST" and path.startswith("/hf-inference/models/"):
            name = path.removeprefix("/hf-inference/models/")
            self._chat("hf", name, body)
        elif method == "GET" and path.startswith("/api/models/"):
            info = self.fake.hub.get(path.removeprefix("/api/models/"))
            if info is None:
                self._json(404, {"error": "Repository not found"})
            else:
                self._json(200, info)
        elif method == "GET" and path == "/catalog/models":
            self._json(200, [{"id": m, "name": m, "publisher": "fake"} for m in self.fake.models])
        else:
            self._json(404, {"error": {"message": f"no route {method} {path}"}})

    def _chat(self, api: str, model: str, body: Any = None, streaming: bool = False) -> None:
        behaviour = self.fake.next_behaviour(model)
        if behaviour is None:
            message = f"The model `{model}` does not exist"
            self._json(404, _error_body(api, 404, message, "model_not_found"))
            return
        if isinstance(behaviour, Stall):
            self.fake.stopping.wait(min(behaviour.seconds, self.fake.max_stall_seconds))
            behaviour = behaviour.then
        if not self.fake.admit(model):
            message = "Rate limit reached for requests per minute"
            self._json(
                429, _error_body(api, 429, message, "rate_limit_exceeded"), (("Retry-After", "30"),)
            )
            return
        if streaming and isinstance(behaviour, Reply | StreamCut | StreamStall):
            self._stream(api, model, behaviour, body)
            return
        match behaviour:
            case Reply() if api == "hf":
                task = self.fake.tasks.get(model)
                if task is None:
                    self._json(400, _error_body(api, 400, f"{model} is not a task model", None))
                else:
                    self._json(200, _task_reply(task, behaviour, body or {}))
            case Reply():
                reply_body = _with_calls(api, _REPLIES[api](model, behaviour), behaviour)
                self._json(200, reply_body, behaviour.headers)
            case StreamCut(then=reply) | StreamStall(then=reply):
                self._json(200, _with_calls(api, _REPLIES[api](model, reply), reply))
            case Drip(interval=interval, then=reply):
                self._drip(json.dumps(_REPLIES[api](model, reply)).encode(), interval)
            case Endless(chunk=chunk):
                self._endless(chunk)
            case RateLimited(retry_after=retry_after, message=message):
                extra = () if retry_after is None else (("Retry-After", retry_after),)
                self._json(429, _error_body(api, 429, message, "rate_limit_exceeded"), extra)
            case ServerError(status=status, message=message):
                self._json(status, _error_body(api, status, message, None))
            case Malformed(body=raw):
                self._send(200, raw, "application/json")
            case MissingFields(body=payload):
                self._json(200, payload)
            case Unauthorized(message=message):
                self._json(401, _error_body(api, 401, message, "invalid_api_key"))
            case PaymentRequired(message=message):
                self._json(402, _error_body(api, 402, message, "insufficient_balance"))
            case Status(status=status, message=message, code=code, headers=extra, raw=raw):
                if raw is not None:
                    self._send(status, raw, "application/json", extra)
                else:
                    self._json(status, _error_body(api, status, message, code), extra)

    def _stream(
        self, api: str, model: str, behaviour: Reply | StreamCut | StreamStall, body: Any
    ) -> None:
        try:
            self._send_stream(api, model, behaviour, body)
        except (BrokenPipeError, ConnectionResetError):
            with self.fake._lock:
                self.fake.aborted_streams += 1
            raise

    def _send_stream(
        self, api: str, model: str, behaviour: Reply | StreamCut | StreamStall, body: Any
    ) -> None:
        reply = behaviour if isinstance(behaviour, Reply) else behaviour.then
        events = _stream_events(api, model, reply, body, self.fake.chunk_chars)
        if self.fake.keepalive:
            ping = provider_streams.KEEPALIVE.get(api, b"event: ping\ndata: {}\n\n")
            events = [e for event in events for e in (ping, event)]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        for index, event in enumerate(events):
            if isinstance(behaviour, StreamCut) and index == behaviour.after:
                self.close_connection = True
                return  # no terminating chunk: the body ends in the middle
            stall = isinstance(behaviour, StreamStall) and index == behaviour.after
            if stall and self.fake.stopping.wait(
                min(behaviour.seconds, self.fake.max_stall_seconds)  # type: ignore[union-attr]
            ):
                return
            if self.fake.split_bytes and len(event) > 1:
                cut = _mid_character(event)
                self._chunk(event[:cut])
                time.sleep(0.002)  # let the first half leave on its own
                self._chunk(event[cut:])
            else:
                self._chunk(event)
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drip(self, body: bytes, interval: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for index in range(len(body)):
            if self.fake.stopping.wait(interval):
                return
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()

    def _endless(self, chunk: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        while not self.fake.stopping.is_set():
            self.wfile.write(frame)
        self.close_connection = True

    def _list(self, api: str) -> None:
        if self.fake.listing_body is not None:
            self._json(200, self.fake.listing_body)
            return
        data = self.fake.listing
        if data is None:
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.models]
        self._json(200, {"object": "list", "data": data})

    def _gemini_models(self, query: dict[str, list[str]]) -> None:
        if self.fake.listing_body is not None:
            self._json(200, self.fake.listing_body)
            return
        start = int(query.get("pageToken", ["0"])[0])
        size = self.fake.gemini_page_size
        entries = self.fake.listing or [
            {"name": f"models/{n}", "supportedGenerationMethods": ["generateContent"]}
            for n in self.fake.models
        ]
        page: dict[str, Any] = {"models": entries[start : start + size]}
        if start + size < len(entries):
            page["nextPageToken"] = str(start + size)
        self._json(200, page)

    def _anthropic_models(self, query: dict[str, list[str]]) -> None:
        models = self.fake.models
        after = query.get("after_id", [None])[0]
        start = models.index(after) + 1 if after in models else 0
        chunk = models[start : start + self.fake.anthropic_page_size]
        self._json(
            200,
            {
                "data": [{"type": "model", "id": m, "display_name": m} for m in chunk],
                "has_more": start + len(chunk) < len(models),
                "first_id": chunk[0] if chunk else None,
                "last_id": chunk[-1] if chunk else None,
            },
        )

    def _json(self, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
