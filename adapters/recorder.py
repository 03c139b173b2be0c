"""The events table's recorder: eventsourcing's `ApplicationRecorder` in plain SQL on the store's
own engine.

The table is eventsourcing-sqlalchemy's (its layout, its index, its UUID column: 16 bytes on
SQLite, `uuid` on PostgreSQL), and rows are written as that library writes them: on PostgreSQL
under an exclusive table lock, so log positions commit in order, followed by a NOTIFY on the
table's channel. Reading and writing it here, rather than through the library's ORM models,
spares every command the import of SQLAlchemy's ORM, SQLAlchemy-Utils and every dialect it
loads (about a third of a command's start-up), and a second connection pool: the Application
shares the engine of the read tables (ADR 0020). The library still creates the table
(`library_events_table`), so its layout stays the library's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    Notification,
    StoredEvent,
    Subscription,
)
from sqlalchemy import Engine

from freegin_ai.adapters.database_errors import describe
from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.quick_read import EVENTS_TABLE

if TYPE_CHECKING:
    from sqlalchemy import Table

_COLUMNS = "originator_id, originator_version, topic, state"

#: Appends rows (originator id bound for the column, version, topic, state) in one
#: transaction, raising eventsourcing's IntegrityError when a version is taken: the store's.
Append = Callable[[list[tuple[Any, ...]]], None]


def _as_uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return UUID(bytes=bytes(value))
    return UUID(str(value))


def _as_bytes(value: Any) -> bytes:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


class EventRecorder(ApplicationRecorder):
    """Stored events in and out of the events table, on the store's engine."""

    def __init__(self, engine: Engine, append: Append, bind_id: Callable[[Any], Any]) -> None:
        self.engine = engine
        self._append = append
        self._bind_id = bind_id
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """Append in one transaction; a version another writer took first raises
        eventsourcing's IntegrityError (the command runs again)."""
        rows = [
            (self._bind_id(_as_uuid(e.originator_id)), e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        if rows:
            self._append(rows)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        uuid = _as_uuid(originator_id)
        where, params = [f"originator_id = {self._mark}"], [self._bind_id(uuid)]
        self._bound(where, params, "originator_version >", gt)
        self._bound(where, params, "originator_version <=", lte)
        sql = (
            f"SELECT originator_version, topic, state FROM {EVENTS_TABLE} "
            f"WHERE {' AND '.join(where)} ORDER BY originator_version{' DESC' if desc else ''}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            StoredEvent(
                originator_id=uuid, originator_version=version, topic=topic, state=_as_bytes(state)
            )
            for version, topic, state in self._fetch(sql, params)
        ]

    def _bound(self, where: list[str], params: list[Any], condition: str, value: Any) -> None:
        """Add `condition` on `value` (e.g. "id <=") to a WHERE clause, unless value is None."""
        if value is not None:
            where.append(f"{condition} {self._mark}")
            params.append(value)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        where, params = ["1 = 1"], list[Any]()
        self._bound(where, params, "id >=" if inclusive_of_start else "id >", start)
        self._bound(where, params, "id <=", stop)
        if topics:
            where.append(f"topic IN ({', '.join([self._mark] * len(topics))})")
            params.extend(topics)
        sql = (
            f"SELECT id, {_COLUMNS} FROM {EVENTS_TABLE} WHERE {' AND '.join(where)} "
            f"ORDER BY id LIMIT {int(limit)}"
        )
        return [
            Notification(
                id=id_,
                originator_id=_as_uuid(originator_id),
                originator_version=version,
                topic=topic,
                state=_as_bytes(state),
            )
            for id_, originator_id, version, topic, state in self._fetch(sql, params)
        ]

    def max_notification_id(self) -> int | None:
        rows = self._fetch(f"SELECT max(id) FROM {EVENTS_TABLE}", [])
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        # The read side follows the log itself (projections.projector, adapters.follower).
        raise NotImplementedError("subscriptions are not used: the projector reads the log")

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raw: Any = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        except Exception as error:
            raise StorageError(f"cannot read the event log: {describe(error)}") from None
        finally:
            raw.close()  # back to the pool, which rolls the read transaction back


def library_events_table() -> Table:
    """eventsourcing-sqlalchemy's own events table, to create it (in a transaction of ours).

    Imported only where the table is created: the library's ORM models cost start-up time.
    The library keeps one record class per table name.
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
