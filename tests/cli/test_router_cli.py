"""`generate`, `status` and the credential commands through the real console script, against
a fake provider on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider_server import FakeProviderServer, RateLimited, Reply, ServerError

SCRIPT = Path(sys.executable).parent / "freegin-ai"
KEY = "gsk-cli-SECRET-5566778899"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def run(
    tmp: Path, *args: str, stdin: str | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    for name in list(env):
        if name.endswith(("_API_KEY", "_TOKEN")):
            del env[name]
    env |= {"FREEGIN_DATA_DIR": str(tmp), "FREEGIN_CONFIG_DIR": str(tmp / "config")}
    env |= extra or {}
    return subprocess.run(
        [str(SCRIPT), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def groq_env(fake: FakeProviderServer) -> dict[str, str]:
    return {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": KEY}


def test_generate_reads_stdin_and_prints_json_with_provider_model_latency_tokens(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1")
    fake.script("g-1", Reply("a joke", prompt_tokens=7, completion_tokens=3))
    result = run(
        tmp_path,
        "generate",
        "--provider",
        "groq",
        "--workload",
        "chat",
        "--format",
        "json",
        stdin="Tell me a joke",
        extra=groq_env(fake),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["text"] == "a joke"
    assert (payload["provider"], payload["model"]) == ("groq", "g-1")
    assert (payload["prompt_tokens"], payload["completion_tokens"]) == (7, 3)
    assert payload["latency_ms"] >= 0
    assert fake.last_request().body["messages"][-1]["content"] == "Tell me a joke"


def test_generate_verbose_explains_and_every_failure_gets_a_line(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1")
    run(tmp_path, "adopt-model", "groq", "g-2", "--priority", "2")
    fake.script("g-1", ServerError())
    fake.script("g-2", RateLimited(retry_after="30"))
    result = run(
        tmp_path, "generate", "--provider", "groq", "--prompt", "hi", "--verbose",
        extra=groq_env(fake),
    )  # fmt: skip
    assert result.returncode == 1
    assert "routing: pinned-provider" in result.stderr
    assert "skipped huggingface" not in result.stderr  # pinned: other providers not considered
    failures = [
        line for line in result.stderr.splitlines() if line.startswith("  ") and "ms)" in line
    ]
    # g-1, g-2, then groq's seeded default (unknown to the fake: 404).
    assert len(failures) == 3
    assert "g-1" in failures[0] and "HTTP 500" in failures[0]
    assert "g-2" in failures[1] and "429" in failures[1]
    assert KEY not in result.stdout + result.stderr
    status = run(tmp_path, "status", "--provider", "groq", "--json", extra=groq_env(fake))
    [groq] = json.loads(status.stdout)
    assert groq["usable"] and groq["key"] == "environment"
    assert {c["model"] for c in groq["cooling"]} == {"g-1", "g-2", "openai/gpt-oss-120b"}


def test_generate_without_a_prompt_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "--prompt", "  ")
    assert result.returncode == 2
    # A blank value is refused while parsing, like any empty option value (ADR 0009).
    assert result.stderr == (
        "freegin-ai generate: error: argument --prompt: expected a value, got an empty string\n"
    )


def test_credentials_are_stored_0600_and_listed_by_source(tmp_path: Path) -> None:
    added = run(tmp_path, "add-service", "groq", stdin=KEY + "\n")
    assert added.returncode == 0 and KEY not in added.stdout
    [path] = (tmp_path / "config").glob("credentials*")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = json.loads(run(tmp_path, "list-services", "--json").stdout)
    sources = {row["provider"]: row["key"] for row in listed}
    assert sources["groq"] == "stored" and sources["google"] == "none"
    assert sources["ollama"] == "not needed"
    from_env = json.loads(
        run(tmp_path, "list-services", "--json", extra={"GEMINI_API_KEY": "x"}).stdout
    )
    assert {r["provider"]: r["key"] for r in from_env}["google"] == "environment"
    assert run(tmp_path, "remove-service", "groq").returncode == 0
    assert run(tmp_path, "remove-service", "groq").returncode == 1
    # Keys never enter the event log or the read tables.
    run(tmp_path, "add-service", "groq", stdin=KEY + "\n")
    run(tmp_path, "status")
    assert KEY.encode() not in (tmp_path / "app.db").read_bytes()


def test_after_generate_exits_the_guides_sqlite3_query_sees_the_call(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    import sqlite3

    run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1")
    fake.script("g-1", Reply("hi", prompt_tokens=2, completion_tokens=1))
    result = run(tmp_path, "generate", "--provider", "groq", "--prompt", "hi", extra=groq_env(fake))
    assert result.returncode == 0, result.stderr
    # Read as the guide does, with sqlite3 and no freegin-ai command in between.
    with sqlite3.connect(tmp_path / "app.db") as db:
        rows = db.execute(
            "SELECT provider, model, success, prompt_tokens FROM provider_usage"
        ).fetchall()
    assert rows == [("groq", "g-1", 1, 2)]
