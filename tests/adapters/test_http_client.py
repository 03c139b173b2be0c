"""The default HTTP client's own choices (ADR 0019): proxies from the environment, read once.

Everything else it does (requests, streams, timeouts, errors) is exercised over real HTTP by
the provider adapter tests, which run on both transports.
"""

from __future__ import annotations

import pytest

from freegin_ai.adapters.http_client import AiohttpClient, timeout_for

PROXY = "http://proxy.internal:3128"


def client(**proxies: str) -> AiohttpClient:
    return AiohttpClient(timeout_for(5.0), proxies=proxies)


def test_no_proxy_configured_means_direct() -> None:
    assert client().proxy_for("https://api.groq.com/openai/v1/chat/completions") is None


def test_the_scheme_picks_the_proxy_and_all_is_the_fallback() -> None:
    c = client(https=PROXY, all="http://all.internal:8080")

    assert c.proxy_for("https://api.groq.com/openai/v1/chat/completions") == PROXY
    assert c.proxy_for("http://localhost:11434/v1/chat/completions") == "http://all.internal:8080"


def test_no_proxy_hosts_connect_directly() -> None:
    c = client(https=PROXY, http=PROXY, no="localhost,.corp.example")

    assert c.proxy_for("http://localhost:11434/api/chat") is None
    assert c.proxy_for("https://llm.corp.example/v1/chat/completions") is None
    assert c.proxy_for("https://user:pw@api.mistral.ai:443/v1/models") == PROXY


def test_the_choice_goes_by_host_whatever_the_path_port_or_credentials() -> None:
    c = client(https=PROXY, no="internal.example")

    assert c.proxy_for("https://api.groq.com/a") == PROXY
    assert c.proxy_for("https://api.groq.com:443/b?c=d") == PROXY
    assert c.proxy_for("https://internal.example/v1") is None
    assert c.proxy_for("https://key@internal.example:8443/v1") is None


def test_the_environment_is_read_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "localhost")
    c = AiohttpClient(timeout_for(5.0))
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:1")

    assert c.proxy_for("https://generativelanguage.googleapis.com/v1beta/models") == PROXY
    assert c.proxy_for("https://localhost:8443/v1") is None
