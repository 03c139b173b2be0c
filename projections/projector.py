"""Projector: keeps every read model caught up with the log, exactly once.

Each projection has a row in `projection_state` (its position in the log and the version
of the code that built its tables). Catching up advances that position and writes the
rows in one transaction; the position is updated first and only if it still holds the
value read, so two processes catching up at once never apply an event twice: the loser
rolls back and reads again. Rebuilds replay the whole log into emptied tables.

No event stops the world (ADR 0009). An event the read side cannot apply (its state fails
the topic's schema, a fold finds it does not fit, or the database refuses its values) is
recorded in `projection_failures` with the reason, and the projection moves past it. Each
projection applies its batch inside a savepoint; when the batch fails, it is split in halves
until the events that fail are alone. A failure of the database itself (connection lost,
locked) is not an event's fault: it propagates and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, delete, inspect, select, update
from sqlalchemy import exc as sa_exc

from freegin_ai.projections.base import Projection, Skip
from freegin_ai.projections.envelope import Envelope, EventSource
from freegin_ai.projections.schemas import event_problem
from freegin_ai.projections.tables import metadata, projection_failures, projection_state

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One table before and after a rebuild."""

    table: str
    rows_before: int
    rows_after: int
    equal: bool


@dataclass(frozen=True, slots=True)
class NotApplied:
    """An event a projection recorded as not applied, and why."""

    projection: str
    position: int
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did: how many events it replayed, whether each table came out equal, and
    which events the read side could not apply."""

    events: int
    position: int
    tables: tuple[TableCheck, ...]
    not_applied: tuple[NotApplied, ...] = ()

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


class _PositionMoved(Exception):
    """Raised inside a catch-up transaction when another process advanced a projection."""


#: Failures of the database rather than of an event: never recorded against an event.
_STORAGE_FAILURES = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.InternalError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    sa_exc.PendingRollbackError,
    MemoryError,
    _PositionMoved,
)


def describe_failure(error: BaseException) -> str:
    """One line on why applying failed: the driver's own message when there is one."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    return text[:300]


class Projector:
    """Runs a set of projections against one database."""

    def __init__(
        self,
        engine: Engine,
        source: EventSource,
        projections: Sequence[Projection],
        *,
        reader: Engine | None = None,
        batch_size: int = 5_000,
        rebuild_batch_size: int = 20_000,
    ) -> None:
        self.engine = engine
        #: Connections for reading only (the store's `reader`); the engine itself by default.
        self.reader = reader or engine
        self.source = source
        self.projections = tuple(projections)
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size

    # -- set-up -----------------------------------------------------------------------

    def stored_versions(self) -> dict[str, int]:
        """Projection name → version its tables were built with (0: never); {} on a new database."""
        with self.reader.connect() as conn:  # one connection for the check and the read
            if not inspect(conn).has_table(projection_state.name):
                return {}
            query = select(projection_state.c.name, projection_state.c.version)
            return {str(name): int(version) for name, version in conn.execute(query)}

    def create_tables(self) -> None:
        """Create every read table and state row that does not exist yet."""
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            known = set(conn.scalars(select(projection_state.c.name)))
            missing = [p for p in self.projections if p.name not in known]
            if missing:
                # Version 0 marks "never built": set-up rebuilds them from the log.
                conn.execute(
                    projection_state.insert(),
                    [{"name": p.name, "position": 0, "version": 0} for p in missing],
                )

    def outdated(self) -> list[Projection]:
        """The projections whose tables are missing or were built by another version."""
        stored = self.stored_versions()
        return [p for p in self.projections if stored.get(p.name) != p.version]

    def setup(self, progress: Progress | None = None) -> list[str]:
        """Create what is missing and rebuild outdated projections; returns the rebuilt names.

        Tables built by another version of the code are dropped and created again first, so
        a version bump may change their columns (ADR 0005).
        """
        stored = self.stored_versions()
        outdated = [p for p in self.projections if stored.get(p.name) != p.version]
        if not outdated:
            return []  # the usual start (or another process just did it)
        self.create_tables()
        with self.engine.begin() as conn:
            for projection in outdated:
                if stored.get(projection.name):  # built before, by another version
                    for table in projection.tables:
                        table.drop(conn, checkfirst=True)
                        table.create(conn)
        self.rebuild(outdated, progress=progress)
        return [p.name for p in outdated]

    # -- catching up ------------------------------------------------------------------

    def positions(self, conn: Connection | None = None) -> dict[str, int]:
        query = select(projection_state.c.name, projection_state.c.position)
        if conn is not None:
            return {name: int(pos) for name, pos in conn.execute(query)}
        with self.reader.connect() as own:
            return {name: int(pos) for name, pos in own.execute(query)}

    def position(self, conn: Connection | None = None) -> int:
        """The log position every read table has reached (the least of theirs)."""
        positions = self.positions(conn)
        return min((positions.get(p.name, 0) for p in self.projections), default=0)

    def catch_up(self) -> int:
        """Apply every event not yet applied; returns how many log positions were passed."""
        passed = 0
        while True:
            with self.reader.connect() as conn:  # one connection for both reads
                positions = self.positions(conn)
                start = min(positions.get(p.name, 0) for p in self.projections)
                events = self.source.read(start, self.batch_size, conn=conn)
            if not events:
                return passed
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        # As SQLite's read tables (synchronous=NORMAL): the commit does not wait
                        # for the disk, so the positions' row locks go as soon as it is made. An
                        # OS crash may lose it, positions and rows together: the next catch-up
                        # applies those events again (ADR 0020).
                        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    self._apply_batch(conn, positions, events)
            except _PositionMoved:
                continue
            passed += len(events)
            if len(events) < self.batch_size:
                # The read saw every event committed before it: nothing is left that this
                # call must apply (one more read would cost a round trip or two for nothing).
                return passed

    def _apply_batch(
        self, conn: Connection, positions: dict[str, int], events: list[Envelope]
    ) -> None:
        last = events[-1].position
        # Positions first: this takes the write lock and proves nobody applied these events.
        # Projections at the same position move together, in one statement.
        behind: dict[int, list[str]] = {}
        for projection in self.projections:
            old = positions.get(projection.name, 0)
            if old < last:
                behind.setdefault(old, []).append(projection.name)
        for old, names in behind.items():
            moved = conn.execute(
                update(projection_state)
                .where(projection_state.c.name.in_(names))
                .where(projection_state.c.position == old)
                .values(position=last)
            )
            if moved.rowcount != len(names):
                raise _PositionMoved(", ".join(names))
        failed: list[tuple[Projection, Skip]] = []
        plans = list(
            zip(
                self.projections,
                _applicable(self.projections, events, failed, positions),
                strict=True,
            )
        )
        if not failed:
            # The common case first: every projection in one savepoint. Only when something
            # fails is each projection applied alone, halving down to the failing events.
            try:
                with conn.begin_nested():
                    for projection, good in plans:
                        if good:
                            projection.apply(conn, good)
                return
            except _STORAGE_FAILURES:
                raise
            except Exception:  # isolated below, one projection and one half at a time
                pass
        for projection, good in plans:
            self._apply_isolating(conn, projection, good, failed)
        _record(conn, failed)

    def _apply_isolating(
        self,
        conn: Connection,
        projection: Projection,
        events: list[Envelope],
        failed: list[tuple[Projection, Skip]],
    ) -> None:
        """Apply events in a savepoint; if that fails, halve until the failing events are
        alone, apply the rest, and list the failing ones in `failed`."""
        if not events:
            return
        try:
            with conn.begin_nested():
                projection.apply(conn, events)
            return
        except _STORAGE_FAILURES:
            raise
        except Exception as error:
            if len(events) == 1:
                failed.append((projection, (events[0], describe_failure(error))))
                return
        middle = len(events) // 2
        self._apply_isolating(conn, projection, events[:middle], failed)
        self._apply_isolating(conn, projection, events[middle:], failed)

    def not_applied(self, conn: Connection | None = None) -> list[NotApplied]:
        """Every event recorded as not applied, by log position ([] before set-up)."""
        if conn is None:
            if not inspect(self.reader).has_table(projection_failures.name):
                return []
            with self.reader.connect() as own:
                return self.not_applied(own)
        t = projection_failures
        query = select(t.c.projection, t.c.position, t.c.topic, t.c.reason).order_by(
            t.c.position, t.c.projection
        )
        return [
            NotApplied(str(name), int(position), str(topic).rsplit(".", 1)[-1], str(reason))
            for name, position, topic, reason in conn.execute(query)
        ]

    # -- rebuilding -------------------------------------------------------------------

    def rebuild(
        self, projections: Sequence[Projection] | None = None, progress: Progress | None = None
    ) -> RebuildReport:
        """Replay the whole log into emptied tables, in one transaction, and compare."""
        targets = tuple(projections or self.projections)
        names = [p.name for p in targets]
        tables = [t for p in targets for t in p.tables]
        with self.engine.begin() as conn:
            conn.execute(
                update(projection_state)
                .where(projection_state.c.name.in_(names))
                .values(position=projection_state.c.position)
            )
            for table in tables:
                _keep_copy(conn, table)
            for table in tables:
                conn.execute(delete(table))
            conn.execute(
                delete(projection_failures).where(projection_failures.c.projection.in_(names))
            )
            total = self.source.last_position(conn)
            try:
                with conn.begin_nested():
                    position, replayed, failed = self._replay_fast(conn, targets, total, progress)
            except _STORAGE_FAILURES:
                raise
            except Exception:
                # Something only the database noticed: start again, isolating each failure.
                for projection in targets:
                    projection.abandon_rebuild()
                position, replayed, failed = self._replay_isolating(conn, targets, total, progress)
            _record(conn, failed)
            for projection in targets:
                conn.execute(
                    update(projection_state)
                    .where(projection_state.c.name == projection.name)
                    .values(position=position, version=projection.version)
                )
            checks = tuple(_compare_with_copy(conn, table) for table in tables)
            not_applied = tuple(n for n in self.not_applied(conn) if n.projection in names)
        return RebuildReport(
            events=replayed, position=position, tables=checks, not_applied=not_applied
        )

    def _replay_fast(
        self,
        conn: Connection,
        targets: Sequence[Projection],
        total: int,
        progress: Progress | None,
    ) -> tuple[int, int, list[tuple[Projection, Skip]]]:
        """Fold the whole log in memory, batch by batch, leaving out events that fail their
        schema or do not fit; returns the last position, the count and the failures."""
        failed: list[tuple[Projection, Skip]] = []
        position = replayed = 0
        if progress:
            progress(0, total)
        while True:
            events = self.source.read(position, self.rebuild_batch_size, conn=conn)
            if not events:
                break
            for projection, good in zip(targets, _applicable(targets, events, failed), strict=True):
                if good:
                    skipped = projection.rebuild_batch(conn, good)
                    failed.extend((projection, skip) for skip in skipped)
            position = events[-1].position
            replayed += len(events)
            if progress:
                progress(position, total)
        for projection in targets:
            projection.finish_rebuild(conn)
        return position, replayed, failed

    def _replay_isolating(
        self,
        conn: Connection,
        targets: Sequence[Projection],
        total: int,
        progress: Progress | None,
    ) -> tuple[int, int, list[tuple[Projection, Skip]]]:
        """The slow way: apply the log incrementally, isolating every event that fails."""
        failed: list[tuple[Projection, Skip]] = []
        position = replayed = 0
        if progress:
            progress(0, total)
        while True:
            events = self.source.read(position, self.batch_size, conn=conn)
            if not events:
                break
            for projection, good in zip(targets, _applicable(targets, events, failed), strict=True):
                self._apply_isolating(conn, projection, good, failed)
            position = events[-1].position
            replayed += len(events)
            if progress:
                progress(position, total)
        return position, replayed, failed


def _applicable(
    projections: Sequence[Projection],
    events: list[Envelope],
    failed: list[tuple[Projection, Skip]],
    positions: Mapping[str, int] | None = None,
) -> list[list[Envelope]]:
    """For each projection, the events past its position (`positions`, else all) that it reads
    and whose state passes the topic's schema; an event that fails it goes to `failed` once for
    every projection that reads it.

    One pass over the batch, and each event's schema checked once, whoever reads it.
    """
    chosen: list[list[Envelope]] = [[] for _ in projections]
    readers: dict[str, list[int]] = {}
    for index, projection in enumerate(projections):
        for topic in projection.topics:
            readers.setdefault(topic, []).append(index)
    after = [positions.get(p.name, 0) if positions else 0 for p in projections]
    for event in events:
        indexes = readers.get(event.topic)
        if not indexes:
            continue
        problem = event_problem(event)
        for index in indexes:
            if event.position <= after[index]:
                continue
            if problem is None:
                chosen[index].append(event)
            else:
                failed.append((projections[index], (event, problem)))
    return chosen


def _record(conn: Connection, failed: list[tuple[Projection, Skip]]) -> None:
    """Write down the events each projection could not apply (in the same transaction)."""
    if failed:
        conn.execute(
            projection_failures.insert(),
            [
                {
                    "projection": projection.name,
                    "position": event.position,
                    "topic": event.topic,
                    "reason": reason[:300],
                }
                for projection, (event, reason) in failed
            ],
        )


def _copy_name(table: Table) -> str:
    return f"rebuild_before_{table.name}"


def _keep_copy(conn: Connection, table: Table) -> None:
    """Copy a table's rows aside (a temporary table) to compare with after the rebuild."""
    copy = _copy_name(table)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {copy}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {copy} AS SELECT * FROM {table.name}")


def _compare_with_copy(conn: Connection, table: Table) -> TableCheck:
    """Compare a rebuilt table with its copy in set-based SQL (every table has a unique key)."""
    copy = _copy_name(table)

    def scalar(sql: str) -> int:
        return int(conn.exec_driver_sql(sql).scalar() or 0)

    before = scalar(f"SELECT count(*) FROM {copy}")
    after = scalar(f"SELECT count(*) FROM {table.name}")
    missing = scalar(
        f"SELECT count(*) FROM (SELECT * FROM {copy} EXCEPT SELECT * FROM {table.name}) d"
    )
    extra = scalar(
        f"SELECT count(*) FROM (SELECT * FROM {table.name} EXCEPT SELECT * FROM {copy}) d"
    )
    conn.exec_driver_sql(f"DROP TABLE {copy}")
    return TableCheck(
        table=str(table.name),  # a quoted_name, which JSON encoders do not know
        rows_before=before,
        rows_after=after,
        equal=before == after and missing == 0 and extra == 0,
    )
