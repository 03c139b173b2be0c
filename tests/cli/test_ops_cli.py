"""`stats`, `smoke`, `trial-model` and `end-trial` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply

SCRIPT = Path(sys.executable).parent / "freegin-ai"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def run(
    tmp: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env |= {"FREEGIN_DATA_DIR": str(tmp), "FREEGIN_CONFIG_DIR": str(tmp / "config")}
    env |= extra or {}
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_stats_per_model_with_total_and_json(tmp_path: Path, fake: FakeProviderServer) -> None:
    env = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": "k-123456"}
    run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1")
    fake.script("g-1", Reply("hi", prompt_tokens=10, completion_tokens=5))
    for _ in range(3):
        assert (
            run(tmp_path, "generate", "--prompt", "x", "--provider", "groq", extra=env).returncode
            == 0
        )
    text = run(tmp_path, "stats", "--provider", "groq")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("PROVIDER/WORKLOAD/MODEL")
    assert lines[1].startswith("groq/Chat/g-1") and " 3 " in lines[1]
    assert lines[-1].startswith("TOTAL")
    payload = json.loads(
        run(tmp_path, "stats", "--provider", "groq", "--since", "7d", "--json").stdout
    )
    [model] = payload["models"]
    assert (model["calls"], model["success_rate"], model["total_tokens"]) == (3, 100.0, 45)
    assert payload["total"]["calls"] == 3
    assert model["p50_latency_ms"] <= model["p95_latency_ms"]


def test_smoke_exit_code_and_trial_commands(tmp_path: Path, fake: FakeProviderServer) -> None:
    env = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": "k-123456"}
    run(tmp_path, "adopt-model", "groq", "coder", "--workload", "code")
    fake.script("coder", Reply("```python\ndef add(a, b):\n    return a + b\n```"))
    ok = run(
        tmp_path, "smoke", "--provider", "groq", "--workload", "code", "--model", "coder", extra=env
    )
    assert ok.returncode == 0 and "coder: PASS" in ok.stdout
    fake.script("coder", Reply("just add them"))
    bad = run(
        tmp_path, "smoke", "--provider", "groq", "--workload", "code", "--model", "coder", extra=env
    )
    assert bad.returncode == 1 and "FAIL  no code block" in bad.stdout

    assert (
        run(
            tmp_path, "trial-model", "groq", "new-one", "--workload", "chat", "--percent", "150"
        ).returncode
        == 2
    )
    started = run(
        tmp_path, "trial-model", "groq", "new-one", "--workload", "chat", "--percent", "20"
    )
    assert started.returncode == 0 and "20%" in started.stdout
    listing = run(
        tmp_path, "list-models", "--provider", "groq", "--workload", "chat", "--include-suggestions"
    )
    assert "trial  new-one" in listing.stdout
    ended = run(
        tmp_path, "end-trial", "groq", "new-one", "--workload", "chat", "--adopt", "--priority", "4"
    )
    assert ended.returncode == 0
    assert (
        "4  new-one"
        in run(tmp_path, "list-models", "--provider", "groq", "--workload", "chat").stdout
    )
    history = run(tmp_path, "history", "--model", "new-one").stdout
    assert "TrialStarted" in history and "TrialEnded" in history
    again = run(tmp_path, "end-trial", "groq", "new-one", "--workload", "chat", "--reject")
    assert again.returncode == 2 and "not on trial" in again.stderr
