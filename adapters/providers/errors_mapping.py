"""Error mapping: how an HTTP status or an httpx exception becomes a ProviderError.

Every adapter goes through these functions, so a 429 means the same thing for every provider.
Messages are one line, name the provider, the model and the status, and never contain the API
key: any text taken from a reply is redacted and cut to about 200 characters first.

    status 402, or a body saying the credit or quota is gone  -> credit
    status 429                                                -> rate_limited (+ retry_after)
    status 401, 403                                           -> auth
    status 404                                                -> not_found
    status 410                                                -> gone
    other 4xx                                                 -> bad_request
    5xx                                                       -> server (+ retry_after if sent)
    an `error` object in a 2xx reply (OpenRouter)             -> by its `code`, as above
    an aggregator's upstream cause (OpenRouter `error.metadata`) is kept in the message
    httpx.TimeoutException                                    -> timeout
    other httpx transport errors                              -> connection
    undecodable JSON, missing fields                          -> malformed
    a stream that ends before its finish (no [DONE], no stop) -> interrupted
    (filtered and empty answers: see replies.unusable_answer)
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, quote_plus

import httpx

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.http_client import HttpResponse
from freegin_ai.adapters.providers.base import response_meta
from freegin_ai.domain.ranges import clamp_retry_after

#: How much of a provider's reply text goes into a message.
SNIPPET_CHARS = 200

REDACTED = "[redacted]"

# Phrases providers use when the account, not the request rate, is the problem: OpenAI
# `insufficient_quota`, Anthropic "credit balance is too low", DeepSeek "Insufficient Balance",
# OpenRouter "requires more credits". Gemini's "exceeded your current quota" is a rate limit.
_CREDIT_PHRASES = (
    "insufficient_quota",
    "insufficient quota",
    "insufficient_credit",
    "insufficient credit",
    "insufficient_balance",
    "insufficient balance",
    "credit balance is too low",
    "requires more credits",
    "out of credits",
)

_WHITESPACE = re.compile(r"\s+")
_PERCENT = re.compile(r"%([0-9A-F])([0-9A-F])")
_GOOGLE_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


@dataclass(frozen=True, kw_only=True)
class CallContext:
    """Who was called for what: the words every error message starts with.

    `secret` is the API key (or None); it is only used to redact it from text.
    """

    provider: str
    model: str | None = None
    secret: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """`provider/model`, or `provider (list models)` for a call not about one model."""
        if self.model is None:
            return f"{self.provider} (list models)"
        return f"{self.provider}/{self.model}"


@functools.lru_cache(maxsize=64)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every form in which a provider could echo a key, longest first: as it is, JSON-escaped
    (`\\/`, `\\uXXXX`), URL-encoded (`+` for spaces; hex in any case, see `_pattern`) and
    base64 (standard and URL-safe, with and without padding)."""
    forms = {secret}
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms |= {escaped, escaped.replace("/", "\\/")}
    forms |= {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    raw = secret.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    # A form too short to be the key's alone would blot out ordinary words.
    return tuple(sorted((f for f in forms if f == secret or len(f) >= 8), key=len, reverse=True))


@functools.lru_cache(maxsize=64)
def _pattern(secret: str) -> re.Pattern[str]:
    """One regular expression for every form; a `%2F` also matches `%2f`."""
    alternatives = [
        _PERCENT.sub(lambda m: f"%[{m[1]}{m[1].lower()}][{m[2]}{m[2].lower()}]", re.escape(form))
        for form in secret_forms(secret)
    ]
    return re.compile("|".join(alternatives))


def redact(text: str, secret: str | None) -> str:
    """Replace every occurrence of the secret, in every form of secret_forms, in the text."""
    if secret:
        return _pattern(secret).sub(REDACTED, text)
    return text


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret in use removed, in any of its forms: the one scrubber for
    whatever leaves the process (errors, logs, stored answers, output)."""
    for secret in secrets:
        text = redact(text, secret)
    return text


def snippet(text: str, secret: str | None, limit: int = SNIPPET_CHARS) -> str:
    """One line of at most `limit` characters, with the secret redacted before cutting."""
    line = _WHITESPACE.sub(" ", redact(text, secret)).strip()
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date; None if absent."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


def error_for_status(ctx: CallContext, response: HttpResponse, content: bytes) -> ProviderError:
    """The ProviderError for a reply whose status is not 2xx; `content` is its body as read
    (possibly cut short)."""
    status = response.status_code
    body = _decode(content, response.encoding)
    kind = kind_for_status(status, body)
    retry_after = _retry_after(response, body) if kind in ("rate_limited", "server") else None
    error = _status_error(ctx, kind, status, _error_message(body, ctx.secret), retry_after)
    error.meta = response_meta(status, response.headers, body if status == 429 else "")
    return error


def error_in_body(ctx: CallContext, status: int, error: dict[str, object]) -> ProviderError:
    """The ProviderError for an `{"error": {...}}` object sent with a 2xx status.

    OpenRouter does this when the upstream provider fails after the status went out; the
    error's numeric `code` stands in for the status.
    """
    code = error.get("code")
    effective = code if isinstance(code, int) and 400 <= code < 600 else 502
    text = json.dumps(error)
    detail = error.get("message")
    kind = kind_for_status(effective, text)
    message = f"{ctx.label}: HTTP {status} with error {effective} {kind}"
    cause = upstream_cause(error, ctx.secret)
    if cause is not None:
        detail = _with_cause(detail if isinstance(detail, str) else "", cause)
    shown = snippet(detail if isinstance(detail, str) else text, ctx.secret)
    if shown:
        message = f"{message}: {shown}"
    return ProviderError(kind, message, status=effective)


def kind_for_status(status: int, body: str) -> str:
    """The error kind for a non-2xx status, looking at the body only for credit phrases."""
    if status == 402 or (400 <= status < 500 and _mentions_credit(body)):
        return "credit"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 410:
        return "gone"
    if 400 <= status < 500:
        return "bad_request"
    if status >= 500:
        return "server"
    return "malformed"  # 1xx or 3xx: nothing a JSON API should answer


def _status_error(
    ctx: CallContext, kind: str, status: int, detail: str, retry_after: float | None
) -> ProviderError:
    wait = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
    message = f"{ctx.label}: HTTP {status} {kind}{wait}"
    shown = snippet(detail, ctx.secret)
    if shown:
        message = f"{message}: {shown}"
    return ProviderError(kind, message, status=status, retry_after=retry_after)


def error_for_exception(ctx: CallContext, exc: Exception) -> ProviderError:
    """The ProviderError for an exception raised before any status arrived.

    httpx.TimeoutException is a timeout; any other transport error, an invalid URL or a header
    that cannot be encoded means the request never got an answer: connection.
    """
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
    message = f"{ctx.label}: {kind} ({type(exc).__name__})"
    reason = snippet(str(exc), ctx.secret)
    return ProviderError(kind, f"{message}: {reason}" if reason else message)


def malformed(ctx: CallContext, detail: str, *, status: int | None = None) -> ProviderError:
    """The ProviderError for a 2xx reply the adapter cannot understand."""
    shown = f"HTTP {status} " if status is not None else ""
    return ProviderError(
        "malformed",
        f"{ctx.label}: {shown}malformed reply: {snippet(detail, ctx.secret)}",
        status=status,
    )


def interrupted(ctx: CallContext) -> ProviderError:
    """The ProviderError for a stream that ended before the provider said it was done."""
    return ProviderError("interrupted", f"{ctx.label}: the stream ended before the answer did")


def _decode(content: bytes, encoding: str | None) -> str:
    try:
        return content.decode(encoding or "utf-8", "replace")
    except LookupError:
        return content.decode("utf-8", "replace")


def _error_message(body: str, secret: str | None = None) -> str:
    """The provider's own error message when the body is the usual `{"error": ...}` JSON,
    with the upstream cause an aggregator keeps in `error.metadata`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if isinstance(data, list) and data:
        data = data[0]  # Some Google endpoints wrap the error object in a list.
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            cause = upstream_cause(error, secret)
            if cause is not None:
                return _with_cause(message if isinstance(message, str) else "", cause)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return body


#: OpenRouter's words when the upstream provider failed: they say nothing the cause does not.
_GENERIC_WRAPPERS = ("provider returned error",)


def _with_cause(message: str, cause: str) -> str:
    """The cause first (the snippet is cut at SNIPPET_CHARS), the wrapper's words only if they
    add something."""
    generic = not message.strip() or message.strip().lower() in _GENERIC_WRAPPERS
    return f"upstream {cause}" if generic else f"{message} (upstream {cause})"


def upstream_cause(error: Mapping[str, object], secret: str | None = None) -> str | None:
    """The upstream reason OpenRouter keeps in `error.metadata`, as one line, or None.

    `metadata.raw` is the upstream provider's own error: a string, often JSON whose
    `error.message` is the useful part, or an object. `provider_name` names who failed;
    a moderation error lists `reasons` instead.
    """
    metadata = error.get("metadata")
    if not isinstance(metadata, dict):
        return None
    who = metadata.get("provider_name")
    what = _raw_reason(metadata.get("raw"))
    if what is None:
        reasons = metadata.get("reasons")
        if isinstance(reasons, list) and reasons:
            what = "flagged: " + ", ".join(str(r) for r in reasons)
    if what is None:
        return None
    text = f"{who}: {what}" if isinstance(who, str) and who else what
    return snippet(text, secret) or None


def _raw_reason(raw: object) -> str | None:
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            return text
        return _raw_reason(decoded) if isinstance(decoded, dict | list) else text
    if isinstance(raw, list) and raw:
        return _raw_reason(raw[0])
    if isinstance(raw, dict):
        inner = raw.get("error", raw)
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(raw.get("message"), str):
            return str(raw["message"])
        return json.dumps(raw)
    return None


def _mentions_credit(body: str) -> bool:
    lowered = body.lower()
    return any(phrase in lowered for phrase in _CREDIT_PHRASES)


def _retry_after(response: HttpResponse, body: str) -> float | None:
    """The wait the provider asked for, brought into the domain's range (at most a day)."""
    seconds = _asked_wait(response, body)
    return None if seconds is None else clamp_retry_after(seconds)


def _asked_wait(response: HttpResponse, body: str) -> float | None:
    seconds = parse_retry_after(response.headers.get("retry-after"))
    if seconds is not None:
        return seconds
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(value, 0.0)
    return _google_retry_delay(body)


def _google_retry_delay(body: str) -> float | None:
    """Gemini puts the wait in the body: `error.details[].retryDelay` such as "37s"."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and (match := _GOOGLE_DURATION.match(delay)):
            return float(match.group(1))
    return None
