"""Detecting the earlier tool's tables: which of them a database holds, which optional columns
it has, and whether it is a layout the import knows; legacy files are opened read-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from freegin_ai.adapters.database_errors import describe
from freegin_ai.adapters.errors import LegacyImportError
from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.projections.tables import projection_state

#: The earlier tool's catalog tables, in the order they are imported.
LEGACY_TABLES = ("provider_models", "provider_model_suggestions", "provider_usage")
#: The earlier tool's other tables: never imported, never renamed, reported.
EXTRA_TABLES = ("provider_credentials", "provider_health")
#: Columns `provider_usage` gained after its first release; older files lack some or all.
USAGE_OPTIONAL_COLUMNS = (
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_cost_micros",
    "output_cost_micros",
    "total_cost_micros",
)
#: What a table is renamed to when the database is migrated in place.
RENAMED_PREFIX = "legacy_"

#: What every version of the earlier tool wrote (the guide's "Database Schema").
_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "provider_models": (
        "provider",
        "workload",
        "model",
        "status",
        "priority",
        "rationale",
        "metadata",
        "created_at",
        "updated_at",
    ),
    "provider_model_suggestions": (
        "id",
        "provider",
        "workload",
        "model",
        "status",
        "rationale",
        "metadata",
        "created_at",
        "updated_at",
    ),
    "provider_usage": ("id", "provider", "success", "latency_ms", "error_message", "created_at"),
}


@dataclass(frozen=True, slots=True)
class LegacyLayout:
    """Which of the earlier tool's tables a database holds."""

    #: The catalog tables present, of LEGACY_TABLES.
    tables: tuple[str, ...]
    #: The optional `provider_usage` columns present, of USAGE_OPTIONAL_COLUMNS.
    usage_columns: tuple[str, ...]
    #: The earlier tool's other tables present; they are left alone.
    extra_tables: tuple[str, ...]
    #: `table.column` for every column the guide's schema has but the database lacks.
    missing_columns: tuple[str, ...] = ()

    @property
    def missing_usage_columns(self) -> tuple[str, ...]:
        if "provider_usage" not in self.tables:
            return ()
        return tuple(c for c in USAGE_OPTIONAL_COLUMNS if c not in self.usage_columns)


def find_legacy_tables(conn: Connection) -> LegacyLayout | None:
    """The earlier tool's tables in a database without an event log; None when there are none.

    A database with an event log (or the projector's state table) is freegin-ai's own: its
    `provider_models` and friends are read tables, never legacy ones.
    """
    inspector = inspect(conn)
    names = set(inspector.get_table_names())
    if EVENTS_TABLE in names or projection_state.name in names:
        return None
    tables = tuple(t for t in LEGACY_TABLES if t in names)
    if not tables:
        return None
    usage_columns: tuple[str, ...] = ()
    missing: list[str] = []
    for table in tables:
        columns = {str(c["name"]).lower() for c in inspector.get_columns(table)}
        missing += [f"{table}.{c}" for c in _REQUIRED_COLUMNS[table] if c not in columns]
        if table == "provider_usage":
            usage_columns = tuple(c for c in USAGE_OPTIONAL_COLUMNS if c in columns)
    return LegacyLayout(
        tables=tables,
        usage_columns=usage_columns,
        extra_tables=tuple(t for t in EXTRA_TABLES if t in names),
        missing_columns=tuple(missing),
    )


def read_legacy_layout(path: Path) -> LegacyLayout:
    """The layout of a legacy file, opened read-only; LegacyImportError if it is not one."""
    with read_only(path) as source:
        return layout_of_file(source, path)


@contextmanager
def read_only(path: Path) -> Iterator[Connection]:
    """A connection that can only read a SQLite file (no WAL switch, no journal, no lock)."""
    if not path.exists():
        raise LegacyImportError(f"no such file: {path}")
    if not path.is_file():
        raise LegacyImportError(f"not a file: {path}")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as error:
            raise LegacyImportError(f"cannot read {path}: {describe(error)}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def layout_of_file(source: Connection, path: Path) -> LegacyLayout:
    try:
        layout = find_legacy_tables(source)
        names = set(inspect(source).get_table_names())
    except SQLAlchemyError as error:
        raise LegacyImportError(f"cannot read {path}: {describe(error)}") from None
    if layout is None:
        if EVENTS_TABLE in names:
            raise LegacyImportError(
                f"{path} is a database of this freegin-ai (it has an event log), not of the "
                "earlier one"
            )
        raise LegacyImportError(
            f"{path} has none of the earlier freegin-ai's tables ({', '.join(LEGACY_TABLES)})"
        )
    refuse_missing_columns(layout, str(path))
    return layout


def refuse_missing_columns(layout: LegacyLayout, where: str) -> None:
    if layout.missing_columns:
        raise LegacyImportError(
            f"{where} has the earlier freegin-ai's tables without the columns "
            f"{', '.join(layout.missing_columns)}; it is not a layout the import knows"
        )
