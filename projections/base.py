"""Projection: the port every read model implements, and a base for keyed-row read models.

A projection folds events into rows. The same fold serves three uses: catching up
incrementally (rows loaded for the touched keys), rebuilding from an empty table, and
answering `--as-of` questions in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Protocol

import msgspec
from sqlalchemy import Connection, Table, delete, select, tuple_

from freegin_ai.projections.envelope import Envelope

Row = dict[str, Any]
Key = tuple[str, ...]
#: An event a read model could not apply, and why (one line).
Skip = tuple[Envelope, str]


class EventNotApplicable(Exception):
    """Raised by a fold, before it changes anything, when an event does not fit the rows it
    finds (a retirement of a model never adopted): the event is recorded as not applied."""


def json_text(value: dict[str, Any] | None) -> str | None:
    """Metadata as stored: sorted-key JSON, or NULL when there is none."""
    if not value:
        return None
    return msgspec.json.encode(value, order="sorted").decode()


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows through the driver's executemany, skipping per-row SQLAlchemy work.

    Used where a replay inserts one row per event; values must already be plain types.
    """
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, rows)


class Projection(Protocol):
    """A read model kept from the log."""

    name: ClassVar[str]
    version: ClassVar[int]
    topics: ClassVar[frozenset[str]]

    @property
    def tables(self) -> tuple[Table, ...]:
        """The read tables this projection owns."""
        ...

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        """Apply events (filtered by topic) to the tables inside the caller's transaction."""
        ...

    def rebuild_batch(self, conn: Connection, events: Sequence[Envelope]) -> list[Skip]:
        """During a rebuild into empty tables: take the next batch of events, oldest first;
        returns the events that did not fit (EventNotApplicable), which were left out."""
        ...

    def finish_rebuild(self, conn: Connection) -> None:
        """During a rebuild: write whatever the batches left in memory."""
        ...

    def abandon_rebuild(self) -> None:
        """Forget whatever the batches left in memory."""
        ...


class KeyedRows:
    """A read model with one row per key, small enough to fold a batch in memory."""

    name: ClassVar[str]
    version: ClassVar[int]
    table: ClassVar[Table]
    key_columns: ClassVar[tuple[str, ...]]
    topics: ClassVar[frozenset[str]]

    def __init__(self) -> None:
        self._rebuilt: dict[Key, Row] = {}

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.table,)

    def key_of(self, event: Envelope) -> Key:
        """The row key an event touches."""
        raise NotImplementedError

    def keys_of(self, event: Envelope) -> tuple[Key, ...]:
        """Every row key the event may change (its own key unless a read model says more)."""
        return (self.key_of(event),)

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        """Change `rows` as the event says; runs again on every replay, so no decisions here.

        Raises EventNotApplicable, before changing anything, for an event that does not fit.
        """
        raise NotImplementedError

    def fold_all(
        self,
        events: Iterable[Envelope],
        rows: dict[Key, Row] | None = None,
        skipped: list[Skip] | None = None,
    ) -> dict[Key, Row]:
        """Fold events into rows (a fresh dict by default), for rebuilds and `--as-of`.

        With `skipped`, events that do not fit are left out and listed there; without it,
        EventNotApplicable propagates.
        """
        state: dict[Key, Row] = {} if rows is None else rows
        for event in events:
            if skipped is None:
                self.fold(state, event)
                continue
            try:
                self.fold(state, event)
            except EventNotApplicable as error:
                skipped.append((event, str(error)))
        return state

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        if not events:
            return
        keys = {key for e in events for key in self.keys_of(e)}
        rows = self._load(conn, keys)
        self.fold_all(events, rows)
        self._replace(conn, keys, rows)

    def rebuild_batch(self, conn: Connection, events: Sequence[Envelope]) -> list[Skip]:
        skipped: list[Skip] = []
        self.fold_all(events, self._rebuilt, skipped)
        return skipped

    def abandon_rebuild(self) -> None:
        """Forget what the batches folded so far (the rebuild starts again another way)."""
        self._rebuilt = {}

    def finish_rebuild(self, conn: Connection) -> None:
        rows, self._rebuilt = self._rebuilt, {}
        if rows:
            conn.execute(self.table.insert(), self._ordered(rows))

    def _key_clause(self, keys: Iterable[Key]) -> Any:
        # One row-value IN with an expanding parameter: the statement is the same for every
        # batch, so SQLAlchemy compiles it once (an OR of ANDs was built anew each time).
        cols = [self.table.c[name] for name in self.key_columns]
        return tuple_(*cols).in_(list(keys))

    def _load(self, conn: Connection, keys: set[Key]) -> dict[Key, Row]:
        rows: dict[Key, Row] = {}
        for chunk in _chunks(sorted(keys), 200):
            result = conn.execute(select(self.table).where(self._key_clause(chunk)))
            for row in result.mappings():
                record = dict(row)
                rows[tuple(record[c] for c in self.key_columns)] = record
        return rows

    def _replace(self, conn: Connection, keys: set[Key], rows: dict[Key, Row]) -> None:
        for chunk in _chunks(sorted(keys), 200):
            conn.execute(delete(self.table).where(self._key_clause(chunk)))
        touched = {k: rows[k] for k in keys if k in rows}
        if touched:
            conn.execute(self.table.insert(), self._ordered(touched))

    def _ordered(self, rows: dict[Key, Row]) -> list[Row]:
        return [rows[k] for k in sorted(rows)]


def _chunks(items: list[Key], size: int) -> Iterable[list[Key]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ModelKeyedRows(KeyedRows):
    """A read model with one row per (provider, workload, model): the roster, suggestions."""

    key_columns: ClassVar[tuple[str, ...]] = ("provider", "workload", "model")

    def key_of(self, event: Envelope) -> Key:
        s = event.state
        return (s["provider"], s["workload"], s["model"])
