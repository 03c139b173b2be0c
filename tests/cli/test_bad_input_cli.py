"""Bad input is the caller's fault: one-line error, exit 2, nothing written, nothing sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "freegin-ai"


def run(
    tmp: Path, *args: str, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    for name in list(env):
        if name.endswith(("_API_KEY", "_TOKEN")):
            del env[name]
    env |= {"FREEGIN_DATA_DIR": str(tmp), "FREEGIN_CONFIG_DIR": str(tmp / "config")}
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [str(SCRIPT), *args], env=env, input=data, capture_output=True, timeout=60
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


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
