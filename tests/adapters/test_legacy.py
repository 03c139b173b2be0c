"""Legacy import: databases of the earlier freegin-ai, migrated in place or imported from a file.

Rows are compared field by field with the read tables rebuilt from the imported events. The
command-line tests run the real console script in a temporary data directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.legacy import (
    EXTRA_TABLES,
    TRIAL_PERCENT,
    USAGE_OPTIONAL_COLUMNS,
    ImportReport,
    LegacyImportError,
    LegacyLayout,
    find_legacy_tables,
    import_legacy_file,
    migrate_in_place,
)
from freegin_ai.adapters.store import EventStore, events_table
from freegin_ai.domain.commands import RetireModel
from freegin_ai.domain.defaults import DEFAULT_MODELS
from freegin_ai.domain.names import roster_entry_id, suggestion_id
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.workloads import Workload
from tests.fakes.legacy_db import (
    IMPORTED_MODELS,
    IMPORTED_SUGGESTIONS,
    IMPORTED_USAGE,
    LegacyRows,
    dump_database,
    table_rows,
    write_legacy_db,
    write_usage_only_db,
)

SCRIPT = Path(sys.executable).parent / "freegin-ai"

#: The fixture rows the import must skip, and the start of each reason.
SKIPPED = {
    ("provider_models", "cohere/chat/command-r"): "unknown provider 'cohere'",
    ("provider_models", "google/poetry/gemini-2.0-flash-exp"): "unknown workload 'poetry'",
    ("provider_models", "google/chat/gemini-2.0-flash-exp"): "created_at is not a timestamp",
    ("provider_models", "hf/chat/mistralai/Mistral-7B-Instruct-v0.2"): "an earlier row has",
    ("provider_model_suggestions", "id 6"): "unknown status 'archived'",
    ("provider_model_suggestions", "id 7"): "model name 'two words'",
    ("provider_usage", "id 4"): "unknown provider 'cohere'",
    ("provider_usage", "id 5"): "created_at is not a timestamp",
}


class Interrupted(Exception):
    """Raised by a progress callback to break an import off half-way."""


def fail_half_way(done: int, total: int) -> None:
    if 0 < done < total:
        raise Interrupted


# -- helpers --------------------------------------------------------------------------------


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def instant(value: str) -> datetime:
    """A stored timestamp (legacy or rebuilt) as a UTC instant; naive means UTC."""
    stamp = datetime.fromisoformat(value)
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def metadata_of(stored: str | None) -> dict[str, Any]:
    return json.loads(stored) if stored else {}


def expected_metadata(legacy: str | None) -> dict[str, Any]:
    """What the import promises for a legacy metadata text."""
    if not legacy:
        return {}
    try:
        value = json.loads(legacy)
    except ValueError:
        return {"legacy_metadata": legacy}
    return value if isinstance(value, dict) else {"legacy_metadata": legacy}


def natural_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return parse_provider(row["provider"]), Workload.parse(row["workload"]).value, row["model"]


def kept(rows: list[dict[str, Any]], table: str, label: Any) -> list[dict[str, Any]]:
    return [r for r in rows if (table, label(r)) not in SKIPPED]


def event_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())
    finally:
        engine.dispose()


def read_table(url: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def assert_rebuilt_tables_hold(
    url: str, legacy: LegacyRows, *, old_usage: bool = False, seeded: bool = False
) -> None:
    """Every imported row's data, field by field, in the rebuilt read tables.

    With `seeded`, defaults may have been added afterwards for pairs the import left empty.
    """
    models = {natural_key(r): r for r in read_table(url, "provider_models")}
    expected_models = kept(
        legacy.models, "provider_models", lambda r: f"{r['provider']}/{r['workload']}/{r['model']}"
    )
    assert len(expected_models) == IMPORTED_MODELS
    imported_keys = {natural_key(r) for r in expected_models}
    if seeded:
        imported_pairs = {key[:2] for key in imported_keys}
        defaults = {(d.provider, d.workload.value, d.model) for d in DEFAULT_MODELS}
        extra = set(models) - imported_keys
        assert imported_keys <= set(models)
        assert extra <= defaults
        assert not {key[:2] for key in extra} & imported_pairs
    else:
        assert set(models) == imported_keys
    for old in expected_models:
        new = models[natural_key(old)]
        assert (new["priority"], new["status"], new["rationale"]) == (
            old["priority"],
            old["status"],
            old["rationale"],
        )
        assert metadata_of(new["metadata"]) == expected_metadata(old["metadata"])
        assert instant(new["created_at"]) == instant(old["created_at"])
        # An active row changed later by the earlier tool keeps its adoption time only.
        changed_unknowingly = old["status"] == "active" and old["updated_at"] != old["created_at"]
        updated = old["created_at"] if changed_unknowingly else old["updated_at"]
        assert instant(new["updated_at"]) == instant(updated)

    suggestions = {natural_key(r): r for r in read_table(url, "provider_model_suggestions")}
    expected_suggestions = kept(
        legacy.suggestions, "provider_model_suggestions", lambda r: f"id {r['id']}"
    )
    assert len(expected_suggestions) == IMPORTED_SUGGESTIONS
    assert set(suggestions) == {natural_key(r) for r in expected_suggestions}
    for old in expected_suggestions:
        new = suggestions[natural_key(old)]
        assert (new["status"], new["rationale"]) == (old["status"], old["rationale"])
        # The read side adds the share of requests a suggestion on trial takes.
        trial = {"trial_percent": TRIAL_PERCENT} if old["status"] == "trial" else {}
        assert metadata_of(new["metadata"]) == expected_metadata(old["metadata"]) | trial
        assert instant(new["created_at"]) == instant(old["created_at"])
        assert instant(new["updated_at"]) == instant(old["updated_at"])

    usage = {
        (instant(r["created_at"]), r["latency_ms"]): r for r in read_table(url, "provider_usage")
    }
    expected_usage = kept(legacy.usage, "provider_usage", lambda r: f"id {r['id']}")
    assert len(expected_usage) == IMPORTED_USAGE
    assert len(usage) == IMPORTED_USAGE
    for old in expected_usage:
        new = usage[(instant(old["created_at"]), old["latency_ms"])]
        assert new["provider"] == parse_provider(old["provider"])
        assert (new["success"], new["error_message"]) == (old["success"], old["error_message"])
        for column in USAGE_OPTIONAL_COLUMNS:
            # A column the file lacks is unknown: NULL, the model included.
            assert new[column] == (None if old_usage else old[column]), column


def assert_reported(report: ImportReport) -> None:
    assert {(s.table, s.row) for s in report.skipped} == set(SKIPPED)
    for s in report.skipped:
        assert s.reason.startswith(SKIPPED[(s.table, s.row)]), s
    assert (report.roster_entries, report.retired) == (IMPORTED_MODELS, 1)
    assert report.suggestions == {"adopted": 1, "pending": 2, "rejected": 1, "trial": 1}
    assert report.usage_rows == IMPORTED_USAGE
    assert report.updated_at_not_kept == 1
    assert report.extra_tables == EXTRA_TABLES


@pytest.fixture
def legacy_app_db(tmp_path: Path) -> tuple[Path, LegacyRows]:
    """The earlier tool's app.db, as the catalog's own database."""
    path = tmp_path / "app.db"
    return path, write_legacy_db(path)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[EventStore]:
    s = EventStore(sqlite_url)
    yield s
    s.close()


# -- detecting ------------------------------------------------------------------------------


def test_find_legacy_tables_reports_tables_usage_columns_and_extra_tables(tmp_path: Path) -> None:
    write_legacy_db(tmp_path / "new.db")
    write_legacy_db(tmp_path / "old.db", old_usage=True)
    engine = create_engine(url_of(tmp_path / "new.db"))
    old_engine = create_engine(url_of(tmp_path / "old.db"))
    try:
        with engine.connect() as conn, old_engine.connect() as old_conn:
            current, old = find_legacy_tables(conn), find_legacy_tables(old_conn)
    finally:
        engine.dispose()
        old_engine.dispose()
    tables = ("provider_models", "provider_model_suggestions", "provider_usage")
    assert current == LegacyLayout(
        tables=tables, usage_columns=USAGE_OPTIONAL_COLUMNS, extra_tables=EXTRA_TABLES
    )
    assert current.missing_usage_columns == ()
    assert old == LegacyLayout(tables=tables, usage_columns=(), extra_tables=EXTRA_TABLES)
    assert old.missing_usage_columns == USAGE_OPTIONAL_COLUMNS


def test_find_legacy_tables_sees_nothing_in_a_catalog_or_an_empty_database(
    tmp_path: Path,
) -> None:
    catalog = Catalog.open(url_of(tmp_path / "catalog.db"))
    catalog.close()
    for name in ("catalog.db", "empty.db"):
        engine = create_engine(url_of(tmp_path / name))
        try:
            with engine.connect() as conn:
                assert find_legacy_tables(conn) is None, name
        finally:
            engine.dispose()


# -- in place -------------------------------------------------------------------------------


def test_migrating_in_place_rebuilds_every_row_and_reports_what_it_skipped(
    legacy_app_db: tuple[Path, LegacyRows],
) -> None:
    path, legacy = legacy_app_db
    store = EventStore(url_of(path))
    try:
        report = migrate_in_place(store)
    finally:
        store.close()
    assert report is not None
    assert_reported(report)
    assert report.source == "in place"
    assert report.usage_without_model == 1
    assert report.missing_usage_columns == ()
    assert report.events == event_count(url_of(path))
    catalog = Catalog.open(url_of(path), seed=False)
    catalog.close()
    assert_rebuilt_tables_hold(url_of(path), legacy)


def test_an_old_usage_table_without_model_and_costs_imports_with_those_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    legacy = write_legacy_db(path, old_usage=True)
    store = EventStore(url_of(path))
    try:
        report = migrate_in_place(store)
    finally:
        store.close()
    assert report is not None
    assert report.missing_usage_columns == USAGE_OPTIONAL_COLUMNS
    assert report.usage_without_model == report.usage_rows == IMPORTED_USAGE
    Catalog.open(url_of(path), seed=False).close()
    assert_rebuilt_tables_hold(url_of(path), legacy, old_usage=True)


def test_renamed_tables_keep_every_original_row_and_extra_tables_are_untouched(
    legacy_app_db: tuple[Path, LegacyRows],
) -> None:
    path, _legacy = legacy_app_db
    before = dump_database(path)
    store = EventStore(url_of(path))
    try:
        report = migrate_in_place(store)
    finally:
        store.close()
    assert report is not None
    assert report.tables_renamed == {
        "provider_models": "legacy_provider_models",
        "provider_model_suggestions": "legacy_provider_model_suggestions",
        "provider_usage": "legacy_provider_usage",
    }
    # The read tables are built next to the renamed ones: no index name may collide.
    Catalog.open(url_of(path), seed=False).close()
    after = dump_database(path)
    for old, new in report.tables_renamed.items():
        assert after["rows"][new] == before["rows"][old]
    for extra in EXTRA_TABLES:
        assert after["rows"][extra] == before["rows"][extra]
        assert [e for e in after["schema"] if e[2] == extra] == [
            e for e in before["schema"] if e[2] == extra
        ]
    indexes = {name for kind, name, _t, _s in after["schema"] if kind == "index"}
    assert {"legacy_idx_provider_models_active", "idx_provider_models_active"} <= indexes


def test_a_migrated_database_loads_its_aggregates_and_is_not_migrated_twice(
    legacy_app_db: tuple[Path, LegacyRows],
) -> None:
    path, _legacy = legacy_app_db
    url = url_of(path)
    store = EventStore(url)
    try:
        assert migrate_in_place(store) is not None
        events = event_count(url)
        assert migrate_in_place(store) is None
        # The application reads the events back: the same encoding as its own.
        entry: Any = store.app.repository.get(
            roster_entry_id("groq", "code", "llama-3.1-8b-instant")
        )
        assert (entry.status, entry.priority, entry.source) == ("retired", 20, "import")
        trial: Any = store.app.repository.get(suggestion_id("deepseek", "code", "deepseek-coder"))
        assert (trial.status, trial.trial_percent) == ("trial", 10.0)
    finally:
        store.close()
    assert event_count(url) == events
    catalog = Catalog.open(url, seed=False)
    try:
        catalog.retire_model(
            RetireModel(provider="groq", workload="chat", model="llama-3.3-70b-versatile")
        )
        assert [m.model for m in catalog.list_models(provider="groq")] == []
    finally:
        catalog.close()


def test_an_interrupted_migration_leaves_every_table_as_it_was(
    legacy_app_db: tuple[Path, LegacyRows],
) -> None:
    path, legacy = legacy_app_db
    before = dump_database(path)
    store = EventStore(url_of(path))
    try:
        with pytest.raises(Interrupted):
            migrate_in_place(store, progress=fail_half_way)
        assert dump_database(path) == before
        # Nothing was left half-done: the next attempt does it all.
        report = migrate_in_place(store)
    finally:
        store.close()
    assert report is not None
    assert_reported(report)
    Catalog.open(url_of(path), seed=False).close()
    assert_rebuilt_tables_hold(url_of(path), legacy)


def test_opening_the_catalog_on_the_earlier_tools_database_migrates_it_first(
    legacy_app_db: tuple[Path, LegacyRows],
) -> None:
    path, legacy = legacy_app_db
    Catalog.open(url_of(path)).close()
    assert_rebuilt_tables_hold(url_of(path), legacy, seeded=True)
    assert len(table_rows(path, "legacy_provider_usage")) == len(legacy.usage)


# -- from a file ----------------------------------------------------------------------------


def test_importing_a_file_leaves_it_untouched_and_rebuilds_every_row(
    tmp_path: Path, store: EventStore, sqlite_url: str
) -> None:
    source = tmp_path / "old-app.db"
    legacy = write_legacy_db(source)
    digest = sha256(source)
    report = import_legacy_file(store, source)
    assert sha256(source) == digest
    assert_reported(report)
    assert (report.source, report.tables_renamed) == (str(source), {})
    Catalog.open(sqlite_url, seed=False).close()
    assert_rebuilt_tables_hold(sqlite_url, legacy)


def test_importing_the_same_file_again_appends_nothing(
    tmp_path: Path, store: EventStore, sqlite_url: str
) -> None:
    source = tmp_path / "old-app.db"
    write_legacy_db(source)
    first = import_legacy_file(store, source)
    events = event_count(sqlite_url)
    again = import_legacy_file(store, source)
    assert event_count(sqlite_url) == events
    assert again.nothing_new
    assert again.events == 0
    assert again.already_imported == first.rows_imported
    # A copy from before the earlier tool added `provider_usage.model`: the same usage rows.
    older = tmp_path / "older-copy.db"
    write_legacy_db(older, old_usage=True)
    assert import_legacy_file(store, older).events == 0
    assert event_count(sqlite_url) == events


def test_an_interrupted_file_import_appends_nothing(
    tmp_path: Path, store: EventStore, sqlite_url: str
) -> None:
    Catalog.open(sqlite_url).close()
    events = event_count(sqlite_url)
    source = tmp_path / "old-app.db"
    write_legacy_db(source)
    digest = sha256(source)
    with pytest.raises(Interrupted):
        import_legacy_file(store, source, progress=fail_half_way)
    assert event_count(sqlite_url) == events
    assert sha256(source) == digest


def test_a_file_in_wal_mode_is_read_without_changing_it(tmp_path: Path, store: EventStore) -> None:
    source = tmp_path / "wal-app.db"
    write_legacy_db(source, wal=True)
    digest = sha256(source)
    assert import_legacy_file(store, source).usage_rows == IMPORTED_USAGE
    assert sha256(source) == digest


def test_importing_into_each_backend_appends_once(tmp_path: Path, database_url: str) -> None:
    source = tmp_path / "old-app.db"
    legacy = write_legacy_db(source)
    store = EventStore(database_url)
    try:
        assert import_legacy_file(store, source).events > 0
        events = event_count(database_url)
        assert import_legacy_file(store, source).nothing_new
        assert event_count(database_url) == events
    finally:
        store.close()
    Catalog.open(database_url, seed=False).close()
    assert_rebuilt_tables_hold(database_url, legacy)


def test_many_usage_rows_arrive_in_batches_with_progress(tmp_path: Path, store: EventStore) -> None:
    source = tmp_path / "busy.db"
    write_usage_only_db(source, 12_345)
    calls: list[tuple[int, int]] = []
    report = import_legacy_file(store, source, progress=lambda d, t: calls.append((d, t)))
    assert (report.usage_rows, report.events, report.skipped) == (12_345, 12_345, ())
    assert report.usage_without_model == 12_345 // 5
    assert calls[0] == (0, 12_345) and calls[-1] == (12_345, 12_345)
    assert len(calls) > 3
    assert [d for d, _t in calls] == sorted(d for d, _t in calls)


def write_unrelated_db(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE notes (body TEXT)")
    finally:
        db.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"this is not a database" * 100), "cannot read"),
        (write_unrelated_db, "has none of"),
        (lambda p: Catalog.open(url_of(p)).close(), "has an event log"),
    ],
    ids=["missing", "not-sqlite", "no-legacy-tables", "a-catalog"],
)
def test_a_file_that_is_not_the_earlier_tools_is_refused(
    tmp_path: Path, store: EventStore, sqlite_url: str, setup: Any, message: str
) -> None:
    path = tmp_path / "other.db"
    setup(path)
    with pytest.raises(LegacyImportError, match=message):
        import_legacy_file(store, path)


# -- the console script ---------------------------------------------------------------------


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env["FREEGIN_DATA_DIR"] = str(data_dir)
    env["FREEGIN_CONFIG_DIR"] = str(data_dir / "config")
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_import_legacy_prints_the_report_and_a_second_run_appends_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "old-app.db"
    write_legacy_db(source)
    data = tmp_path / "data"
    result = run(data, "import-legacy", str(source))
    assert result.returncode == 0, result.stderr
    assert f"Imported {source}: " in result.stdout
    assert "  roster entries         5  (1 retired)\n" in result.stdout
    assert "  usage rows             4  (1 without a model)\n" in result.stdout
    assert "Skipped 8 rows:\n" in result.stdout
    assert "  provider_usage id 4: unknown provider 'cohere'" in result.stdout
    assert "Not imported: provider_credentials, provider_health" in result.stdout
    listed = run(data, "list-models", "--provider", "groq", "--include-retired", "--json")
    models = {m["model"]: m for m in json.loads(listed.stdout)["models"]}
    assert models["llama-3.3-70b-versatile"]["priority"] == 10
    assert models["llama-3.1-8b-instant"]["status"] == "retired"
    # Defaults are seeded only where the import left a (provider, workload) empty.
    chat = run(data, "list-models", "--provider", "huggingface", "--workload", "chat")
    assert "100  mistralai/Mistral-7B-Instruct-v0.2" in chat.stdout

    again = run(data, "import-legacy", str(source), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["events"], report["already_imported"]) == (0, 14)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file: {path}"),
        (
            lambda p: p.write_bytes(b"not sqlite at all" * 200),
            "cannot read {path}: file is not a database",
        ),
        (
            write_unrelated_db,
            "{path} has none of the earlier freegin-ai's tables (provider_models, "
            "provider_model_suggestions, provider_usage)",
        ),
    ],
    ids=["missing", "not-sqlite", "no-legacy-tables"],
)
def test_import_legacy_refuses_a_bad_file_in_one_line_with_exit_code_2(
    tmp_path: Path, setup: Any, message: str
) -> None:
    path = tmp_path / "old-app.db"
    setup(path)
    result = run(tmp_path / "data", "import-legacy", str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {message.format(path=path)}\n"
    # Refused before the catalog was opened: nothing was created.
    assert not (tmp_path / "data" / "app.db").exists()
