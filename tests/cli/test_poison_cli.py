"""Every command still works on a log holding events the read side cannot apply, and `replay`
and `status` report them; on SQLite and on PostgreSQL (ADR 0009)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from freegin_ai.adapters.store import EventStore
from tests.fakes.poison import POISONS, append_raw
from tests.fakes.provider_server import FakeProviderServer, Reply

SCRIPT = Path(sys.executable).parent / "freegin-ai"


class Cli:
    def __init__(self, tmp: Path, database_url: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
        for name in list(self.env):
            if name.endswith(("_API_KEY", "_TOKEN")):
                del self.env[name]
        self.env |= {
            "FREEGIN_DATA_DIR": str(tmp),
            "FREEGIN_CONFIG_DIR": str(tmp / "config"),
            "FREEGIN_DATABASE_URL": database_url,
        }

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(SCRIPT), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result


def test_every_command_works_on_a_poisoned_log(tmp_path: Path, database_url: str) -> None:
    cli = Cli(tmp_path, database_url)
    assert cli("list-models").returncode == 0  # creates and seeds the database
    store = EventStore(database_url)
    try:
        for topic, state in POISONS.values():
            append_raw(store, topic, state)
    finally:
        store.close()

    with FakeProviderServer() as fake:
        fake.script("g-1", Reply("answer"))
        cli.env |= {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": "gsk-x"}
        ok = [
            ("adopt-model", "groq", "g-1", "--priority", "1"),
            ("list-models",),
            ("list-models", "--json", "--include-suggestions"),
            ("list-models", "--as-of", "1d"),
            ("history",),
            ("history", "--json"),
            ("stats",),
            ("stats", "--json"),
            ("generate", "--provider", "groq", "--prompt", "hi"),
            ("retire-model", "groq", "g-1", "--workload", "chat"),
            ("list-services",),
        ]
        for args in ok:
            result = cli(*args)
            assert result.returncode == 0, (args, result.stderr)

    status = cli("status")
    assert status.returncode == 0
    assert "could not be applied" in status.stderr
    assert "priority" in status.stderr

    status_json = cli("status", "--json")
    assert status_json.returncode == 0
    assert isinstance(json.loads(status_json.stdout), list)

    replay = cli("replay")
    assert replay.returncode == 0
    assert "could not be applied and were skipped" in replay.stdout

    replay_json = cli("replay", "--json")
    assert replay_json.returncode == 0, replay_json.stderr
    report = json.loads(replay_json.stdout)
    positions = {n["position"] for n in report["not_applied"]}
    assert len(positions) == len(POISONS)
    assert all(n["reason"] for n in report["not_applied"])


def test_replay_json_on_a_fresh_database(tmp_path: Path, database_url: str) -> None:
    result = Cli(tmp_path, database_url)("replay", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] > 0  # the seeded defaults
    assert {t["table"] for t in report["tables"]} >= {"provider_models", "provider_usage"}
    assert all(t["equal"] for t in report["tables"])
    assert report["not_applied"] == []
