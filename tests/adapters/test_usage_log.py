"""The usage log's group commit: each caller returns only once its event is committed,
concurrent callers share commits, failures reach every waiter, and the read tables follow
the log within a second and are current once the log is closed."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.store import EventStore, HeldConnection
from freegin_ai.adapters.usage_log import UsageLog, UsageLogClosedError
from freegin_ai.domain.errors import ValueOutOfRangeError
from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.domain.usage import CallUsage, TokenUsage, usage_logged
from tests.conftest import FakeClock


def usage(latency_ms: int) -> CallUsage:
    return CallUsage(
        provider="groq", workload="chat", model="m", success=True, latency_ms=latency_ms
    )


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    c = Catalog.open(database_url, clock=clock, seed=False)
    yield c
    c.close()


def logged(store: EventStore) -> int:
    """Usage events in the log, read on a fresh connection (what another process sees)."""
    with store.engine.connect() as conn:
        query = text("SELECT count(*) FROM freegin_events WHERE topic = :topic")
        return int(conn.execute(query, {"topic": USAGE_LOGGED}).scalar() or 0)


def usage_rows(catalog: Catalog) -> int:
    """Rows in the read table as they are now (no catch-up on the way)."""
    with catalog.store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM provider_usage").scalar() or 0)


@pytest.mark.anyio
async def test_each_call_returns_after_its_event_is_committed(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock)
    for i in range(3):
        await log.log(usage(i))
        # Visible to any other connection at once: committed, not buffered.
        assert logged(catalog.store) == i + 1
    log.log_sync(usage(9))
    assert logged(catalog.store) == 4
    log.close()


@pytest.mark.anyio
async def test_concurrent_calls_share_commits(catalog: Catalog, clock: FakeClock) -> None:
    log = UsageLog(catalog.store, clock)

    async def call(i: int) -> None:
        await log.log(usage(i))

    async with anyio.create_task_group() as group:
        for i in range(64):
            group.start_soon(call, i)
    log.close()
    assert log.committed == 64 and logged(catalog.store) == 64
    assert log.commits <= 4  # one commit per loop pass, not one per call


def test_sync_callers_in_threads_are_all_committed(catalog: Catalog, clock: FakeClock) -> None:
    log = UsageLog(catalog.store, clock)

    def ten() -> None:
        for _ in range(10):
            log.log_sync(usage(1))

    threads = [threading.Thread(target=ten) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert logged(catalog.store) == 80 == log.committed


@pytest.mark.anyio
async def test_a_failed_commit_reaches_every_waiter_and_nothing_is_half_written(
    sqlite_url: str, clock: FakeClock
) -> None:
    catalog = Catalog.open(sqlite_url, clock=clock, seed=False)
    log = UsageLog(catalog.store, clock)
    await log.log(usage(1))
    with catalog.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE freegin_events")
    failures: list[BaseException] = []

    async def call() -> None:
        try:
            await log.log(usage(2))
        except StorageError as error:
            failures.append(error)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(call)
    assert len(failures) == 5 and log.committed == 1
    log.close()
    catalog.close()


@pytest.mark.anyio
async def test_a_cancelled_caller_s_event_is_still_committed(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await log.log(usage(1))
    await log.log(usage(2))
    log.close()
    assert logged(catalog.store) == 2


@pytest.mark.anyio
async def test_read_tables_follow_within_a_second_and_are_current_after_close(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock, after_commit=catalog.projector.catch_up)
    await log.log(usage(1))
    assert usage_rows(catalog) == 0 or usage_rows(catalog) == 1
    deadline = time.monotonic() + 1.0
    while usage_rows(catalog) < 1 and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    assert usage_rows(catalog) == 1  # caught up by the log's own thread, nobody read
    for i in range(20):
        await log.log(usage(i))
    log.close()
    assert usage_rows(catalog) == 21  # closing leaves them current
    with pytest.raises(UsageLogClosedError):
        await log.log(usage(1))


@pytest.mark.anyio
async def test_a_commit_that_waits_for_the_disk_leaves_the_connection_as_it_was(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock, fsync=True)
    await log.log(usage(1))
    log.log_sync(usage(2))
    assert logged(catalog.store) == 2
    if catalog.store.dialect == "sqlite":
        # Pooled connections go back to NORMAL: catalog writes keep their own setting.
        with catalog.store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    log.close()


@pytest.mark.anyio
async def test_a_lone_call_commits_at_once_and_others_wait_for_the_loop_pass(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock)
    seen: list[int] = []  # events committed, as another task finds them each time it runs

    async def tick() -> None:
        while True:
            seen.append(logged(catalog.store))
            await anyio.sleep(0)

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await anyio.sleep(0)
        seen.clear()
        await log.log(usage(1), alone=True)
        # Committed, and the caller went on without waiting for the loop.
        assert logged(catalog.store) == 1 and seen == []
        await log.log(usage(2), alone=True)
        # At once again, with no turn of the loop in between: now it turns once, so that a
        # caller whose calls never wait for I/O cannot starve the other tasks.
        assert seen == [2]
        seen.clear()
        await log.log(usage(3))
        # A call among others waits for the loop's next pass, where others may join it.
        assert seen[0] == 2 and logged(catalog.store) == 3
        group.cancel_scope.cancel()
    log.close()


@pytest.mark.anyio
async def test_a_lone_call_waits_its_turn_while_the_read_tables_catch_up(
    sqlite_url: str, clock: FakeClock
) -> None:
    catalog = Catalog.open(sqlite_url, clock=clock, seed=False)
    catching_up = threading.Event()

    def slow_catch_up() -> None:
        catching_up.set()
        time.sleep(0.3)  # holds the commit lock (SQLite) all this time
        catalog.projector.catch_up()

    log = UsageLog(catalog.store, clock, after_commit=slow_catch_up, catch_up_interval=0.0)
    await log.log(usage(1))
    assert await anyio.to_thread.run_sync(catching_up.wait, 5.0)
    passes = 0

    async def tick() -> None:
        nonlocal passes
        while True:
            passes += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await anyio.sleep(0)
        before = passes
        await log.log(usage(2), alone=True)
        # Not lost, and the loop kept running while the commit waited for the lock.
        assert logged(catalog.store) == 2 and passes > before + 3
        group.cancel_scope.cancel()
    log.close()
    assert usage_rows(catalog) == 2
    catalog.close()


@pytest.mark.anyio
async def test_a_failed_commit_does_not_spoil_the_next(catalog: Catalog, clock: FakeClock) -> None:
    same = uuid.uuid4()
    ids = iter([same, same, uuid.uuid4(), uuid.uuid4()])
    log = UsageLog(catalog.store, clock, new_id=lambda: next(ids))
    await log.log(usage(1), alone=True)
    with pytest.raises(StorageError):
        await log.log(usage(2), alone=True)  # the same stream id again: refused whole
    await log.log(usage(3), alone=True)
    log.log_sync(usage(4))
    assert logged(catalog.store) == 3
    log.close()


def in_database_file(store: EventStore, tmp_path: Path) -> int:
    """Usage events in the SQLite database file alone, as if its WAL were not there: what a
    checkpoint has copied into it."""
    path = store.engine.url.database
    assert path is not None
    copy = tmp_path / "file-only.db"
    shutil.copyfile(path, copy)
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        query = "SELECT count(*) FROM freegin_events WHERE topic = ?"
        return int(conn.execute(query, (USAGE_LOGGED,)).fetchone()[0])


@pytest.mark.anyio
async def test_the_catch_up_thread_checkpoints_the_wal_not_the_commits(
    sqlite_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    catalog = Catalog.open(sqlite_url, clock=clock, seed=False)
    with catalog.store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    held = HeldConnection(catalog.store.engine, checkpoints=False)
    assert held.get().driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    held.close()  # back to the pool as it was lent
    with catalog.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert in_database_file(catalog.store, tmp_path) == 0
    log = UsageLog(catalog.store, clock, after_commit=catalog.projector.catch_up)
    for i in range(20):
        await log.log(usage(i), alone=True)
    log.close()
    # Far below SQLite's own threshold (1,000 pages): only the catch-up thread's checkpoint
    # copied the events from the WAL into the database file.
    assert in_database_file(catalog.store, tmp_path) == 20
    catalog.close()


def test_a_call_is_stored_exactly_as_the_mapper_stores_its_event(
    catalog: Catalog, clock: FakeClock
) -> None:
    """The usage log writes the stored form directly: byte for byte what the Application's
    mapper writes for the same event, so every reader of the log sees one format."""
    at = clock()
    log = UsageLog(catalog.store, lambda: at, new_id=lambda: uuid.UUID(int=7))
    full = CallUsage(
        provider="groq", workload="code", model="m", success=False, latency_ms=12,
        tokens=TokenUsage(prompt_tokens=3, completion_tokens=4, cached_tokens=1),
        input_cost_micros=5, output_cost_micros=6, error="boom", error_kind="server",
        retry_after_s=1.5, request_key="k", arm="a", ttft_ms=4, streamed=True,
        finish_reason="length", rate_limits=[{"window": "minute", "remaining": 3}],
    )  # fmt: skip
    for call in (usage(3), full):
        direct = log.stored(call)
        mapped = catalog.store.stored(usage_logged(id=uuid.UUID(int=7), at=at, usage=call))
        assert direct == mapped
        assert direct[2] == USAGE_LOGGED


def test_a_value_the_read_side_cannot_apply_is_refused_before_anything_is_queued(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock)
    with pytest.raises(ValueOutOfRangeError):
        log.log_sync(CallUsage(provider="groq", workload="chat", model="m", success=True,
                               latency_ms=-1))  # fmt: skip
    log.close()
    assert logged(catalog.store) == 0


@pytest.mark.anyio
async def test_an_event_made_elsewhere_is_recorded_durably_too(
    catalog: Catalog, clock: FakeClock
) -> None:
    log = UsageLog(catalog.store, clock)
    await log.record(usage_logged(id=uuid.uuid4(), at=clock(), usage=usage(1)))
    assert logged(catalog.store) == 1  # committed before record returned
    log.record_sync(usage_logged(id=uuid.uuid4(), at=clock(), usage=usage(2)))
    assert logged(catalog.store) == 2
    log.close()
