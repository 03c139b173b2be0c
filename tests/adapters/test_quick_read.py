"""The quick SQLite reader answers only when the read tables can be trusted as they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.quick_read import read_catalog
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion
from freegin_ai.domain.model_info import ModelInfo
from freegin_ai.domain.roster import RosterEntry
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.tables import projection_state
from tests.conftest import FakeClock


def quick(url: str, **kw: object) -> object:
    args: dict[str, object] = {
        "provider": None, "workload": None, "include_retired": False, "include_suggestions": True,
    }  # fmt: skip
    args.update(kw)
    return read_catalog(url, **args)  # type: ignore[arg-type]


def test_a_caught_up_database_gives_the_same_rows_as_the_full_path(
    sqlite_url: str, clock: FakeClock
) -> None:
    catalog = Catalog.open(sqlite_url, clock=clock)
    try:
        catalog.propose([ProposeSuggestion(provider="hf", workload="chat", model="a/b")])
        catalog.adopt_model(AdoptModel(provider="groq", workload="code", model="c", priority=3))
        no_flags: dict[tuple[str, str], str] = {}
        full = (catalog.list_models(), catalog.list_suggestions(), no_flags)
        assert quick(sqlite_url) == full
        assert quick(sqlite_url, provider="groq", workload="code", include_suggestions=False) == (
            catalog.list_models(provider="groq", workload=Workload.CODE),
            None,
            {},
        )
        # Once Groq's listing is synced without "c", both paths flag it the same way.
        catalog.record_listing("groq", {"other/model": ModelInfo()}, source="test")
        rows = catalog.list_models(provider="groq")
        flags = catalog.not_listed([(r.provider, r.model) for r in rows])
        assert ("groq", "c") in flags
        assert quick(sqlite_url, provider="groq", include_suggestions=False) == (rows, None, flags)
    finally:
        catalog.close()


def test_it_declines_when_the_tables_lag_are_outdated_or_unseeded(
    sqlite_url: str, clock: FakeClock, postgres_url: str
) -> None:
    assert quick(sqlite_url) is None  # no file yet
    catalog = Catalog.open(sqlite_url, clock=clock)
    try:
        assert quick(sqlite_url) is not None
        lagging = RosterEntry.adopt(
            provider="groq", workload="chat", model="new", priority=1,
            rationale=None, metadata=None, source="manual", at=clock(),
        )  # fmt: skip
        catalog.store.save(lagging)  # appended, not yet projected
        assert quick(sqlite_url) is None
        catalog.projector.catch_up()
        assert quick(sqlite_url) is not None
        with catalog.store.engine.begin() as conn:
            conn.execute(
                projection_state.update()
                .where(projection_state.c.name == "roster")
                .values(version=0)
            )
        assert quick(sqlite_url) is None
    finally:
        catalog.close()
    assert quick(postgres_url) is None


def test_the_cli_falls_back_and_shows_what_another_process_appended(
    tmp_path: Path, clock: FakeClock
) -> None:
    script = Path(sys.executable).parent / "freegin-ai"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env["FREEGIN_DATA_DIR"] = str(tmp_path)
    subprocess.run([script, "list-models"], env=env, capture_output=True, check=True)
    catalog = Catalog(
        Catalog.open(f"sqlite:///{tmp_path / 'app.db'}", clock=clock).store, clock=clock
    )
    entry = RosterEntry.adopt(provider="groq", workload="chat", model="appended-elsewhere",
                              priority=1, rationale=None, metadata=None, source="manual",
                              at=clock())  # fmt: skip
    catalog.store.save(entry)
    catalog.close()
    shown = subprocess.run(
        [script, "list-models", "--provider", "groq"], env=env, capture_output=True, text=True
    )
    assert "appended-elsewhere" in shown.stdout


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=ro"])
def test_only_plain_sqlite_files_are_read_quickly(url: str) -> None:
    assert quick(url) is None
