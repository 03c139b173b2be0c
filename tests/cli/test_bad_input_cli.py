"""Bad input is the caller's fault: one-line error, exit 2, nothing written, nothing sent, no
cooldown. Through the real console script, against a fake provider on 127.0.0.1."""

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
KEY = "gsk-badinput-SECRET-24680"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        server.script("g-1", Reply("fine"))
        yield server


def run(
    tmp: Path,
    *args: str,
    stdin: str | bytes | None = None,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    for name in list(env):
        if name.endswith(("_API_KEY", "_TOKEN")):
            del env[name]
    env |= {"FREEGIN_DATA_DIR": str(tmp), "FREEGIN_CONFIG_DIR": str(tmp / "config")}
    env |= extra or {}
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [str(SCRIPT), *args], env=env, input=data, capture_output=True, timeout=60
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def groq(fake: FakeProviderServer) -> dict[str, str]:
    return {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": KEY}


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("priority", ["9223372036854775808", "2147483648", "-1"])
def test_a_priority_outside_integer_is_refused_and_nothing_is_written(
    tmp_path: Path, priority: str
) -> None:
    result = run(tmp_path, "adopt-model", "groq", "vendor/x", "--priority", priority)

    assert_refused(result, "priority must be from 0 to 2147483647")
    assert not (tmp_path / "app.db").exists()


def test_a_prompt_that_is_not_utf8_is_refused_sent_nowhere_and_cools_nothing(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    assert run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1").returncode == 0

    result = run(tmp_path, "generate", "--provider", "groq", stdin=b"\xff\xfe", extra=groq(fake))

    assert_refused(result, "not valid UTF-8", "byte 0xff at offset 0")
    assert fake.requests == []
    # Nothing was logged against the model: the next valid request goes straight through.
    ok = run(tmp_path, "generate", "--provider", "groq", stdin="hi", extra=groq(fake))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "fine"
    stats = json.loads(run(tmp_path, "stats", "--json").stdout)
    assert [m["calls"] for m in stats["models"]] == [1]


def test_a_prompt_file_or_argument_that_is_not_utf8_is_refused(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    bad = tmp_path / "prompt.txt"
    bad.write_bytes(b"hello \xc3\x28 world")

    from_file = run(tmp_path, "generate", "--prompt-file", str(bad), extra=groq(fake))
    # A command-line argument that was not UTF-8 reaches Python with surrogate escapes.
    argument = subprocess.run(
        [str(SCRIPT).encode(), b"generate", b"--prompt", b"caf\xe9"],
        env={**os.environ, "FREEGIN_DATA_DIR": str(tmp_path), **groq(fake)},
        capture_output=True,
        timeout=60,
    )

    assert_refused(from_file, "not valid UTF-8", "offset 6")
    assert argument.returncode == 2
    assert b"not valid UTF-8" in argument.stderr
    assert fake.requests == []
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize(
    "model",
    ["two words", "line\nbreak", "tab\there", "x" * 10_000, "ctrl\x07bell", " "],
    ids=["space", "newline", "tab", "10k chars", "control", "blank"],
)
def test_generate_and_smoke_refuse_impossible_model_names(
    tmp_path: Path, fake: FakeProviderServer, model: str
) -> None:
    generate = run(tmp_path, "generate", "--model", model, "--prompt", "hi", extra=groq(fake))
    smoke = run(
        tmp_path, "smoke", "--provider", "groq", "--workload", "chat", "--model", model,
        extra=groq(fake),
    )  # fmt: skip

    for result in (generate, smoke):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert fake.requests == []
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("list-models", "--as-of", ""),
        ("list-models", "--provider", ""),
        ("stats", "--since", ""),
        ("history", "--model", " "),
        ("smoke", "--provider", "groq", "--workload", "chat", "--model", ""),
        ("refresh-models", "--all", "--max-age", ""),
        ("generate", "--prompt", "hi", "--system", ""),
    ],
)
def test_an_empty_value_where_one_is_required_is_refused(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = run(tmp_path, *args)

    assert_refused(result, "expected a value, got an empty string")
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("list-models", "--as-of", "99999999999d"),
        ("list-models", "--as-of", "2739000d"),
        ("stats", "--since", "99999999999d"),
        ("stats", "--since", "400000w"),
        ("refresh-models", "--all", "--max-age", "99999999999d"),
    ],
)
def test_an_age_too_large_to_be_a_date_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run(tmp_path, *args)

    assert_refused(result, "the age")
    assert not (tmp_path / "app.db").exists()


def test_trial_model_refuses_an_active_model(tmp_path: Path, database_url: str) -> None:
    db = {"FREEGIN_DATABASE_URL": database_url}
    assert run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1", extra=db).returncode == 0

    result = run(
        tmp_path, "trial-model", "groq", "g-1", "--workload", "chat", "--percent", "20", extra=db
    )

    assert_refused(result, "already active", "nothing to put on trial")
    history = json.loads(run(tmp_path, "history", "--model", "g-1", "--json", extra=db).stdout)
    assert [e["kind"] for e in history] == ["ModelAdopted"]


@pytest.mark.parametrize("key", ["gsk-abc\x07def", "gsk-abc\x1bdef", "gsk abc"])
def test_add_service_refuses_control_characters_and_spaces_with_exit_2(
    tmp_path: Path, key: str
) -> None:
    result = run(tmp_path, "add-service", "groq", stdin=key + "\n")

    assert_refused(result, "spaces or control characters")
    assert not (tmp_path / "config" / "credentials.json").exists()


def test_a_credentials_file_open_to_others_is_warned_about(tmp_path: Path) -> None:
    assert run(tmp_path, "add-service", "groq", stdin=KEY + "\n").returncode == 0
    path = tmp_path / "config" / "credentials.json"
    assert run(tmp_path, "list-services").stderr == ""  # 0600: nothing to say

    path.chmod(0o644)
    listed = run(tmp_path, "list-services")
    status = run(tmp_path, "status")

    for result in (listed, status):
        assert result.returncode == 0, result.stderr
        assert "open to group and others (mode 0644)" in result.stderr
        assert "chmod 600" in result.stderr
        assert KEY not in result.stderr + result.stdout
