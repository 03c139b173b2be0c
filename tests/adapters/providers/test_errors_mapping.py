"""errors_mapping on its own: Retry-After parsing, redaction, and statuses built in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    error_for_exception,
    error_for_status,
    parse_retry_after,
    redact,
    snippet,
)

NOW = datetime(2026, 11, 3, 12, 0, 0, tzinfo=UTC)
CTX = CallContext(provider="groq", model="m", secret="sk-SECRET")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Tue, 03 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 03 Nov 2026 11:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_redact_replaces_every_occurrence() -> None:
    assert redact("a sk-SECRET b sk-SECRET", "sk-SECRET") == "a [redacted] b [redacted]"
    assert redact("nothing here", None) == "nothing here"


def test_snippet_is_one_short_line_redacted_before_cutting() -> None:
    text = "line one\nline two\t" + "x" * 190 + "sk-SECRET"

    cut = snippet(text, "sk-SECRET")

    assert "\n" not in cut
    assert len(cut) <= 200
    assert "sk-SEC" not in cut  # redacted first, so no half key survives the cut


def status_error(status: int, body: object, headers: dict[str, str] | None = None) -> ProviderError:
    """error_for_status on an httpx response of that status, body and headers."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_for_status(CTX, httpx.Response(status, headers=headers, content=content), content)


def test_retry_after_ms_header() -> None:
    error = status_error(429, {}, {"retry-after-ms": "1500"})

    assert (error.kind, error.retry_after) == ("rate_limited", 1.5)


def test_google_retry_delay_in_the_body() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }

    error = status_error(429, body)

    # Gemini's free-tier "quota" is a rate limit, not an empty wallet.
    assert (error.kind, error.retry_after) == ("rate_limited", 37.0)


def test_the_providers_error_message_is_used() -> None:
    body = {"error": {"message": "model is decommissioned", "type": "invalid_request_error"}}

    error = status_error(400, body)

    assert str(error) == "groq/m: HTTP 400 bad_request: model is decommissioned"


def test_a_list_wrapped_google_error_is_understood() -> None:
    error = status_error(403, [{"error": {"message": "key sk-SECRET denied"}}])

    assert str(error) == "groq/m: HTTP 403 auth: key [redacted] denied"


def test_transport_errors() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/v1/models")

    timeout = error_for_exception(CTX, httpx.ConnectTimeout("timed out", request=request))
    refused = error_for_exception(CTX, httpx.ConnectError("refused sk-SECRET", request=request))

    assert (timeout.kind, str(timeout)) == (
        "timeout",
        "groq/m: timeout (ConnectTimeout): timed out",
    )
    assert refused.kind == "connection"
    assert "sk-SECRET" not in str(refused)


def test_retry_after_on_503() -> None:
    error = status_error(503, {}, {"retry-after": "12"})

    assert (error.kind, error.retry_after) == ("server", 12.0)
