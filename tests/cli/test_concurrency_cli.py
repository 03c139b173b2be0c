"""Several real `freegin-ai` processes at once: the first use of an empty database by eight
processes, and eight concurrent writers of adopt, retire and usage, on SQLite and
PostgreSQL. Nothing fails, nothing is lost, UNIQUE holds and `replay` finds equal tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from freegin_ai.adapters.bootstrap import make_projector
from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.defaults import DEFAULT_MODELS
from freegin_ai.domain.topics import USAGE_LOGGED
from tests.fakes.contention import SHARED, cli_env, run_command, run_workers
from tests.fakes.provider_server import FakeProviderServer, Reply

SCRIPT = Path(sys.executable).parent / "freegin-ai"


def env_for(url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env["FREEGIN_DATABASE_URL"] = url
    env["FREEGIN_DATA_DIR"] = str(tmp_path / "data")
    env["FREEGIN_CONFIG_DIR"] = str(tmp_path / "config")
    return env


def run_at_once(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str]]:
    """Start every command, then wait for all: (exit status, stderr) each."""
    children = [
        subprocess.Popen(
            [str(SCRIPT), *c], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for c in commands
    ]
    results = []
    for child in children:
        _, err = child.communicate(timeout=180)
        results.append((child.returncode, err.decode()))
    return results


def scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    finally:
        engine.dispose()


OPENER = """
import sys
from freegin_ai.adapters.bootstrap import make_projector
from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.store import EventStore
sys.stdin.readline()  # everything imported: wait for the starting shot
Catalog.open(sys.argv[1]).close()
"""


def test_eight_processes_opening_an_empty_database_at_once_all_succeed(
    database_url: str,
) -> None:
    # Given eight processes ready to open the same empty database
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, database_url],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    # When they all start at the same moment
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    failed = []
    for child in children:
        _, err = child.communicate(timeout=180)
        if child.returncode != 0:
            failed.append(err.decode().strip().splitlines()[-1])
    # Then none fails (no "table already exists", no duplicate state row)
    assert failed == []
    # and the set-up happened once: one state row per projection, the defaults seeded once
    projections = len(make_projector(EventStore(database_url)).projections)
    assert scalar(database_url, "SELECT count(*) FROM projection_state") == projections
    assert scalar(database_url, "SELECT count(*) FROM provider_models") == len(DEFAULT_MODELS)
    assert scalar(database_url, "SELECT count(*) FROM freegin_events") == len(DEFAULT_MODELS)


def test_the_first_commands_on_an_empty_database_at_once_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    # Given an empty database, when eight CLI processes use it for the first time at once
    results = run_at_once([["list-models"]] * 8, env_for(database_url, tmp_path))
    # Then none fails, and the defaults are seeded once
    failed = [(code, err) for code, err in results if code != 0 or "rror" in err]
    assert failed == []
    assert scalar(database_url, "SELECT count(*) FROM provider_models") == len(DEFAULT_MODELS)


def test_eight_writers_at_once_lose_nothing_and_replay_equal(
    database_url: str, tmp_path: Path
) -> None:
    with FakeProviderServer() as fake:
        fake.script(SHARED, Reply("ok"))
        env = cli_env(database_url, tmp_path, fake.openai_url)
        # Given a database in use, when eight processes adopt, retire and log usage at once
        assert run_command(["list-models"], env)[1] == 0
        results = run_workers(8, env)
    # Then every command succeeded
    assert [(code, err) for _, code, err, _ in results if code != 0] == []
    # and nothing is lost: every own model retired, the shared one active, 8 usage rows
    rows = rows_of(
        database_url, "SELECT model, status FROM provider_models WHERE provider = 'groq'"
    )
    assert {m: s for m, s in rows if m.startswith("own-")} == {
        f"own-{w}-0": "retired" for w in range(8)
    }
    assert dict(rows)[SHARED] == "active"
    # UNIQUE holds: one row per (provider, workload, model)
    duplicates = "SELECT count(*) FROM (SELECT provider, workload, model FROM provider_models "
    duplicates += "GROUP BY provider, workload, model HAVING count(*) > 1) d"
    assert scalar(database_url, duplicates) == 0
    assert scalar(database_url, "SELECT count(*) FROM provider_usage") == 8
    usage_events = f"SELECT count(*) FROM freegin_events WHERE topic = '{USAGE_LOGGED}'"
    assert scalar(database_url, usage_events) == 8
    # and the read tables are exactly what a replay of the log builds
    catalog = Catalog.open(database_url)
    try:
        assert catalog.replay().equal
    finally:
        catalog.close()


def rows_of(url: str, sql: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(str(a), str(b)) for a, b in conn.execute(text(sql))]
    finally:
        engine.dispose()
