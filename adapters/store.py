"""The event store: an eventsourcing Application on eventsourcing-sqlalchemy for appending
and loading aggregates, and a plain SQLAlchemy engine, shared with the read tables, for
reading the log in bulk.

The Application (and its ORM models) is built only when a command needs it: queries start
faster without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from freegin_ai.adapters.database_errors import describe
from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.file_lock import exclusive_lock
from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.domain.codec import decode_raw
from freegin_ai.projections.envelope import Envelope

if TYPE_CHECKING:
    from eventsourcing.application import Application

#: The Application's name; eventsourcing derives the events table name from it.
APPLICATION_NAME = "freegin"

#: The PostgreSQL advisory lock key of the set-up lock (any constant bigint; "freegin").
_SETUP_LOCK_KEY = int.from_bytes(b"freegin", "big")


def _lock_failed(error: OSError) -> StorageError:
    return StorageError(f"cannot lock the database: {error.strerror}")


_BigInt = BigInteger().with_variant(Integer(), "sqlite")

#: The columns of eventsourcing-sqlalchemy's events table that the log reader needs.
events_table = Table(
    EVENTS_TABLE,
    MetaData(),
    Column("id", _BigInt, primary_key=True),
    Column("originator_version", _BigInt),
    Column("topic", Text),
    Column("state", LargeBinary),
)


def _tune_sqlite(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # Wait for another writer instead of failing at once; WAL lets readers go on meanwhile.
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    # Read tables can be rebuilt from the log; usage appends choose per commit (ADR 0010).
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


@contextmanager
def driver_transaction(engine: Engine, failure: str) -> Iterator[Any]:
    """A cursor on one of the engine's driver connections, committed when the block ends.

    For the hot paths (usage appends, quota reservations): the driver's own statements and
    commit, none of SQLAlchemy's statement handling. Any failure rolls back and becomes a
    StorageError starting with `failure`; the pool discards a connection that is gone.
    """
    raw: Any = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            yield cursor
            raw.commit()
        finally:
            cursor.close()
    except Exception as error:
        with contextlib.suppress(Exception):
            raw.rollback()
        raise StorageError(f"{failure}: {describe(error)}") from None
    finally:
        raw.close()


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for the URL, tuned for concurrent use of one SQLite file."""
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except Exception as error:  # bad URLs fail in many ways (ArgumentError, missing driver)
        raise StorageError(f"cannot use database URL: {describe(error)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    return engine


def _build_application(url: str) -> Application[Any]:
    from eventsourcing.application import Application
    from eventsourcing.persistence import Transcoder
    from eventsourcing.utils import Environment

    from freegin_ai.adapters.transcoder import MsgspecTranscoder

    class CatalogApplication(Application[Any]):
        """Appends and loads the catalog's aggregates."""

        name = APPLICATION_NAME

        def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
            # Only what we pass in: the process environment must not reconfigure persistence.
            return Environment(name, dict(env or {}))

        def construct_transcoder(self) -> Transcoder:
            return MsgspecTranscoder()

    return CatalogApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": url}
    )


class EventStore:
    """Appends events (through eventsourcing) and reads the log (through plain SQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.table = events_table
        self._app: Application[Any] | None = None
        #: How the events table stores an id on this database (worked out on first append).
        self._id_binder: Callable[[Any], Any] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def app(self) -> Application[Any]:
        """The eventsourcing Application, built on first use (it creates the events table)."""
        if self._app is None:
            try:
                self._app = _build_application(self.url)
            except Exception as error:  # the library wraps driver errors in many ways
                raise StorageError(f"cannot open the event store: {describe(error)}") from None
        return self._app

    def has_log(self) -> bool:
        """Whether the events table exists (a new database, or the earlier tool's, has none)."""
        try:
            return inspect(self.engine).has_table(EVENTS_TABLE)
        except Exception as error:
            raise StorageError(f"cannot open the database: {describe(error)}") from None

    def create_log(self) -> None:
        """Create the events table (building the Application does) if it is missing."""
        _ = self.app

    @contextmanager
    def setup_lock(self) -> Iterator[None]:
        """Hold the database's set-up lock: one process at a time creates or rebuilds tables.

        Several processes may open an empty database at once; without it they race on
        CREATE TABLE and on the projection state rows. SQLite: an exclusive lock on
        `<database>.lock` beside the file. PostgreSQL: a session advisory lock. Not for
        nesting.
        """
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SETUP_LOCK_KEY})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SETUP_LOCK_KEY})
                    conn.commit()
            return
        database = self.engine.url.database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            yield  # nothing another process could share
            return
        with exclusive_lock(f"{database}.lock", _lock_failed):
            yield

    def save(self, *objects: Any) -> None:
        """Append the pending events of aggregates (and bare events) in one transaction."""
        self.app.save(*objects)

    def append_new_streams(self, events: Sequence[Any], *, fsync: bool = True) -> None:
        """Append events that each open a stream of their own (usage) in one transaction.

        The library inserts ORM records one by one; usage is logged on every call, so it
        goes through one set-based insert of the same stored form, on a connection of the
        plain engine (on PostgreSQL under the same table lock that keeps notification ids in
        commit order, with the same NOTIFY). Returns once the transaction committed, which
        survives a crash of this process. With `fsync=False` the commit does not wait for
        the disk (SQLite `synchronous=NORMAL` in WAL mode, PostgreSQL `synchronous_commit =
        off`): a power loss or an OS crash may then lose the last commits, never corrupt
        the database (ADR 0010).
        """
        if not events:
            return
        app = self.app
        recorder: Any = app.recorder
        to_stored = app.mapper.to_stored_event
        bind_id = self._id_binder
        if bind_id is None:
            bind_id = self._id_binder = self._bind_id(recorder)
        rows = []
        for domain_event in events:
            stored = to_stored(domain_event)
            rows.append(
                (
                    bind_id(stored.originator_id),
                    stored.originator_version,
                    stored.topic,
                    stored.state,
                )
            )
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        insert = (
            f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})"
        )
        postgres = self.dialect == "postgresql"
        # Usage is committed on every call: nothing here needs SQLAlchemy's statements.
        with driver_transaction(self.engine, "cannot append usage") as cursor:
            if postgres:
                if not fsync:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
            elif fsync:
                # Connections run with NORMAL (see _tune_sqlite); FULL for this commit.
                # Set outside the transaction (pysqlite opens it at the first insert).
                cursor.execute("PRAGMA synchronous = FULL")
            cursor.executemany(insert, rows)
            if postgres:
                # Delivered at commit: a listening process catches its read tables up.
                cursor.execute(f"NOTIFY {recorder.channel_name}")
            elif fsync:
                cursor.connection.commit()
                cursor.execute("PRAGMA synchronous = NORMAL")

    def _bind_id(self, recorder: Any) -> Callable[[Any], Any]:
        """How the events table's UUID column stores an id on this database."""
        column = recorder.events_record_cls.__table__.c.originator_id
        dialect = self.engine.dialect
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        return processor if processor is not None else (lambda value: value)

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
            select(t.c.id, t.c.originator_version, t.c.topic, t.c.state)
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
            Envelope(position=row[0], version=row[1], topic=row[2], state=decode_raw(row[3]))
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
        if self._app is not None:
            self._app.close()
            datastore = getattr(self._app.factory, "datastore", None)
            engine = getattr(datastore, "engine", None)
            if isinstance(engine, Engine):
                engine.dispose()
        self.engine.dispose()
