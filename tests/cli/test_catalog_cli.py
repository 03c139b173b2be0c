"""The real `freegin-ai` console script in a temporary data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "freegin-ai"


def run(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env["FREEGIN_DATA_DIR"] = str(data_dir)
    env["FREEGIN_CONFIG_DIR"] = str(data_dir / "config")
    return subprocess.run(
        [str(SCRIPT), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def event_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "app.db") as db:
        return int(db.execute("SELECT count(*) FROM freegin_events").fetchone()[0])


def test_list_models_shows_the_seeded_roster_in_the_guides_format(tmp_path: Path) -> None:
    result = run(tmp_path, "list-models", "--provider", "huggingface", "--workload", "chat")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Provider: huggingface | Workload: Chat\n"
        "  Active:\n"
        "    100  mistralai/Mistral-7B-Instruct-v0.2 — General-purpose chat model\n"
    )
    assert (tmp_path / "app.db").exists()


def test_adopt_model_prints_the_guides_output(tmp_path: Path) -> None:
    run(
        tmp_path, "adopt-model", "hf", "tiiuae/falcon-7b-instruct", "--rationale", "Fallback option"
    )
    result = run(
        tmp_path,
        "adopt-model",
        "huggingface",
        "mistralai/Mistral-7B-Instruct-v0.2",
        "--workload",
        "chat",
        "--priority",
        "50",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Adopted model 'mistralai/Mistral-7B-Instruct-v0.2' for provider 'huggingface' and "
        "workload 'Chat' with priority 50\n"
        "\n"
        "Active models for huggingface / Chat:\n"
        "   50  mistralai/Mistral-7B-Instruct-v0.2 — General-purpose chat model\n"
        "  100  tiiuae/falcon-7b-instruct — Fallback option\n"
    )


def test_retired_models_are_hidden_unless_asked_and_then_show_their_status(
    tmp_path: Path,
) -> None:
    assert (
        run(tmp_path, "retire-model", "hf", "bigcode/starcoder", "--workload", "code").returncode
        == 0
    )
    hidden = run(tmp_path, "list-models", "--provider", "hf", "--workload", "code")
    assert "starcoder" not in hidden.stdout
    shown = run(
        tmp_path, "list-models", "--provider", "hf", "--workload", "code", "--include-retired"
    )
    assert "bigcode/starcoder — Specialized for code generation  [retired]" in shown.stdout


def test_list_models_json_is_machine_readable_and_ordered(tmp_path: Path) -> None:
    result = run(tmp_path, "list-models", "--json", "--include-suggestions")
    payload = json.loads(result.stdout)
    keys = [(m["provider"], m["workload"], m["priority"], m["model"]) for m in payload["models"]]
    assert keys == sorted(keys)
    assert payload["suggestions"] == []
    assert {"status", "rationale", "created_at", "updated_at"} <= set(payload["models"][0])


@pytest.mark.parametrize(
    "args",
    [
        ("list-models", "--provider", "skynet"),
        ("list-models", "--workload", "dance"),
        ("adopt-model", "hf", "some/model", "--priority", "-1"),
        ("adopt-model", "hf", "bad model name"),
        ("retire-model", "hf", "never/adopted", "--workload", "chat"),
        ("list-models", "--as-of", "the day before yesterday"),
        ("frobnicate",),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    run(tmp_path, "list-models")
    before = event_count(tmp_path)
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert event_count(tmp_path) == before


def test_history_and_replay(tmp_path: Path) -> None:
    run(tmp_path, "adopt-model", "groq", "qwen-qwq-32b", "--workload", "code", "--priority", "12")
    run(tmp_path, "retire-model", "groq", "qwen-qwq-32b", "--workload", "code", "--reason", "gone")
    history = run(tmp_path, "history", "--model", "qwen-qwq-32b")
    lines = history.stdout.splitlines()
    assert len(lines) == 2
    assert "ModelAdopted" in lines[0] and "priority=12" in lines[0]
    assert "ModelRetired" in lines[1] and "reason=gone" in lines[1]
    entries = json.loads(run(tmp_path, "history", "--json", "--provider", "groq").stdout)
    assert [e["kind"] for e in entries][-2:] == ["ModelAdopted", "ModelRetired"]

    replay = run(tmp_path, "replay")
    assert replay.returncode == 0
    assert "The rebuilt tables equal what was there." in replay.stdout
    assert "Replaying" in replay.stderr


def test_as_of_shows_the_roster_before_a_change(tmp_path: Path) -> None:
    run(tmp_path, "list-models")
    before = json.loads(run(tmp_path, "history", "--json").stdout)[-1]["at"]
    run(tmp_path, "retire-model", "hf", "facebook/bart-large-cnn", "--workload", "summarization")
    now = run(tmp_path, "list-models", "--provider", "hf", "--workload", "summarization")
    then = run(
        tmp_path,
        "list-models",
        "--provider",
        "hf",
        "--workload",
        "summarization",
        "--as-of",
        before,
    )
    assert "bart-large-cnn" not in now.stdout
    assert "100  facebook/bart-large-cnn" in then.stdout


def test_every_command_has_help(tmp_path: Path) -> None:
    top = run(tmp_path, "--help")
    assert top.returncode == 0
    commands = ["list-models", "adopt-model", "retire-model", "history", "replay"]
    for command in commands:
        assert command in top.stdout
        result = run(tmp_path, command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout


def test_as_of_includes_suggestions_as_they_stood(tmp_path: Path) -> None:
    run(tmp_path, "trial-model", "groq", "challenger", "--workload", "chat", "--percent", "5")
    before = json.loads(run(tmp_path, "history", "--json").stdout)[-1]["at"]
    run(tmp_path, "end-trial", "groq", "challenger", "--workload", "chat", "--reject")
    then = run(tmp_path, "list-models", "--provider", "groq", "--workload", "chat",
               "--include-suggestions", "--as-of", before)  # fmt: skip
    now = run(tmp_path, "list-models", "--provider", "groq", "--workload", "chat",
              "--include-suggestions")  # fmt: skip
    assert "trial  challenger" in then.stdout
    assert "rejected  challenger" in now.stdout


def test_a_bad_as_of_on_a_new_database_writes_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "list-models", "--as-of", "someday")
    assert result.returncode == 2
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("adopt-model", "hf", "bad model name"),
        ("retire-model", "hf", "bad;name", "--workload", "chat"),
        ("trial-model", "hf", "m", "--workload", "chat", "--percent", "0"),
        ("adopt-model", "nowhere", "m"),
    ],
)
def test_bad_input_on_a_new_database_creates_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "app.db").exists()
