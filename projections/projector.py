"""Projector: keeps every read model caught up with the log, exactly once.

Each projection has a row in `projection_state` (its position in the log and the version
of the code that built its tables). Catching up advances that position and writes the
rows in one transaction; the position is updated first and only if it still holds the
value read, so two processes catching up at once never apply an event twice: the loser
rolls back and reads again. Rebuilds replay the whole log into emptied tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, delete, inspect, select, update

from freegin_ai.projections.base import Projection
from freegin_ai.projections.envelope import Envelope, EventSource
from freegin_ai.projections.tables import metadata, projection_state

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One table before and after a rebuild."""

    table: str
    rows_before: int
    rows_after: int
    equal: bool


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did: how many events it replayed and whether each table came out equal."""

    events: int
    position: int
    tables: tuple[TableCheck, ...]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


class _PositionMoved(Exception):
    """Raised inside a catch-up transaction when another process advanced a projection."""


class Projector:
    """Runs a set of projections against one database."""

    def __init__(
        self,
        engine: Engine,
        source: EventSource,
        projections: Sequence[Projection],
        *,
        batch_size: int = 5_000,
        rebuild_batch_size: int = 20_000,
    ) -> None:
        self.engine = engine
        self.source = source
        self.projections = tuple(projections)
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size

    # -- set-up -----------------------------------------------------------------------

    def stored_versions(self) -> dict[str, int]:
        """Projection name → version its tables were built with (0: never); {} on a new database."""
        if not inspect(self.engine).has_table(projection_state.name):
            return {}
        with self.engine.connect() as conn:
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

    def setup(self, progress: Progress | None = None) -> list[str]:
        """Create what is missing and rebuild outdated projections; returns the rebuilt names.

        Tables built by another version of the code are dropped and created again first, so
        a version bump may change their columns (ADR 0005).
        """
        stored = self.stored_versions()
        outdated = [p for p in self.projections if stored.get(p.name) != p.version]
        if not outdated:
            return []  # the usual start: every table exists and is current
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
        with self.engine.connect() as own:
            return {name: int(pos) for name, pos in own.execute(query)}

    def catch_up(self) -> int:
        """Apply every event not yet applied; returns how many log positions were passed."""
        passed = 0
        while True:
            positions = self.positions()
            start = min(positions.get(p.name, 0) for p in self.projections)
            events = self.source.read(start, self.batch_size)
            if not events:
                return passed
            try:
                with self.engine.begin() as conn:
                    self._apply_batch(conn, positions, events)
            except _PositionMoved:
                continue
            passed += len(events)

    def _apply_batch(
        self, conn: Connection, positions: dict[str, int], events: list[Envelope]
    ) -> None:
        last = events[-1].position
        # Positions first: this takes the write lock and proves nobody applied these events.
        for projection in self.projections:
            old = positions.get(projection.name, 0)
            if old >= last:
                continue
            moved = conn.execute(
                update(projection_state)
                .where(projection_state.c.name == projection.name)
                .where(projection_state.c.position == old)
                .values(position=last)
            )
            if moved.rowcount != 1:
                raise _PositionMoved(projection.name)
        for projection in self.projections:
            old = positions.get(projection.name, 0)
            mine = [e for e in events if e.position > old and e.topic in projection.topics]
            if mine:
                projection.apply(conn, mine)

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
            total = self.source.last_position(conn)
            position = replayed = 0
            if progress:
                progress(0, total)
            while True:
                events = self.source.read(position, self.rebuild_batch_size, conn=conn)
                if not events:
                    break
                for projection in targets:
                    mine = [e for e in events if e.topic in projection.topics]
                    if mine:
                        projection.rebuild_batch(conn, mine)
                position = events[-1].position
                replayed += len(events)
                if progress:
                    progress(position, total)
            for projection in targets:
                projection.finish_rebuild(conn)
                conn.execute(
                    update(projection_state)
                    .where(projection_state.c.name == projection.name)
                    .values(position=position, version=projection.version)
                )
            checks = tuple(_compare_with_copy(conn, table) for table in tables)
        return RebuildReport(events=replayed, position=position, tables=checks)


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
        table=table.name,
        rows_before=before,
        rows_after=after,
        equal=before == after and missing == 0 and extra == 0,
    )
