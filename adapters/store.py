"""The event store: an eventsourcing Application on eventsourcing-sqlalchemy, sharing one
SQLAlchemy engine with the read tables, and the fast log reader the projections use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import Environment
from sqlalchemy import Connection, Engine, Table, event, func, select
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from freegin_ai.adapters.errors import StorageError
from freegin_ai.domain.codec import decode_raw, decode_state, encode_state
from freegin_ai.projections.envelope import Envelope

#: The Application's name; eventsourcing derives the events table name from it.
APPLICATION_NAME = "freegin"
EVENTS_TABLE = "freegin_events"


class MsgspecTranscoder(Transcoder):
    """Event state as compact JSON through msgspec (see domain.codec)."""

    def encode(self, obj: Any) -> bytes:
        return encode_state(obj)

    def decode(self, data: bytes) -> Any:
        return decode_state(data)


class CatalogApplication(Application[Any]):
    """The eventsourcing Application that appends and loads the catalog's events."""

    name = APPLICATION_NAME

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        # Only what we pass in: the process environment must not reconfigure persistence.
        return Environment(name, dict(env or {}))

    def construct_transcoder(self) -> Transcoder:
        return MsgspecTranscoder()


def _tune_sqlite(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # Wait for another writer instead of failing at once; WAL lets readers go on meanwhile.
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


class EventStore:
    """Appends events and reads the log; owns the engine the read tables use too."""

    def __init__(self, url: str) -> None:
        try:
            self.app = CatalogApplication(
                env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": url}
            )
        except Exception as error:  # the library wraps driver errors in many ways
            raise StorageError(f"cannot open the database: {_describe(error)}") from None
        engine = self.app.factory.datastore.engine  # type: ignore[attr-defined]
        if not isinstance(engine, Engine):
            raise StorageError("the event store did not create a database engine")
        self.engine: Engine = engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _tune_sqlite)
            engine.dispose()  # connections made before the listener get replaced
        self.table: Table = self.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def save(self, *objects: Any) -> None:
        """Append the pending events of aggregates (and bare events) in one transaction."""
        self.app.save(*objects)

    def read(
        self,
        after: int,
        limit: int,
        topics: frozenset[str] = frozenset(),
        conn: Connection | None = None,
    ) -> list[Envelope]:
        """Read events after a position with plain SQL: far faster than materialising records."""
        t = self.table
        query = (
            select(t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
            .where(t.c.id > after)
            .order_by(t.c.id)
            .limit(limit)
        )
        if topics:
            query = query.where(t.c.topic.in_(sorted(topics)))
        if conn is None:
            with self.engine.connect() as own:
                rows: Sequence[Any] = own.execute(query).all()
        else:
            rows = conn.execute(query).all()
        return [
            Envelope(
                position=row[0],
                originator_id=row[1],
                version=row[2],
                topic=row[3],
                state=decode_raw(row[4]),
            )
            for row in rows
        ]

    def last_position(self, conn: Connection | None = None) -> int:
        query = select(func.max(self.table.c.id))
        if conn is None:
            with self.engine.connect() as own:
                value = own.execute(query).scalar()
        else:
            value = conn.execute(query).scalar()
        return int(value or 0)

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()


def _describe(error: BaseException) -> str:
    """A one-line description of a database error, without driver noise."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__
