"""The event store: an eventsourcing Application for appending and loading aggregates, and a
plain SQLAlchemy engine, shared with the read tables, for reading the log in bulk.

The Application (and eventsourcing's persistence module) is built only when a command needs
it: queries start faster without it. It reads and writes the events table through
`adapters.recorder`, on this same engine (ADR 0020).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

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
    make_url,
    select,
    text,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from freegin_ai.adapters.database_errors import describe
from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.file_lock import exclusive_lock
from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.domain.codec import decode_raw
from freegin_ai.projections.envelope import Envelope

if TYPE_CHECKING:
    from eventsourcing.application import Application
    from eventsourcing.persistence import Mapper

#: The Application's name; eventsourcing derives the events table name from it.
APPLICATION_NAME = "freegin"

#: The channel every append NOTIFYs on PostgreSQL (eventsourcing-sqlalchemy's name for it).
CHANNEL = EVENTS_TABLE
#: The payload of a usage append's NOTIFY; every other append (the catalog's, an older
#: version's) sends none, so a listener can tell a catalog change from usage (ADR 0021).
USAGE_NOTICE = "usage"

#: An event as the events table stores it: stream id, version, topic, state (JSON bytes).
StoredRow = tuple[UUID, int, str, bytes]

#: Rows per INSERT statement on PostgreSQL (four parameters each, under its 65,535).
_ROWS_PER_INSERT = 1_000

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


class HeldConnection:
    """One of the engine's driver connections, kept by a user that goes to the database all
    the time (the usage log's commits on SQLite, a router's PositionProbe): no pool checkout
    and return each time.

    Its user serializes its use (the usage log's commit lock, the router's loop). After a
    failure the connection goes back to the pool, and the next use takes a fresh one.
    """

    def __init__(self, engine: Engine, *, checkpoints: bool = True) -> None:
        self.engine = engine
        #: Whether this connection's commits checkpoint the SQLite WAL when it has grown
        #: (SQLite's default); False when someone else checkpoints (`EventStore.checkpoint`).
        self.checkpoints = checkpoints
        self._raw: Any = None

    def get(self) -> Any:
        if self._raw is None:
            raw: Any = self.engine.raw_connection()
            if not self.checkpoints and self.engine.dialect.name == "sqlite":
                raw.driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
            self._raw = raw
        return self._raw

    def close(self) -> None:
        """Give the connection back to the pool (as the pool lent it)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                if not self.checkpoints and self.engine.dialect.name == "sqlite":
                    raw.driver_connection.execute("PRAGMA wal_autocheckpoint = 1000")
                raw.close()


class PositionProbe:
    """Whether the read tables moved, looked at on one kept SQLite connection: 20-30 µs a look
    (positions only grow, so their sum changes when any of them does). A router
    looks before every decision and sees another process's change on its next request (ADR
    0021). Used from one thread at a time."""

    _SQL = "SELECT sum(position) FROM projection_state"

    def __init__(self, engine: Engine) -> None:
        self._held = HeldConnection(engine)
        self._seen: int | None = None

    def moved(self) -> bool:
        """Whether any position changed since the last look (True at the first)."""
        try:
            row = self._held.get().driver_connection.execute(self._SQL).fetchone()
        except Exception:
            self._held.close()  # the next look takes a fresh connection
            raise
        seen, self._seen = self._seen, int(row[0] or 0)
        return seen != self._seen

    def close(self) -> None:
        self._held.close()


@contextmanager
def driver_transaction(
    engine: Engine,
    failure: str,
    *,
    conflict: Callable[[str], Exception] | None = None,
    held: HeldConnection | None = None,
) -> Iterator[Any]:
    """A cursor on one of the engine's driver connections, committed when the block ends.

    For the hot paths (appends, quota reservations): the driver's own statements and
    commit, none of SQLAlchemy's statement handling. Any failure rolls back and becomes a
    StorageError starting with `failure` (a unique-key violation becomes `conflict(reason)`
    when given); the pool discards a connection that is gone. With `held`, that connection
    is used and kept (given back after a failure).
    """
    raw: Any = engine.raw_connection() if held is None else held.get()
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
        if held is not None:
            held.close()
        dbapi = engine.dialect.dbapi
        if conflict is not None and dbapi is not None and isinstance(error, dbapi.IntegrityError):
            raise conflict(describe(error)) from None
        raise StorageError(f"{failure}: {describe(error)}") from None
    finally:
        if held is None:
            raw.close()


def id_binder(dialect: str) -> Callable[[Any], Any]:
    """How the events table's UUID column takes an id: PostgreSQL's own `uuid` type, else the
    16 bytes of SQLAlchemy-Utils' `UUIDType` (the column type eventsourcing-sqlalchemy gave it)."""
    if dialect == "postgresql":
        return lambda value: value
    return lambda value: (value if isinstance(value, UUID) else UUID(str(value))).bytes


#: A pooled connection idle for longer than this is checked with a round trip before it is
#: lent (a server restart or an idle timeout may have closed it); one used more recently is
#: lent as it is (ADR 0025).
PING_AFTER_IDLE_SECONDS = 1.0


_PSYCOPG = frozenset({"psycopg", "psycopg2"})


def make_engine(url: str, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Engine:
    """A SQLAlchemy engine for the URL, tuned for concurrent use of one SQLite file; a server's
    pooled connections are checked when they were idle for `ping_after_idle` seconds."""
    try:
        # psycopg's dialects look hstore up on their first connection (three round trips);
        # no table here has one.
        driver = make_url(url).get_driver_name()
        engine = create_engine(url, **({"use_native_hstore": False} if driver in _PSYCOPG else {}))
    except Exception as error:  # bad URLs fail in many ways (ArgumentError, missing driver)
        raise StorageError(f"cannot use database URL: {describe(error)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
    else:
        _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Check a pooled connection before lending it only when it sat idle for `after` seconds.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout: nine of a one-shot
    command's ~80 on PostgreSQL, for connections the process used milliseconds before. A
    connection that fails its check is replaced, as with `pool_pre_ping`.
    """
    dialect = engine.dialect

    def checked_in(_dbapi: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(
        dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= after:
            return
        try:
            dialect.do_ping(dbapi)
        except Exception as error:  # the pool drops this connection and lends a new one
            raise DisconnectionError(describe(error)) from None

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _build_application(store: EventStore) -> Application[Any]:
    from eventsourcing.application import Application
    from eventsourcing.persistence import (
        ApplicationRecorder,
        InfrastructureFactory,
        IntegrityError,
        ProcessRecorder,
        TrackingRecorder,
        Transcoder,
    )
    from eventsourcing.utils import Environment

    from freegin_ai.adapters.recorder import EventRecorder
    from freegin_ai.adapters.transcoder import MsgspecTranscoder

    def append(rows: list[tuple[Any, ...]]) -> None:
        # Catalog commands always wait for the disk (ADR 0010); a version another writer
        # took first is eventsourcing's IntegrityError, and the command runs again.
        store.append_rows(rows, fsync=True, failure="cannot append events", conflict=IntegrityError)

    class Factory(InfrastructureFactory):
        """The events table on the store's engine; nothing else (no snapshots, no tracking)."""

        def aggregate_recorder(self, purpose: str = "events") -> ApplicationRecorder:
            return self.application_recorder()

        def application_recorder(self) -> ApplicationRecorder:
            return EventRecorder(store.engine, append, store.bind_id)

        def tracking_recorder(self, tracking_recorder_class: Any = None) -> TrackingRecorder:
            raise NotImplementedError("the read side keeps its own positions")

        def process_recorder(self) -> ProcessRecorder:
            raise NotImplementedError("the read side keeps its own positions")

    class CatalogApplication(Application[Any]):
        """Appends and loads the catalog's aggregates."""

        name = APPLICATION_NAME

        def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
            # Only what we pass in: the process environment must not reconfigure persistence.
            return Environment(name, dict(env or {}))

        def construct_factory(self, env: Environment) -> InfrastructureFactory:
            return Factory(env)

        def construct_transcoder(self) -> Transcoder:
            return MsgspecTranscoder()

    return CatalogApplication()


class EventStore:
    """Appends events (through eventsourcing) and reads the log (through plain SQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        #: Connections that only read. On PostgreSQL they run in autocommit: a read is its
        #: statements and no BEGIN or ROLLBACK round trips (under READ COMMITTED each statement
        #: sees a snapshot of its own either way). SQLite's driver opens no transaction for a
        #: read anyway.
        self.reader = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.table = events_table
        self._app: Application[Any] | None = None
        self._mapper: Mapper[UUID] | None = None
        #: How the events table's column takes an id on this database.
        self.bind_id = id_binder(self.engine.dialect.name)
        #: Whether the events table is known to exist (checked or created by this process).
        self._log_known = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def app(self) -> Application[Any]:
        """The eventsourcing Application, built on first use (the events table is created
        first if this process has not seen it)."""
        if self._app is None:
            self.create_log()
            try:
                self._app = _build_application(self)
            except Exception as error:
                raise StorageError(f"cannot open the event store: {describe(error)}") from None
        return self._app

    def has_log(self) -> bool:
        """Whether the events table exists (a new database, or the earlier tool's, has none)."""
        try:
            self._log_known = inspect(self.reader).has_table(EVENTS_TABLE)
        except Exception as error:
            raise StorageError(f"cannot open the database: {describe(error)}") from None
        return self._log_known

    def create_log(self) -> None:
        """Create the events table, as eventsourcing-sqlalchemy lays it out, if it is missing."""
        if self._log_known:
            return
        from freegin_ai.adapters.recorder import library_events_table

        try:
            library_events_table().create(self.engine, checkfirst=True)
        except Exception as error:
            raise StorageError(f"cannot open the event store: {describe(error)}") from None
        self._log_known = True

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

    def append_new_streams(
        self, events: Sequence[Any], *, fsync: bool = True, held: HeldConnection | None = None
    ) -> None:
        """Append events that each open a stream of their own (usage) in one transaction: see
        `append_stored`."""
        self.append_stored([self.stored(event) for event in events], fsync=fsync, held=held)

    def stored(self, event: Any) -> StoredRow:
        """An event in its stored form, as the Application's mapper stores it."""
        from freegin_ai.adapters.transcoder import make_mapper, stored_row

        if self._mapper is None:
            self._mapper = make_mapper()
        return stored_row(self._mapper, event)

    def append_stored(
        self, rows: Sequence[StoredRow], *, fsync: bool = True, held: HeldConnection | None = None
    ) -> None:
        """Append events in their stored form, each opening a stream of its own (usage), in
        one transaction.

        The library inserts ORM records one by one; usage is logged on every call, so it
        goes through one set-based insert of the same stored form, on a connection of the
        plain engine (on PostgreSQL under the same table lock that keeps notification ids in
        commit order, with the same NOTIFY). Returns once the transaction committed, which
        survives a crash of this process. With `fsync=False` the commit does not wait for
        the disk (SQLite `synchronous=NORMAL` in WAL mode, PostgreSQL `synchronous_commit =
        off`): a power loss or an OS crash may then lose the last commits, never corrupt
        the database (ADR 0010). With `held`, on that connection (see HeldConnection).
        """
        if not rows:
            return
        self.create_log()  # known to exist after the first time: returns at once
        bind_id = self.bind_id
        self.append_rows(
            [(bind_id(id), version, topic, state) for id, version, topic, state in rows],
            fsync=fsync,
            failure="cannot append usage",
            held=held,
            notice=USAGE_NOTICE,
        )

    def append_rows(
        self,
        rows: Sequence[tuple[Any, ...]],
        *,
        fsync: bool,
        failure: str,
        conflict: Callable[[str], Exception] | None = None,
        held: HeldConnection | None = None,
        notice: str = "",
    ) -> None:
        """Append stored rows (id bound by `bind_id`, version, topic, state) in one transaction.

        On PostgreSQL under the exclusive table lock that keeps log positions in commit order
        (taken right before the insert, held to the commit), with the NOTIFY a listening
        process catches up on. `fsync` as for `append_new_streams`; a unique-key violation (a
        version another writer took first) raises `conflict(reason)` when given.
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        row = f"({mark}, {mark}, {mark}, {mark})"
        insert = (
            f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) VALUES "
        )
        postgres = self.dialect == "postgresql"
        # Nothing here needs SQLAlchemy's statements: the driver's own, on a pooled connection.
        with driver_transaction(self.engine, failure, conflict=conflict, held=held) as cursor:
            if postgres:
                if not fsync:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
            elif fsync:
                # Connections run with NORMAL (see _tune_sqlite); FULL for this commit.
                # Set outside the transaction (pysqlite opens it at the first insert).
                cursor.execute("PRAGMA synchronous = FULL")
            try:
                if postgres:
                    # Multi-row statements: psycopg's executemany runs a pipeline, which logs a
                    # warning when a row conflicts (an expected race between writers).
                    for start in range(0, len(rows), _ROWS_PER_INSERT):
                        chunk = rows[start : start + _ROWS_PER_INSERT]
                        cursor.execute(
                            insert + ", ".join([row] * len(chunk)),
                            [value for r in chunk for value in r],
                        )
                else:
                    cursor.executemany(insert + row, rows)
                if postgres:
                    # Delivered at commit: a listening process catches its read tables up.
                    cursor.execute(
                        f"NOTIFY {CHANNEL}, '{notice}'" if notice else f"NOTIFY {CHANNEL}"
                    )
                elif fsync:
                    cursor.connection.commit()
            finally:
                if fsync and not postgres:
                    with contextlib.suppress(Exception):  # the failure itself is what counts
                        cursor.connection.rollback()  # nothing left after a commit
                        cursor.execute("PRAGMA synchronous = NORMAL")

    def checkpoint(self) -> None:
        """Copy what the SQLite WAL holds into the database file, without waiting for readers or
        writers (a passive checkpoint); nothing on PostgreSQL. For the usage log's background
        thread, so that the commits an answer waits for never do it (ADR 0021)."""
        if self.dialect != "sqlite":
            return
        raw: Any = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            raw.close()

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
            with self.reader.connect() as own:
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
            with self.reader.connect() as own:
                value = own.execute(query).scalar()
        else:
            value = conn.execute(query).scalar()
        return int(value or 0)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        self.engine.dispose()
