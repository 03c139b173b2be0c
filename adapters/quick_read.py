"""Quick read: `list-models` straight from the default SQLite file with the standard library.

Loading SQLAlchemy costs most of a command's start-up. When the database is an SQLite file
whose read tables are already caught up with the log, built by this code's versions, and
seeded, the roster can be read as it is, in one read transaction, without it. Anything else
(another database, outdated or lagging tables, a first run) returns None and the caller takes
the full path, which catches up, rebuilds or seeds as needed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from freegin_ai.domain.defaults import DEFAULT_MODELS
from freegin_ai.projections.listing_flags import LISTING_FLAGS_SQL, not_listed
from freegin_ai.projections.rows import (
    ROSTER_COLUMNS,
    SUGGESTION_COLUMNS,
    RosterRow,
    SuggestionRow,
    roster_row,
    suggestion_row,
)
from freegin_ai.projections.versions import VERSIONS

EVENTS_TABLE = "freegin_events"


def sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///path` URL, else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


def read_catalog(
    url: str,
    *,
    provider: str | None,
    workload: str | None,
    include_retired: bool,
    include_suggestions: bool,
) -> tuple[list[RosterRow], list[SuggestionRow] | None, dict[tuple[str, str], str]] | None:
    """The roster (and suggestions, and the active models their provider no longer lists)
    when the tables can be trusted as they are, else None."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        db.row_factory = sqlite3.Row
        db.execute("BEGIN")  # one snapshot for the checks and the reads
        if not _current(db):
            return None
        roster = _roster(db, provider, workload, include_retired)
        suggestions = _suggestions(db, provider, workload) if include_suggestions else None
        flags = not_listed(
            [tuple(r) for r in db.execute(LISTING_FLAGS_SQL)],
            [(r.provider, r.model) for r in roster if r.status == "active"],
        )
        return roster, suggestions, flags
    except sqlite3.Error:
        return None
    finally:
        db.close()


def _current(db: sqlite3.Connection) -> bool:
    """Caught up with the log, built by these versions, and seeded."""
    last = db.execute(f"SELECT max(id) FROM {EVENTS_TABLE}").fetchone()[0] or 0
    state = {
        row["name"]: (row["position"], row["version"])
        for row in db.execute("SELECT name, position, version FROM projection_state")
    }
    if any(state.get(name) != (last, version) for name, version in VERSIONS.items()):
        return False
    seen = set(db.execute("SELECT DISTINCT provider, workload FROM provider_models").fetchall())
    seen = {(p, w) for p, w in seen}
    return all((d.provider, d.workload.value) in seen for d in DEFAULT_MODELS)


def _where(
    provider: str | None, workload: str | None, extra: list[str] | None = None
) -> tuple[str, list[str]]:
    clauses, params = list(extra or []), []
    if provider:
        clauses.append("provider = ?")
        params.append(provider)
    if workload:
        clauses.append("workload = ?")
        params.append(workload)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _roster(
    db: sqlite3.Connection, provider: str | None, workload: str | None, include_retired: bool
) -> list[RosterRow]:
    where, params = _where(provider, workload, None if include_retired else ["status = 'active'"])
    sql = (
        f"SELECT {', '.join(ROSTER_COLUMNS)} FROM provider_models{where} "
        "ORDER BY provider, workload, priority, model"
    )
    return [roster_row(row) for row in db.execute(sql, params)]


def _suggestions(
    db: sqlite3.Connection, provider: str | None, workload: str | None
) -> list[SuggestionRow]:
    where, params = _where(provider, workload)
    sql = (
        f"SELECT {', '.join(SUGGESTION_COLUMNS)} FROM provider_model_suggestions{where} "
        "ORDER BY provider, workload, status, model"
    )
    return [suggestion_row(row) for row in db.execute(sql, params)]
