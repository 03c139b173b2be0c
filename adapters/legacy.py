"""Legacy import: the earlier (Rust) freegin-ai's tables, turned into the events that would have
produced them.

The earlier tool kept the guide's three tables in app.db: `provider_models`,
`provider_model_suggestions` and `provider_usage` (older files lack `provider_usage.model` and
the token and cost columns), next to `provider_credentials` and `provider_health`, which are
left alone and reported. Each row becomes:

    provider_models row             ModelAdopted (source "import") at created_at, followed by
                                    ModelRetired at updated_at when it is retired
    provider_model_suggestions row  SuggestionProposed at created_at, followed at updated_at by
                                    SuggestionAdopted, TrialStarted (10 %), SuggestionRejected,
                                    or SuggestionRevised (a pending row proposed again)
    provider_usage row              UsageLogged at created_at; the workload is unknown, and so
                                    is the model when the column is missing or NULL

Two ways in, each all or nothing in one transaction:

- `migrate_in_place`: the database itself is the earlier tool's (it has no event log): the
  three tables are renamed `legacy_…` (never emptied), the event log is created and the events
  appended. Runs before anything else touches the database.
- `import_legacy_file`: another SQLite file, opened read-only and left as it is (a file in WAL
  mode gets its -wal and -shm side files back, as any reader makes them). Usage streams get
  ids derived from their source rows, and roster and suggestion streams have natural-key ids,
  so importing the same file again appends nothing.

A row that cannot be read (unknown provider or workload, a timestamp that is not one, ...) is
skipped and reported with its reason; one bad row never fails the import.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid5

import msgspec
from eventsourcing.persistence import Mapper
from sqlalchemy import Connection, Engine, Table, create_engine, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.adapters.store import EventStore
from freegin_ai.adapters.transcoder import make_mapper
from freegin_ai.domain.errors import DomainError
from freegin_ai.domain.names import STREAM_NAMESPACE, check_model_name, check_priority
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.roster import DEFAULT_PRIORITY, RosterEntry
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.topics import ACTIVE, ADOPTED, PENDING, REJECTED, RETIRED, TRIAL
from freegin_ai.domain.usage import usage_logged
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.tables import projection_state

Progress = Callable[[int, int], None]

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

#: The share of requests an imported on-trial suggestion takes (the earlier tool had none).
TRIAL_PERCENT = 10.0
_DUPLICATE = "an earlier row has the same provider, workload and model, spelled differently"
_BATCH = 5_000
# Well under SQLite's bound-parameter limit.
_ID_CHUNK = 500


class LegacyImportError(StorageError):
    """Raised when a file cannot be read as a database of the earlier freegin-ai."""


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


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A source row that was not imported, and why."""

    table: str
    row: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import appended, skipped, renamed and left alone."""

    #: The file imported, or "in place".
    source: str
    #: Roster entries appended (ModelAdopted), and how many of them are retired.
    roster_entries: int = 0
    retired: int = 0
    #: Suggestions appended, by status (pending, trial, adopted, rejected).
    suggestions: dict[str, int] = field(default_factory=dict)
    #: Usage rows appended, and how many of them have no model (older files never had one).
    usage_rows: int = 0
    usage_without_model: int = 0
    #: Events appended in all.
    events: int = 0
    #: Rows whose stream the log already had (imported before, or the same model already in
    #: the catalog); nothing was appended for them.
    already_imported: int = 0
    #: Active roster rows whose updated_at is later than created_at: no event says what
    #: changed then, so the rebuilt row's updated_at is its created_at (the source keeps both).
    updated_at_not_kept: int = 0
    skipped: tuple[SkippedRow, ...] = ()
    #: In place: each legacy table and its new name.
    tables_renamed: dict[str, str] = field(default_factory=dict)
    #: The earlier tool's other tables, left alone (credentials are added again with
    #: add-service).
    extra_tables: tuple[str, ...] = ()
    #: Optional `provider_usage` columns the source lacked (their values are unknown).
    missing_usage_columns: tuple[str, ...] = ()

    @property
    def suggestion_count(self) -> int:
        return sum(self.suggestions.values())

    @property
    def rows_imported(self) -> int:
        return self.roster_entries + self.suggestion_count + self.usage_rows

    @property
    def nothing_new(self) -> bool:
        """Everything readable was already in the log: the file was imported before."""
        return self.events == 0 and self.already_imported > 0


# -- detecting ------------------------------------------------------------------------------


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
    with _read_only(path) as source:
        return _layout_of_file(source, path)


# -- importing ------------------------------------------------------------------------------


def migrate_in_place(store: EventStore, progress: Progress | None = None) -> ImportReport | None:
    """Import the earlier tool's tables of the store's own database, if it is one.

    In one transaction: rename the tables `legacy_…`, create the event log and append the
    events; an exception anywhere (a failing `progress` too) leaves every table as it was.
    Returns None, changing nothing, when the database has an event log or no legacy tables.
    Call it before anything creates the event log or the read tables.
    """
    if store.dialect != "sqlite":
        return None  # the earlier tool only ever wrote SQLite
    try:
        with store.engine.connect() as conn:
            if find_legacy_tables(conn) is None:
                return None  # the common case, answered without taking the write lock
        with _write_transaction(store.engine) as conn:
            # Again under the write lock: another process may have migrated meanwhile.
            layout = find_legacy_tables(conn)
            if layout is None:
                return None
            _refuse_missing_columns(layout, "the database")
            renamed = _rename_tables(conn, layout.tables)
            log = _log_table()
            log.create(conn)
            importer = _Importer(
                source=conn,
                tables=renamed,
                layout=layout,
                target=conn,
                log=log,
                check_existing=False,
                progress=progress,
            )
            return importer.run(origin="in place", renamed=renamed)
    except SQLAlchemyError as error:
        raise StorageError(
            f"cannot import the earlier freegin-ai's tables; nothing was changed: "
            f"{_describe(error)}"
        ) from None


def import_legacy_file(
    store: EventStore, path: Path, progress: Progress | None = None
) -> ImportReport:
    """Append the events of another legacy SQLite file, in one transaction.

    The file is opened read-only. Rows already imported (their stream is in the log) are
    counted in `already_imported` and appended again never. LegacyImportError when the file
    is missing, unreadable, or not a database of the earlier tool.
    """
    with _read_only(path) as source:
        layout = _layout_of_file(source, path)
        store.ensure_log()
        log = _log_table()
        try:
            with _write_transaction(store.engine) as target:
                if target.dialect.name == "postgresql":
                    # As eventsourcing-sqlalchemy does: log positions must commit in order,
                    # or a projector reading past them would miss events.
                    target.exec_driver_sql(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
                empty = target.execute(select(log.c.id).limit(1)).first() is None
                importer = _Importer(
                    source=source,
                    tables={t: t for t in layout.tables},
                    layout=layout,
                    target=target,
                    log=log,
                    check_existing=not empty,
                    progress=progress,
                )
                return importer.run(origin=str(path), renamed={})
        except SQLAlchemyError as error:
            raise StorageError(
                f"cannot import {path}; nothing was appended: {_describe(error)}"
            ) from None


# -- the import itself ----------------------------------------------------------------------


class _BadRow(Exception):
    """Raised while reading a source row that cannot be imported; the message is the reason."""


@dataclass(slots=True)
class _Stream:
    """The events planned for one roster entry or suggestion."""

    id: UUID
    kind: str
    status: str
    at: datetime
    events: Sequence[Any]
    updated_at_lost: bool = False


class _Importer:
    """Reads the legacy tables in `source` and appends their events to `target`'s log."""

    def __init__(
        self,
        *,
        source: Connection,
        tables: Mapping[str, str],
        layout: LegacyLayout,
        target: Connection,
        log: Table,
        check_existing: bool,
        progress: Progress | None,
    ) -> None:
        self.source = source
        self.tables = tables
        self.layout = layout
        self.target = target
        self.log = log
        self.check_existing = check_existing
        self.progress = progress
        self.skipped: list[SkippedRow] = []
        self.roster = self.retired = self.usage = self.no_model = 0
        self.suggestions: dict[str, int] = {}
        self.events = self.already = self.lost = 0
        self.done = self.total = 0
        self._providers: dict[str, str] = {}

    def run(self, *, origin: str, renamed: dict[str, str]) -> ImportReport:
        self.total = sum(self._count(name) for name in self.tables.values())
        self._tick()
        priorities: dict[tuple[str, str, str], int] = {}
        streams: list[_Stream] = []
        if "provider_models" in self.tables:
            streams += self._roster_streams(priorities)
        if "provider_model_suggestions" in self.tables:
            streams += self._suggestion_streams(priorities)
        self._append_streams(streams)
        self._tick()
        if "provider_usage" in self.tables:
            self._import_usage()
        return ImportReport(
            source=origin,
            roster_entries=self.roster,
            retired=self.retired,
            suggestions=dict(sorted(self.suggestions.items())),
            usage_rows=self.usage,
            usage_without_model=self.no_model,
            events=self.events,
            already_imported=self.already,
            updated_at_not_kept=self.lost,
            skipped=tuple(self.skipped),
            tables_renamed=renamed,
            extra_tables=self.layout.extra_tables,
            missing_usage_columns=self.layout.missing_usage_columns,
        )

    # -- roster and suggestions: few rows, built through the aggregates ---------------------

    def _roster_streams(self, priorities: dict[tuple[str, str, str], int]) -> list[_Stream]:
        table = "provider_models"
        rows = self.source.execute(
            text(
                "SELECT provider, workload, model, status, priority, rationale, metadata, "
                f'created_at, updated_at FROM "{self.tables[table]}"'
            )
        ).all()
        self.done += len(rows)
        streams: list[_Stream] = []
        for provider_raw, workload_raw, model_raw, status, priority, rationale, meta, c, u in rows:
            label = f"{provider_raw}/{workload_raw}/{model_raw}"
            try:
                provider, workload, model = self._key(provider_raw, workload_raw, model_raw)
                if status not in (ACTIVE, RETIRED):
                    raise _BadRow(f"unknown status {status!r}")
                chosen = check_priority(_whole(priority, "priority"))
                created, updated = _time(c, "created_at"), _time(u, "updated_at")
                if (provider, workload, model) in priorities:
                    raise _BadRow(_DUPLICATE)
                entry = RosterEntry.adopt(
                    provider=provider,
                    workload=workload,
                    model=model,
                    priority=chosen,
                    rationale=_text(rationale, "rationale"),
                    metadata=_metadata(meta),
                    source="import",
                    at=created,
                )
                if status == RETIRED:
                    entry.retire(reason="imported as retired", at=updated)
            except (_BadRow, DomainError) as error:
                self._skip(table, label, str(error))
                continue
            priorities[(provider, workload, model)] = chosen
            streams.append(
                _Stream(
                    id=entry.id,
                    kind="roster",
                    status=status,
                    at=created,
                    events=entry.collect_events(),
                    updated_at_lost=status == ACTIVE and updated != created,
                )
            )
        return streams

    def _suggestion_streams(self, priorities: dict[tuple[str, str, str], int]) -> list[_Stream]:
        table = "provider_model_suggestions"
        rows = self.source.execute(
            text(
                "SELECT id, provider, workload, model, status, rationale, metadata, created_at, "
                f'updated_at FROM "{self.tables[table]}" ORDER BY id'
            )
        ).all()
        self.done += len(rows)
        streams: list[_Stream] = []
        seen: set[tuple[str, str, str]] = set()
        for row_id, provider_raw, workload_raw, model_raw, status, rationale, meta, c, u in rows:
            try:
                key = self._key(provider_raw, workload_raw, model_raw)
                if key in seen:
                    raise _BadRow(_DUPLICATE)
                if status not in (PENDING, TRIAL, ADOPTED, REJECTED):
                    raise _BadRow(f"unknown status {status!r}")
                created, updated = _time(c, "created_at"), _time(u, "updated_at")
                details = _suggestion_details(_text(rationale, "rationale"), _metadata(meta))
                suggestion = Suggestion.propose(
                    provider=key[0],
                    workload=key[1],
                    model=key[2],
                    provenance={"source": "import"},
                    at=created,
                    **details,
                )
                if status == ADOPTED:
                    priority = priorities.get(key, DEFAULT_PRIORITY)
                    suggestion.mark_adopted(priority=priority, at=updated)
                elif status == TRIAL:
                    suggestion.start_trial(percent=TRIAL_PERCENT, at=updated)
                elif status == REJECTED:
                    suggestion.reject(reason="imported as rejected", at=updated)
                elif updated != created:
                    # The earlier tool changed a pending row only by proposing it again.
                    suggestion.propose_again(provenance={"source": "import"}, at=updated, **details)
            except (_BadRow, DomainError) as error:
                self._skip(table, f"id {row_id}", str(error))
                continue
            seen.add(key)
            streams.append(
                _Stream(
                    id=suggestion.id,
                    kind="suggestion",
                    status=status,
                    at=created,
                    events=suggestion.collect_events(),
                )
            )
        return streams

    def _append_streams(self, streams: list[_Stream]) -> None:
        # Oldest first, so the log reads in the order things happened; ties keep source order.
        streams.sort(key=lambda s: (s.kind != "roster", s.at))
        existing = self._existing([s.id for s in streams])
        events: list[Any] = []
        for stream in streams:
            if stream.id in existing:
                self.already += 1
                continue
            events += stream.events
            if stream.kind == "roster":
                self.roster += 1
                self.retired += stream.status == RETIRED
                self.lost += stream.updated_at_lost
            else:
                self.suggestions[stream.status] = self.suggestions.get(stream.status, 0) + 1
        self._insert(events)

    # -- usage: many rows, built as bare events in batches ----------------------------------

    def _import_usage(self) -> None:
        table = "provider_usage"
        present = set(self.layout.usage_columns)
        optional = ", ".join(c if c in present else f"NULL AS {c}" for c in USAGE_OPTIONAL_COLUMNS)
        columns = f"id, provider, success, latency_ms, error_message, created_at, {optional}"
        name = self.tables[table]
        first = text(f'SELECT {columns} FROM "{name}" ORDER BY id LIMIT {_BATCH}')
        after = text(f'SELECT {columns} FROM "{name}" WHERE id > :after ORDER BY id LIMIT {_BATCH}')
        rows = self.source.execute(first).all()
        while rows:
            batch: list[Any] = []
            for row in rows:
                event = self._usage_event(row)
                if event is not None:
                    batch.append(event)
            existing = self._existing([e.originator_id for e in batch])
            if existing:
                self.already += sum(1 for e in batch if e.originator_id in existing)
                batch = [e for e in batch if e.originator_id not in existing]
            self._insert(batch)
            self.usage += len(batch)
            self.no_model += sum(1 for e in batch if e.model is None)
            self.done += len(rows)
            self._tick()
            rows = self.source.execute(after, {"after": rows[-1][0]}).all()

    def _usage_event(self, row: Sequence[Any]) -> Any:
        row_id, provider_raw, success, latency, error, created, model, *counts = row
        try:
            provider = self._provider(provider_raw)
            at = _time(created, "created_at")
            if isinstance(success, bool) or success not in (0, 1):
                raise _BadRow(f"success is neither 1 nor 0: {success!r}")
            latency_ms = _whole(latency, "latency_ms")
            prompt, completion, total, input_cost, output_cost, total_cost = (
                _optional_whole(value, column)
                for value, column in zip(counts, USAGE_OPTIONAL_COLUMNS[1:], strict=True)
            )
            if error is not None and not isinstance(error, str):
                raise _BadRow(f"error_message is not text: {error!r}")
            if model is not None and not isinstance(model, str):
                raise _BadRow(f"model is not text: {model!r}")
            # The event checks every number against the domain's ranges.
            return usage_logged(
                id=_usage_stream_id(row_id, provider_raw, created, success, latency, error),
                at=at,
                provider=provider,
                workload=None,
                model=model or None,
                success=bool(success),
                latency_ms=latency_ms,
                error=error,
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=total,
                input_cost_micros=input_cost,
                output_cost_micros=output_cost,
                total_cost_micros=total_cost,
            )
        except (_BadRow, DomainError) as problem:
            self._skip("provider_usage", f"id {row_id}", str(problem))
            return None

    # -- helpers ----------------------------------------------------------------------------

    def _key(self, provider: object, workload: object, model: object) -> tuple[str, str, str]:
        if not isinstance(workload, str):
            raise _BadRow(f"workload is not text: {workload!r}")
        if not isinstance(model, str):
            raise _BadRow(f"model is not text: {model!r}")
        return self._provider(provider), Workload.parse(workload).value, check_model_name(model)

    def _provider(self, value: object) -> str:
        if not isinstance(value, str):
            raise _BadRow(f"provider is not text: {value!r}")
        known = self._providers.get(value)
        if known is None:
            known = self._providers[value] = parse_provider(value)
        return known

    def _count(self, table: str) -> int:
        return int(self.source.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())

    def _existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """The ids, of these, that already have a stream in the log."""
        if not self.check_existing or not ids:
            return set()
        found: set[UUID] = set()
        column = self.log.c.originator_id
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            found.update(self.target.scalars(select(column).where(column.in_(chunk))))
        return found

    def _insert(self, events: Sequence[Any]) -> None:
        """Append events with one executemany: far faster than adding ORM records one by one."""
        if not events:
            return
        rows = []
        for event in events:
            stored = _MAPPER.to_stored_event(event)
            rows.append(
                {
                    "originator_id": stored.originator_id,
                    "originator_version": stored.originator_version,
                    "topic": stored.topic,
                    "state": stored.state,
                }
            )
        self.target.execute(self.log.insert(), rows)
        self.events += len(rows)

    def _skip(self, table: str, row: str, reason: str) -> None:
        self.skipped.append(SkippedRow(table=table, row=row, reason=reason))

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)


# -- reading legacy values -----------------------------------------------------------------


def _time(value: object, column: str) -> datetime:
    """An RFC 3339 or SQLite (`YYYY-MM-DD HH:MM:SS`) timestamp as an aware UTC datetime."""
    if not isinstance(value, str):
        raise _BadRow(f"{column} is not a timestamp: {value!r}")
    try:
        stamp = datetime.fromisoformat(value.strip())
        # SQLite's CURRENT_TIMESTAMP is UTC without saying so.
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _BadRow(f"{column} is not a timestamp: {value[:40]!r}") from None


def _whole(value: object, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRow(f"{column} is not a whole number: {value!r}")
    return value


def _optional_whole(value: object, column: str) -> int | None:
    return None if value is None else _whole(value, column)


def _text(value: object, column: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _BadRow(f"{column} is not text: {value!r}")
    return value


def _metadata(value: object) -> dict[str, Any] | None:
    """The metadata JSON as a dict; text that is not a JSON object is kept under one key."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _BadRow(f"metadata is not text: {value!r}")
    try:
        decoded = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return {"legacy_metadata": value}
    if decoded is None:
        return None
    return decoded if isinstance(decoded, dict) else {"legacy_metadata": value}


def _suggestion_details(rationale: str | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A suggestion's fields; the earlier tool kept production_ready and notes in metadata."""
    meta = dict(metadata or {})
    ready = meta.pop("production_ready") if isinstance(meta.get("production_ready"), bool) else None
    notes = meta.get("notes")
    if isinstance(notes, str) and notes:
        meta.pop("notes")
    else:
        notes = None
    return {
        "rationale": rationale,
        "metadata": meta or None,
        "production_ready": ready,
        "notes": notes,
    }


def _usage_stream_id(
    row_id: object,
    provider: object,
    created: object,
    success: object,
    latency: object,
    error: object,
) -> UUID:
    """A usage stream id from the source row itself, so any copy of the file imports the same.

    Only columns every version of the table has take part: a file before and after the
    earlier tool added its `model` column gives the same ids.
    """
    parts = ("legacy-usage", row_id, provider, created, success, latency, error or "")
    return uuid5(STREAM_NAMESPACE, "\x1f".join(str(p) for p in parts))


# -- storage ---------------------------------------------------------------------------------


# Not `store.app.mapper`: building the Application creates the events table at once, outside
# the transaction that must create it together with the renames.
_MAPPER: Mapper[UUID] = make_mapper()


def _log_table() -> Table:
    """eventsourcing-sqlalchemy's own events table, so it can be created inside a transaction.

    The library keeps one record class per table name; the Application gets this same one.
    """
    from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore

    record = SQLAlchemyDatastore.define_record_class(
        cls_name="FreeginEvent",
        table_name=EVENTS_TABLE,
        schema_name=None,
        base_cls=SQLAlchemyDatastore.base_stored_event_record_cls,
    )
    table: Table = record.__table__
    return table


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that also holds the DDL (renames, CREATE TABLE); rolled back on error."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite opens a transaction only before INSERT/UPDATE/DELETE, so the renames and
            # CREATE TABLE would commit one by one; BEGIN IMMEDIATE also takes the write lock now.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _rename_tables(conn: Connection, tables: Sequence[str]) -> dict[str, str]:
    """Rename the legacy tables and their indexes, whose names the read tables use again."""
    inspector = inspect(conn)
    renamed: dict[str, str] = {}
    for table in tables:
        new = RENAMED_PREFIX + table
        if inspector.has_table(new):
            raise LegacyImportError(f"cannot rename {table}: a table {new} already exists")
        # SQLite keeps an index's name when its table is renamed: build them again, renamed.
        indexes = [
            (str(index["name"]), [str(c) for c in index["column_names"]], index["unique"])
            for index in inspector.get_indexes(table)
            if index["name"] and None not in index["column_names"]
        ]
        for name, _columns, _unique in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{new}"')
        for name, columns, unique in indexes:
            listed = ", ".join(f'"{c}"' for c in columns)
            conn.exec_driver_sql(
                f'CREATE {"UNIQUE " if unique else ""}INDEX "{RENAMED_PREFIX}{name}" '
                f'ON "{new}" ({listed})'
            )
        renamed[table] = new
    return renamed


@contextmanager
def _read_only(path: Path) -> Iterator[Connection]:
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
            raise LegacyImportError(f"cannot read {path}: {_describe(error)}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _layout_of_file(source: Connection, path: Path) -> LegacyLayout:
    try:
        layout = find_legacy_tables(source)
        names = set(inspect(source).get_table_names())
    except SQLAlchemyError as error:
        raise LegacyImportError(f"cannot read {path}: {_describe(error)}") from None
    if layout is None:
        if EVENTS_TABLE in names:
            raise LegacyImportError(
                f"{path} is a database of this freegin-ai (it has an event log), not of the "
                "earlier one"
            )
        raise LegacyImportError(
            f"{path} has none of the earlier freegin-ai's tables ({', '.join(LEGACY_TABLES)})"
        )
    _refuse_missing_columns(layout, str(path))
    return layout


def _refuse_missing_columns(layout: LegacyLayout, where: str) -> None:
    if layout.missing_columns:
        raise LegacyImportError(
            f"{where} has the earlier freegin-ai's tables without the columns "
            f"{', '.join(layout.missing_columns)}; it is not a layout the import knows"
        )


def _describe(error: BaseException) -> str:
    """A one-line description of a database error, without driver noise."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
