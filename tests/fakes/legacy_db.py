"""Databases as the earlier (Rust) freegin-ai left them, for the legacy import tests.

The three catalog tables and their indexes use the guide's DDL verbatim ("Database Schema");
OLD_USAGE_DDL is `provider_usage` as first released, before the earlier tool added `model`
and the token and cost columns. `provider_credentials` and `provider_health` are the earlier
tool's own (src/database.rs), with a row each.

`write_legacy_db` writes a fixed set of rows chosen to cover every mapping rule and every
reason to skip a row, and returns them as dicts so tests can compare field by field.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DDL = """
CREATE TABLE provider_models (
    provider TEXT NOT NULL,        -- Provider name (huggingface, google, etc.)
    workload TEXT NOT NULL,        -- Workload type (chat, code, etc.)
    model TEXT NOT NULL,           -- Model identifier
    status TEXT NOT NULL,          -- 'active' or 'retired'
    priority INTEGER NOT NULL,     -- Lower = higher priority
    rationale TEXT,                -- Human-readable reason for selection
    metadata TEXT,                 -- JSON with additional info
    created_at TEXT NOT NULL,      -- RFC3339 timestamp
    updated_at TEXT NOT NULL,      -- RFC3339 timestamp
    UNIQUE(provider, workload, model)
);
"""

SUGGESTIONS_DDL = """
CREATE TABLE provider_model_suggestions (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    workload TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,          -- 'pending', 'trial', 'adopted'
    rationale TEXT,                -- Why this model was suggested
    metadata TEXT,                 -- JSON with cost estimates, etc.
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE(provider, workload, model)
);
"""

USAGE_DDL = """
CREATE TABLE provider_usage (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT,                    -- Model used (NULL for legacy entries)
    success INTEGER NOT NULL,      -- 1 = success, 0 = failure
    latency_ms INTEGER NOT NULL,   -- Request latency
    error_message TEXT,            -- Error details if failed
    prompt_tokens INTEGER,         -- Token counts (future)
    completion_tokens INTEGER,
    total_tokens INTEGER,
    input_cost_micros INTEGER,     -- Cost tracking (future)
    output_cost_micros INTEGER,
    total_cost_micros INTEGER,
    created_at TEXT NOT NULL
);
"""

OLD_USAGE_DDL = """
CREATE TABLE provider_usage (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    success INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL
);
"""

INDEXES_DDL = """
CREATE INDEX idx_provider_models_active
  ON provider_models(provider, workload, status, priority);

CREATE INDEX idx_provider_model_suggestions
  ON provider_model_suggestions(provider, workload, status);
"""

USAGE_INDEX_DDL = """
CREATE INDEX idx_provider_usage_provider_model_time
  ON provider_usage(provider, model, created_at);
"""

EXTRA_DDL = """
CREATE TABLE provider_credentials (
    provider TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE provider_health (
    provider TEXT PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'available',
    last_error TEXT,
    last_error_at TEXT,
    retry_after TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_success_at TEXT,
    updated_at TEXT NOT NULL
);

INSERT INTO provider_credentials VALUES
    ('groq', X'00112233445566778899AABB', X'DEADBEEF', '2025-08-01T09:00:00+00:00',
     '2025-08-01T09:00:00+00:00');

INSERT INTO provider_health VALUES
    ('groq', 'rate_limited', '429 Too Many Requests', '2025-10-02T10:00:00+00:00',
     '2025-10-02T10:01:00+00:00', 3, '2025-10-02T09:00:00+00:00', '2025-10-02T10:00:00+00:00');
"""

MODELS_COLUMNS = (
    "provider",
    "workload",
    "model",
    "status",
    "priority",
    "rationale",
    "metadata",
    "created_at",
    "updated_at",
)

# Rows the import takes, then rows it must skip (their last comment says why).
MODEL_ROWS: tuple[tuple[Any, ...], ...] = (
    # Nanosecond RFC 3339, as chrono writes it; no metadata.
    ("huggingface", "chat", "mistralai/Mistral-7B-Instruct-v0.2", "active", 100,
     "General-purpose chat model", None,
     "2025-09-01T10:00:00.123456789+00:00", "2025-09-01T10:00:00.123456789+00:00"),
    ("groq", "chat", "llama-3.3-70b-versatile", "active", 10, "Fast, versatile Llama model",
     '{"context_window": 131072, "tags": ["fast", "free"]}',
     "2025-09-02T08:00:00+00:00", "2025-09-02T08:00:00+00:00"),
    # Retired; SQLite's default timestamp format; an offset; metadata that is not JSON.
    ("groq", "code", "llama-3.1-8b-instant", "retired", 20, "Small and quick", "not json {",
     "2025-09-03 09:00:00", "2025-10-01T12:30:00+02:00"),
    # Adopted again later by the earlier tool: updated_at moved, no event says why.
    ("deepseek", "summarization", "deepseek-chat", "active", 25, None, '{"free": true}',
     "2025-09-04T07:00:00Z", "2025-10-04T07:00:00Z"),
    # A capitalised workload and a provider alias are read as the catalog spells them.
    ("Together", "Code", "meta-llama/Llama-3.3-70B-Instruct-Turbo-Free", "active", 25,
     "Code-capable free model", None, "2025-09-05T06:00:00+00:00", "2025-09-05T06:00:00+00:00"),
    # Skipped: cohere is not a provider this catalog knows.
    ("cohere", "chat", "command-r", "active", 50, None, None,
     "2025-09-06T06:00:00+00:00", "2025-09-06T06:00:00+00:00"),
    # Skipped: poetry is not a workload.
    ("google", "poetry", "gemini-2.0-flash-exp", "active", 40, None, None,
     "2025-09-07T06:00:00+00:00", "2025-09-07T06:00:00+00:00"),
    # Skipped: created_at is not a timestamp.
    ("google", "chat", "gemini-2.0-flash-exp", "active", 40, None, None,
     "yesterday", "2025-09-08T06:00:00+00:00"),
    # Skipped: the first row again, under the provider's alias.
    ("hf", "chat", "mistralai/Mistral-7B-Instruct-v0.2", "active", 70, None, None,
     "2025-09-09T06:00:00+00:00", "2025-09-09T06:00:00+00:00"),
)  # fmt: skip
IMPORTED_MODELS = 5

SUGGESTIONS_COLUMNS = ("id", *MODELS_COLUMNS[:3], "status", "rationale", "metadata",
                       "created_at", "updated_at")  # fmt: skip

SUGGESTION_ROWS: tuple[tuple[Any, ...], ...] = (
    (1, "groq", "chat", "llama-3.3-70b-versatile", "adopted", "Top of the leaderboard",
     '{"cost": "free"}', "2025-08-30T10:00:00+00:00", "2025-09-02T08:00:00+00:00"),
    # production_ready and notes travel in the metadata, as the earlier tool kept them.
    (2, "huggingface", "code", "bigcode/starcoder2-15b", "pending", "Newer StarCoder",
     '{"production_ready": true, "notes": "Needs a paid endpoint", "context": 16384}',
     "2025-09-10T10:00:00+00:00", "2025-09-10T10:00:00+00:00"),
    # Proposed again by a later refresh: updated_at moved.
    (3, "groq", "summarization", "gemma2-9b-it", "pending", None, None,
     "2025-09-11T10:00:00+00:00", "2025-09-20T10:00:00+00:00"),
    (4, "deepseek", "code", "deepseek-coder", "trial", "Specialised coder", "[1, 2]",
     "2025-09-12T10:00:00+00:00", "2025-09-13T11:00:00+00:00"),
    (5, "google", "chat", "gemini-1.5-flash", "rejected", "Older Gemini", None,
     "2025-09-14 10:00:00", "2025-09-15 10:00:00"),
    # Skipped: a status the catalog does not have.
    (6, "groq", "chat", "mixtral-8x7b-32768", "archived", None, None,
     "2025-09-16T10:00:00+00:00", "2025-09-16T10:00:00+00:00"),
    # Skipped: not a plausible model name.
    (7, "groq", "chat", "two words", "pending", None, None,
     "2025-09-17T10:00:00+00:00", "2025-09-17T10:00:00+00:00"),
)  # fmt: skip
IMPORTED_SUGGESTIONS = 5

USAGE_COLUMNS = (
    "id",
    "provider",
    "model",
    "success",
    "latency_ms",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_cost_micros",
    "output_cost_micros",
    "total_cost_micros",
    "created_at",
)
OLD_USAGE_COLUMNS = ("id", "provider", "success", "latency_ms", "error_message", "created_at")

USAGE_ROWS: tuple[tuple[Any, ...], ...] = (
    (1, "groq", "llama-3.3-70b-versatile", 1, 250, None, 120, 80, 200, 12, 40, 52,
     "2025-10-01T10:00:00.5+00:00"),
    # A legacy entry: no model; a failure with its error.
    (2, "groq", None, 0, 30000, "timeout after 30s", None, None, None, None, None, None,
     "2025-10-01T10:01:00+00:00"),
    (3, "hf", "mistralai/Mistral-7B-Instruct-v0.2", 1, 900, None, 10, 5, 15, 0, 0, 0,
     "2025-10-01 10:02:00"),
    # Skipped: unknown provider.
    (4, "cohere", "command-r", 1, 100, None, None, None, None, None, None, None,
     "2025-10-01T10:03:00+00:00"),
    # Skipped: created_at is not a timestamp.
    (5, "groq", "llama-3.3-70b-versatile", 1, 100, None, None, None, None, None, None, None,
     "not a time"),
    (6, "deepseek", "deepseek-chat", 0, 1500, "429 rate limited", None, None, None, None, None,
     None, "2025-10-02T08:00:00-05:00"),
)  # fmt: skip
IMPORTED_USAGE = 4


@dataclass(frozen=True, slots=True)
class LegacyRows:
    """What a legacy database was written with, as dicts keyed by column name."""

    models: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)


def write_legacy_db(path: Path, *, old_usage: bool = False, wal: bool = False) -> LegacyRows:
    """Create a database as the earlier tool left it, with MODEL_ROWS, SUGGESTION_ROWS and
    USAGE_ROWS; `old_usage` uses the first `provider_usage` (no model, tokens or costs)."""
    db = sqlite3.connect(path)
    try:
        if wal:
            db.execute("PRAGMA journal_mode = WAL")
        db.executescript(MODELS_DDL + SUGGESTIONS_DDL + (OLD_USAGE_DDL if old_usage else USAGE_DDL))
        db.executescript(INDEXES_DDL + ("" if old_usage else USAGE_INDEX_DDL) + EXTRA_DDL)
        db.executemany(f"INSERT INTO provider_models VALUES ({_marks(9)})", MODEL_ROWS)
        db.executemany(
            f"INSERT INTO provider_model_suggestions VALUES ({_marks(9)})", SUGGESTION_ROWS
        )
        usage_columns = OLD_USAGE_COLUMNS if old_usage else USAGE_COLUMNS
        usage_rows = [_pick(USAGE_COLUMNS, row, usage_columns) for row in USAGE_ROWS]
        db.executemany(
            f"INSERT INTO provider_usage ({', '.join(usage_columns)}) "
            f"VALUES ({_marks(len(usage_columns))})",
            usage_rows,
        )
        db.commit()
    finally:
        db.close()
    return LegacyRows(
        models=[dict(zip(MODELS_COLUMNS, row, strict=True)) for row in MODEL_ROWS],
        suggestions=[dict(zip(SUGGESTIONS_COLUMNS, row, strict=True)) for row in SUGGESTION_ROWS],
        usage=[dict(zip(usage_columns, row, strict=True)) for row in usage_rows],
    )


def write_usage_only_db(path: Path, rows: int) -> None:
    """A legacy database with only `provider_usage`, holding `rows` plausible calls."""
    db = sqlite3.connect(path)
    try:
        db.executescript(USAGE_DDL)
        providers = ("groq", "deepseek", "huggingface", "google")
        db.executemany(
            f"INSERT INTO provider_usage VALUES ({_marks(13)})",
            (
                (
                    i,
                    providers[i % 4],
                    f"model-{i % 7}" if i % 5 else None,
                    i % 9 != 0,
                    50 + i % 3000,
                    None if i % 9 else "upstream error",
                    i % 500,
                    i % 300,
                    i % 500 + i % 300,
                    i % 50,
                    i % 70,
                    i % 50 + i % 70,
                    f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00",
                )
                for i in range(1, rows + 1)
            ),
        )
        db.commit()
    finally:
        db.close()


def dump_database(path: Path) -> dict[str, Any]:
    """Every schema entry and every table's rows (read-only), to compare a file with itself."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        schema = sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [name for kind, name, _t, _s in schema if kind == "table"]
        rows = {t: sorted(db.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}
    finally:
        db.close()
    return {"schema": schema, "rows": rows}


def table_rows(path: Path, table: str) -> list[dict[str, Any]]:
    """A table's rows as dicts, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(f'SELECT * FROM "{table}"')]
    finally:
        db.close()


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _pick(
    columns: tuple[str, ...], row: tuple[Any, ...], wanted: tuple[str, ...]
) -> tuple[Any, ...]:
    values = dict(zip(columns, row, strict=True))
    return tuple(values[c] for c in wanted)
