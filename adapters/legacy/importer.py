"""The import itself: legacy rows turned into the events that would have produced them, all
appended in one transaction (in place, or from another file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from sqlalchemy import Connection, Engine, Table, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from freegin_ai.adapters.database_errors import describe
from freegin_ai.adapters.errors import LegacyImportError, StorageError
from freegin_ai.adapters.legacy.detection import (
    RENAMED_PREFIX,
    USAGE_OPTIONAL_COLUMNS,
    LegacyLayout,
    find_legacy_tables,
    layout_of_file,
    read_only,
    refuse_missing_columns,
)
from freegin_ai.adapters.legacy.values import (
    BadRow,
    read_metadata,
    read_optional_whole,
    read_text,
    read_time,
    read_whole,
    suggestion_details,
    usage_stream_id,
)
from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.adapters.store import EventStore
from freegin_ai.adapters.transcoder import make_mapper, stored_rows
from freegin_ai.domain.errors import DomainError
from freegin_ai.domain.names import check_model_name, check_priority
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.roster import DEFAULT_PRIORITY, RosterEntry
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.topics import ACTIVE, ADOPTED, PENDING, REJECTED, RETIRED, TRIAL
from freegin_ai.domain.usage import CallUsage, TokenUsage, usage_logged
from freegin_ai.domain.workloads import Workload

Progress = Callable[[int, int], None]

#: The share of requests an imported on-trial suggestion takes (the earlier tool had none).
TRIAL_PERCENT = 10.0
_DUPLICATE = "an earlier row has the same provider, workload and model, spelled differently"
_BATCH = 5_000
# Well under SQLite's bound-parameter limit.
_ID_CHUNK = 500


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


# -- importing ------------------------------------------------------------------------------


def open_log(store: EventStore, progress: Progress | None = None) -> ImportReport | None:
    """Make sure the store has its event log; a database of the earlier freegin-ai is imported
    first, in place. Returns the import's report, or None when there was nothing to import."""
    if store.has_log():
        return None
    with store.setup_lock():  # several processes may open an empty database at once
        if store.has_log():  # another one made it while we waited
            return None
        report = migrate_in_place(store, progress)
        store.create_log()
        return report


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
            refuse_missing_columns(layout, "the database")
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
            f"cannot import the earlier freegin-ai's tables; nothing was changed: {describe(error)}"
        ) from None


def import_legacy_file(
    store: EventStore, path: Path, progress: Progress | None = None
) -> ImportReport:
    """Append the events of another legacy SQLite file, in one transaction.

    The file is opened read-only. Rows already imported (their stream is in the log) are
    counted in `already_imported` and appended again never. LegacyImportError when the file
    is missing, unreadable, or not a database of the earlier tool.
    """
    with read_only(path) as source:
        layout = layout_of_file(source, path)
        open_log(store)
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
                f"cannot import {path}; nothing was appended: {describe(error)}"
            ) from None


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
                    raise BadRow(f"unknown status {status!r}")
                chosen = check_priority(read_whole(priority, "priority"))
                created, updated = read_time(c, "created_at"), read_time(u, "updated_at")
                if (provider, workload, model) in priorities:
                    raise BadRow(_DUPLICATE)
                entry = RosterEntry.adopt(
                    provider=provider,
                    workload=workload,
                    model=model,
                    priority=chosen,
                    rationale=read_text(rationale, "rationale"),
                    metadata=read_metadata(meta),
                    source="import",
                    at=created,
                )
                if status == RETIRED:
                    entry.retire(reason="imported as retired", at=updated)
            except (BadRow, DomainError) as error:
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
                    raise BadRow(_DUPLICATE)
                if status not in (PENDING, TRIAL, ADOPTED, REJECTED):
                    raise BadRow(f"unknown status {status!r}")
                created, updated = read_time(c, "created_at"), read_time(u, "updated_at")
                details = suggestion_details(read_text(rationale, "rationale"), read_metadata(meta))
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
            except (BadRow, DomainError) as error:
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
            at = read_time(created, "created_at")
            if isinstance(success, bool) or success not in (0, 1):
                raise BadRow(f"success is neither 1 nor 0: {success!r}")
            latency_ms = read_whole(latency, "latency_ms")
            prompt, completion, total, input_cost, output_cost, total_cost = (
                read_optional_whole(value, column)
                for value, column in zip(counts, USAGE_OPTIONAL_COLUMNS[1:], strict=True)
            )
            if error is not None and not isinstance(error, str):
                raise BadRow(f"error_message is not text: {error!r}")
            if model is not None and not isinstance(model, str):
                raise BadRow(f"model is not text: {model!r}")
            # The event checks every number against the domain's ranges.
            return usage_logged(
                id=usage_stream_id(row_id, provider_raw, created, success, latency, error),
                at=at,
                usage=CallUsage(
                    provider=provider,
                    workload=None,
                    model=model or None,
                    success=bool(success),
                    latency_ms=latency_ms,
                    error=error,
                    tokens=TokenUsage(
                        prompt_tokens=prompt, completion_tokens=completion, total_tokens=total
                    ),
                    input_cost_micros=input_cost,
                    output_cost_micros=output_cost,
                    total_cost_micros=total_cost,
                ),
            )
        except (BadRow, DomainError) as problem:
            self._skip("provider_usage", f"id {row_id}", str(problem))
            return None

    # -- helpers ----------------------------------------------------------------------------

    def _key(self, provider: object, workload: object, model: object) -> tuple[str, str, str]:
        if not isinstance(workload, str):
            raise BadRow(f"workload is not text: {workload!r}")
        if not isinstance(model, str):
            raise BadRow(f"model is not text: {model!r}")
        return self._provider(provider), Workload.parse(workload).value, check_model_name(model)

    def _provider(self, value: object) -> str:
        if not isinstance(value, str):
            raise BadRow(f"provider is not text: {value!r}")
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
        rows = stored_rows(_MAPPER, events)
        self.target.execute(self.log.insert(), rows)
        self.events += len(rows)

    def _skip(self, table: str, row: str, reason: str) -> None:
        self.skipped.append(SkippedRow(table=table, row=row, reason=reason))

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)


# Not `store.app.mapper`: building the Application creates the events table at once, outside
# the transaction that must create it together with the renames.
_MAPPER: Mapper[UUID] = make_mapper()


def _log_table() -> Table:
    """eventsourcing-sqlalchemy's own events table, so it can be created inside a transaction."""
    from freegin_ai.adapters.recorder import library_events_table

    return library_events_table()


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
