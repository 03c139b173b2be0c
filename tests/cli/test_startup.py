"""A command's process starts lean and a long-running one settles (ADR 0023): checked in
processes of their own, since both change interpreter-wide state."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply

SCRIPT = Path(sys.executable).parent / "freegin-ai"

#: What httpx's command-line client loads when they are installed.
HTTPX_CLI = ("click", "rich", "pygments")

PROBE = """
import gc, json, sys
{setup}
import httpx
print(json.dumps({{
    "loaded": [m for m in {cli!r} if m in sys.modules],
    "threshold": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
    "httpx_main": callable(getattr(httpx, "main", None)),
}}))
"""


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a Python process of its own."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def probe(setup: str) -> dict[str, object]:
    done = python(PROBE.format(setup=setup, cli=HTTPX_CLI))
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def installed(*names: str) -> bool:
    return all(importlib.util.find_spec(n) is not None for n in names)


@pytest.mark.skipif(not installed(*HTTPX_CLI), reason="httpx's CLI dependencies not installed")
def test_httpx_loads_its_command_line_client_unless_the_process_started_lean() -> None:
    plain = probe("")
    assert plain["loaded"] == list(HTTPX_CLI)  # the cost `lean` avoids is real here
    lean = probe("from freegin_ai.cli import startup; startup.lean()")
    assert lean["loaded"] == []
    assert lean["httpx_main"]  # httpx keeps its stub `main`, as without the extra
    assert lean["threshold"][0] == 300_000  # type: ignore[index]
    assert lean["threshold"][1:] == plain["threshold"][1:]  # type: ignore[index]


LOADS = """
import gc, json
from freegin_ai.cli import startup
startup.lean()
before = gc.get_stats()[0]["collections"]
import psycopg, sqlalchemy.dialects.postgresql.psycopg
import freegin_ai.adapters.bootstrap, freegin_ai.adapters.router, freegin_ai.cli.main
print(json.dumps([before, gc.get_stats()[0]["collections"], len(gc.get_objects())]))
"""


def test_loading_what_a_command_loads_runs_no_collection() -> None:
    done = python(LOADS)
    assert done.returncode == 0, done.stderr
    before, after, tracked = json.loads(done.stdout)
    assert after == before  # with the usual 700, or 50,000, it collected along the way
    assert tracked < 300_000 / 2  # and with room to spare


def test_settle_restores_the_usual_thresholds_and_freezes_what_start_up_loaded() -> None:
    plain = probe("")
    settled = probe("from freegin_ai.cli import startup; startup.lean(); startup.settle()")
    assert settled["threshold"] == plain["threshold"]
    assert plain["frozen"] == 0
    assert isinstance(settled["frozen"], int) and settled["frozen"] > 1_000


@pytest.mark.skipif(not installed(*HTTPX_CLI), reason="httpx's CLI dependencies not installed")
def test_the_console_script_answers_a_generate_without_httpxs_command_line_client(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env |= {"FREEGIN_DATA_DIR": str(tmp_path), "FREEGIN_CONFIG_DIR": str(tmp_path / "config")}
    with FakeProviderServer() as fake:
        fake.script("m-1", Reply("fine"))
        env |= {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": "gsk-startup"}
        # Python lists every module the process imports on stderr.
        env["PYTHONPROFILEIMPORTTIME"] = "1"
        done = subprocess.run(
            [str(SCRIPT), "generate", "--provider", "groq", "--model", "m-1", "--prompt", "hi"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "fine"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "httpx" in imported
    assert not imported & set(HTTPX_CLI)


FINISHING = """
import threading, time
from freegin_ai.cli import main as cli


class Witness:
    def __del__(self) -> None:
        print("torn down", flush=True)


witness = Witness()


def command_leaving_a_thread() -> int:
    def finishing() -> None:
        time.sleep(0.3)
        print("thread done", flush=True)

    threading.Thread(target=finishing).start()  # non-daemon, still running at return
    return 3


cli.main = command_leaving_a_thread  # the probe's own stand-in for the parsed command
cli.run()
"""


def test_the_console_script_waits_for_its_threads_then_exits_without_teardown() -> None:
    done = python(FINISHING)
    assert done.returncode == 3, done.stderr
    # The thread finished (waited for, as the usual exit does); nothing was torn down after.
    assert done.stdout == "thread done\n"
