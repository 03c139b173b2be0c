"""A legacy database with numbers outside the domain's ranges: those rows are skipped with a
reason, the rest imported, and the catalog keeps working (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.legacy import import_legacy_file
from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.workloads import Workload
from tests.fakes.legacy_db import write_legacy_db

WHEN = "2025-09-01T10:00:00+00:00"


def add_out_of_range_rows(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO provider_models (provider, workload, model, status, priority, "
            "created_at, updated_at) VALUES ('groq', 'chat', ?, 'active', ?, ?, ?)",
            [("huge/priority", 2**63 - 1, WHEN, WHEN), ("int/priority", 2**31, WHEN, WHEN)],
        )
        db.executemany(
            "INSERT INTO provider_usage (id, provider, model, success, latency_ms, "
            "prompt_tokens, created_at) VALUES (?, 'groq', 'm', 1, ?, ?, ?)",
            [(101, 5, 3_000_000_000, WHEN), (102, -5, 1, WHEN)],
        )
    db.close()


def test_out_of_range_legacy_rows_are_skipped_with_their_reason(
    tmp_path: Path, database_url: str
) -> None:
    source = tmp_path / "old-app.db"
    write_legacy_db(source)
    add_out_of_range_rows(source)
    store = EventStore(database_url)
    try:
        report = import_legacy_file(store, source)
    finally:
        store.close()

    reasons = {(s.table, s.row): s.reason for s in report.skipped}
    assert (
        "priority must be from 0 to 2147483647"
        in reasons[("provider_models", "groq/chat/huge/priority")]
    )
    assert "priority must be from 0" in reasons[("provider_models", "groq/chat/int/priority")]
    assert "prompt_tokens must be from 0 to 1000000000" in reasons[("provider_usage", "id 101")]
    assert "latency_ms must be from 0" in reasons[("provider_usage", "id 102")]
    catalog = Catalog.open(database_url, seed=False)
    try:
        models = {r.model for r in catalog.list_models(provider="groq", workload=Workload.CHAT)}
        assert "llama-3.3-70b-versatile" in models
        assert not models & {"huge/priority", "int/priority"}
        assert catalog.not_applied() == []
    finally:
        catalog.close()
