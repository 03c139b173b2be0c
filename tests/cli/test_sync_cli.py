"""`sync-models`, and the flags it leaves in `list-models`, `status` and `history`, through
the real console script against a fake Groq listing on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_hf_defaults_cli import console
from tests.fakes.provider_server import FakeProviderServer, Reply, Status

SEEDED = "openai/gpt-oss-120b"  # Groq's seeded default
GROQ_ENTRY = {"id": SEEDED, "object": "model", "context_window": 131072,
              "max_completion_tokens": 65536}  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def run(tmp: Path, fake: FakeProviderServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": "gsk-sync-SECRET-42"}
    return console(tmp, env, *args)


def test_sync_flags_a_seeded_model_the_provider_stopped_listing(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    # Groq lists its seeded default: nothing is flagged.
    fake.listing = [GROQ_ENTRY, {"id": "llama-3.1-8b-instant", "context_window": 131072}]
    first = run(tmp_path, fake, "sync-models", "--json")
    assert first.returncode == 0, first.stderr
    [groq] = json.loads(first.stdout)["results"]
    assert (groq["provider"], groq["listed"], groq["unlisted_active"]) == ("groq", 2, [])
    assert "Syncing groq" in first.stderr

    # The model is gone: a dry run shows it and records nothing.
    fake.listing = [{"id": "llama-3.1-8b-instant", "context_window": 131072}]
    dry = run(tmp_path, fake, "sync-models", "--provider", "groq", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("=== DRY RUN MODE")
    assert f"! active chat/{SEEDED} is not listed" in dry.stdout
    assert "retirement proposed" not in dry.stdout
    assert "not listed" not in run(tmp_path, fake, "list-models", "--provider", "groq").stdout

    # The real sync flags it and proposes retiring it, once per workload.
    real = run(tmp_path, fake, "sync-models", "--provider", "groq")
    assert real.returncode == 0, real.stderr
    assert "groq: 1 listed, 0 new, 0 changed, 1 delisted" in real.stdout
    assert f"! active chat/{SEEDED} is not listed (retirement proposed)" in real.stdout
    listed = run(tmp_path, fake, "list-models", "--provider", "groq", "--workload", "chat")
    assert f"{SEEDED} — " in listed.stdout and "[not listed by provider since " in listed.stdout
    payload = json.loads(run(tmp_path, fake, "list-models", "--provider", "groq", "--json").stdout)
    assert [(n["provider"], n["model"]) for n in payload["not_listed"]] == [("groq", SEEDED)]
    status = run(tmp_path, fake, "status", "--provider", "groq")
    assert f"{SEEDED}: active but not listed by the provider since" in status.stdout
    assert f"{SEEDED} (chat): retirement proposed " in status.stdout
    assert "no longer listed; accept with `retire-model`" in status.stdout
    history = run(tmp_path, fake, "history", "--provider", "groq", "--workload", "chat")
    assert "RetirementProposed" in history.stdout and "no longer lists" in history.stdout

    # A person accepts for chat: the flag goes with the retirement.
    assert run(tmp_path, fake, "retire-model", "groq", SEEDED, "--workload", "chat").returncode == 0
    after = run(tmp_path, fake, "list-models", "--provider", "groq", "--workload", "chat")
    assert "not listed" not in after.stdout
    status = run(tmp_path, fake, "status", "--provider", "groq")
    assert f"{SEEDED} (chat): retirement proposed" not in status.stdout
    assert f"{SEEDED} (code): retirement proposed" in status.stdout


def test_a_410_proposes_the_same_retirement_that_status_and_history_show(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    # Groq answers 410 Gone for its seeded default, asked for by name.
    fake.script(SEEDED, Status(410, message="The model has been decommissioned"))
    gone = run(tmp_path, fake, "generate", "--provider", "groq", "--model", SEEDED,
               "--prompt", "hi")  # fmt: skip
    assert gone.returncode == 1, gone.stderr
    # One proposal per workload the model serves, the same event a delisting appends.
    payload = json.loads(run(tmp_path, fake, "status", "--provider", "groq", "--json").stdout)
    proposed = payload[0]["retirement_proposed"]
    assert sorted(p["workload"] for p in proposed) == ["chat", "code", "creative", "summarization"]
    assert {(p["model"], p["cause"]) for p in proposed} == {(SEEDED, "gone")}
    status = run(tmp_path, fake, "status", "--provider", "groq")
    assert f"{SEEDED} (chat): retirement proposed " in status.stdout
    assert "gone (410); accept with `retire-model`" in status.stdout
    history = run(tmp_path, fake, "history", "--provider", "groq", "--workload", "chat")
    assert "RetirementProposed" in history.stdout and "cause=gone" in history.stdout
    assert "gsk-sync-SECRET-42" not in history.stdout + status.stdout


def test_a_pinned_model_that_cannot_take_the_request_fails_at_once_and_sends_nothing(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    # Groq lists its default with an output limit of 65536 tokens.
    fake.listing = [GROQ_ENTRY]
    assert run(tmp_path, fake, "sync-models", "--provider", "groq").returncode == 0
    # Asking it by name for more: one line, exit 1 like any "no usable model", nothing sent.
    fake.script(SEEDED, Reply("never"))
    asked = run(tmp_path, fake, "generate", "--provider", "groq", "--model", SEEDED,
                "--max-tokens", "100000", "--prompt", "hi")  # fmt: skip
    assert asked.returncode == 1
    assert asked.stderr == (
        "error: no usable model for workload 'chat' (groq/openai/gpt-oss-120b: max_tokens "
        "100000 exceeds its output limit 65536 (per its listing))\n"
    )
    assert [r.path for r in fake.requests if r.method == "POST"] == []
    # --verbose says why before failing.
    verbose = run(tmp_path, fake, "generate", "--provider", "groq", "--model", SEEDED,
                  "--max-tokens", "100000", "--prompt", "hi", "--verbose")  # fmt: skip
    assert verbose.returncode == 1 and "exceeds its output limit 65536" in verbose.stderr
    assert [r.path for r in fake.requests if r.method == "POST"] == []


def test_sync_errors_and_bad_input(tmp_path: Path, fake: FakeProviderServer) -> None:
    fake.listing = []
    empty = run(tmp_path, fake, "sync-models", "--provider", "groq")
    assert empty.returncode == 1
    assert "error: groq: groq listed no models; nothing recorded" in empty.stderr
    bad = run(tmp_path, fake, "sync-models", "--provider", "nosuch")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    retired = run(tmp_path, fake, "sync-models", "--provider", "github")
    assert retired.returncode == 1 and "retired by the provider on 2026-07-30" in retired.stderr
    assert "--dry-run" in run(tmp_path, fake, "sync-models", "--help").stdout
