"""Quota through the real console script: `status` per model (used / limit per minute and
day, next reset, routable or why, `--json`), `clear-provider`, and `generate --wait`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_router_cli import groq_env, run
from tests.fakes.provider_server import FakeProviderServer, PaymentRequired, Reply

ASK = ("--prompt", "hi", "--provider", "groq", "--workload", "classification")


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def write_config(tmp: Path, text: str) -> None:
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / "config.toml").write_text(text, encoding="utf-8")


def models(tmp: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = run(tmp, "status", "--provider", "groq", "--json", extra=env)
    assert result.returncode == 0, result.stderr
    (groq,) = json.loads(result.stdout)
    return {m["model"]: m for m in groq["models"]}


def test_status_shows_use_against_limits_and_why_a_model_is_skipped(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    # A daily limit: the CLI runs on the real clock, and a minute may end between two commands.
    write_config(tmp_path, '[limits."groq/g-1"]\nrequests_per_minute = 30\nrequests_per_day = 1\n')
    # Classification: a workload without seeded groq models, so g-1 is the only candidate.
    run(tmp_path, "adopt-model", "groq", "g-1", "--workload", "classification")
    fake.script("g-1", Reply("one"))
    assert run(tmp_path, "generate", *ASK, extra=groq_env(fake)).returncode == 0
    g1 = models(tmp_path, groq_env(fake))["g-1"]
    assert g1["minute"]["requests"]["limit"] == 30  # type: ignore[index]
    assert g1["day"]["requests"] == {"used": 1, "limit": 1, "remaining": 0}  # type: ignore[index]
    assert g1["routable"] is False
    assert "daily requests spent, back at" in str(g1["why"])
    assert str(g1["back_at"]).endswith("T00:00:00Z")
    assert g1["limits_source"] == "config.toml"
    text = run(tmp_path, "status", "--provider", "groq", extra=groq_env(fake)).stdout
    assert "g-1: this minute" in text and "today 1/1 req" in text
    assert "not routable: quota: daily requests spent" in text
    # Nothing else to route to: a short wait is not enough, and says why.
    failed = run(tmp_path, "generate", *ASK, "--wait", "0s", extra=groq_env(fake))
    assert failed.returncode == 1
    assert "daily requests spent" in failed.stderr


def test_generate_wait_takes_a_duration_or_fails_in_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "--prompt", "hi", "--wait", "soon")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --wait: cannot read 'soon'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_clear_provider_brings_a_sidelined_provider_back(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    run(tmp_path, "adopt-model", "groq", "g-1", "--workload", "classification")
    fake.script("g-1", PaymentRequired(), Reply("back"))
    assert run(tmp_path, "generate", *ASK, extra=groq_env(fake)).returncode == 1
    why = models(tmp_path, groq_env(fake))["g-1"]["why"]
    assert "out of credit (402)" in str(why) and "clear-provider groq" in str(why)
    cleared = run(tmp_path, "clear-provider", "groq", "--reason", "topped up")
    assert cleared.returncode == 0, cleared.stderr
    assert models(tmp_path, groq_env(fake))["g-1"]["routable"] is True
    assert run(tmp_path, "generate", *ASK, extra=groq_env(fake)).stdout == "back\n"
    history = run(tmp_path, "history", "--provider", "groq").stdout
    assert "ProviderCleared" in history
    bad = run(tmp_path, "clear-provider", "skynet")
    assert bad.returncode == 2 and "unknown provider" in bad.stderr
