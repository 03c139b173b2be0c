"""UsageLog: group commit of UsageLogged events, awaited before an answer is handed back.

Every caller hands over its call's usage and waits until its event is committed: `await
usage.log(call_usage)` from async code, `usage.log_sync(call_usage)` from plain code (an
event already made, `domain.usage.usage_logged`, goes in with `record` / `record_sync`). The
event is made in its stored form at once (`domain.usage.usage_state`, encoded as the
Application's mapper encodes it): no event object and no mapper on a path every call takes.
Events wait in one queue; whoever
commits takes everything queued and appends it with one multi-row insert in one transaction,
then wakes every waiter of that batch. On an event loop the commit runs once per loop pass,
as a callback scheduled by the first caller of that pass: every call that reached its commit
in the same pass shares it, a lone call pays for one small commit, and no thread hand-off
(which costs a GIL switch interval each way under load) sits on the answer's path. A caller
that knows no other call of its own is under way (`alone`: the router counts its calls) has
nobody to wait for: it commits at once, sparing the answer two loop passes. On SQLite every
commit goes through one kept connection (no pool checkout per commit; ADR 0021). Nothing is
held in memory after its caller was answered, so a process killed at any moment loses no
usage of an answered call (ADR 0010).

A catch-up thread brings the read tables up to date after commits (`after_commit`, usually
the catalog's catch-up), at most every `catch_up_interval` seconds and once more when the log
is closed: the tables stay well within a second of the log and each catch-up's cost is shared
by every event since the previous one. On SQLite it holds the commit lock while it writes, so
the two never meet in SQLite's busy handler; an event loop that finds the lock taken retries
a moment later instead of blocking.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import anyio

from freegin_ai.adapters.errors import StorageError
from freegin_ai.adapters.store import EventStore, HeldConnection, StoredRow
from freegin_ai.domain.codec import encode_state
from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.domain.usage import CallUsage, UsageRecord, usage_state

_log = logging.getLogger(__name__)

UsageEvent = UsageRecord.UsageLogged

#: How a waiter learns the outcome: an asyncio future (with its loop), or a plain future.
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"] | concurrent.futures.Future[None]

#: How long an event loop waits before trying again when the commit lock is taken.
_RETRY_SECONDS = 0.0005


def time_ordered_id() -> UUID:
    """A UUID version 7 (RFC 9562): the time in milliseconds, then 74 random bits.

    A usage event is a stream of its own, keyed by this id: ids made one after another sort
    together, so the store's index takes them at its end instead of anywhere. The random
    bits come from `random` (seeded by the operating system, reseeded in a forked child),
    not from a system call per id; they keep ids apart, they guard no secret.
    """
    ms = time.time_ns() // 1_000_000 & _MS_MASK
    bits = random.getrandbits(74)
    return UUID(int=ms << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0b10 << 62 | bits & _LOW_MASK)


_MS_MASK = (1 << 48) - 1
_LOW_MASK = (1 << 62) - 1


class UsageLogClosedError(StorageError):
    """Raised when usage is recorded after the log was closed."""


class UsageLog:
    """Commits usage events in groups; every caller waits for its own event's commit."""

    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], datetime],
        *,
        new_id: Callable[[], UUID] | None = None,
        after_commit: Callable[[], object] | None = None,
        catch_up_interval: float = 0.25,
        fsync: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.new_id = new_id or time_ordered_id
        self.after_commit = after_commit
        self.catch_up_interval = catch_up_interval
        #: Wait for the disk on every commit (survives power loss, costs a flush each).
        self.fsync = fsync
        self._queue: list[tuple[StoredRow, _Waiter]] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._scheduled: set[asyncio.AbstractEventLoop] = set()
        #: Loops that have not turned since a commit made at once on them (each loop's own
        #: thread adds and discards its entry).
        self._unturned: set[asyncio.AbstractEventLoop] = set()
        self._closing = False
        self._closed = threading.Event()  # cuts the catch-up thread's wait short
        self._behind = threading.Event()  # committed events the read tables have not seen
        self._catcher: threading.Thread | None = None
        # SQLite commits go through one kept connection (no pool round trip per commit);
        # PostgreSQL's come from the pool, which checks a connection before lending it.
        # With a catch-up thread, that thread checkpoints the WAL after each round, so the
        # commits answers wait for never do.
        sqlite = store.dialect == "sqlite"
        self._held = (
            HeldConnection(store.engine, checkpoints=after_commit is None) if sqlite else None
        )
        #: Figures for benchmarks and tests: commits made and events committed.
        self.commits = 0
        self.committed = 0
        # At a normal exit, leave the read tables caught up without keeping the log alive.
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            log = ref()
            if log is not None:
                log.close()

        self._atexit = close_at_exit
        atexit.register(close_at_exit)

    # -- recording --------------------------------------------------------------------

    def stored(self, usage: CallUsage) -> StoredRow:
        """The UsageLogged event of one call in its stored form (checked as the event is)."""
        state = usage_state(at=self.clock(), usage=usage)
        return (self.new_id(), 1, USAGE_LOGGED, encode_state(state))

    async def log(self, usage: CallUsage, *, alone: bool = False) -> None:
        """Commit one call's event; returns once it is durable (`alone` as for `commit`)."""
        await self.commit(self.stored(usage), alone=alone)

    def log_sync(self, usage: CallUsage) -> None:
        """`log` for plain (non-async) callers."""
        self.commit_sync(self.stored(usage))

    async def record(self, event: UsageEvent, *, alone: bool = False) -> None:
        """Commit an event already made (`alone` as for `commit`)."""
        await self.commit(self.store.stored(event), alone=alone)

    def record_sync(self, event: UsageEvent) -> None:
        """`record` for plain (non-async) callers."""
        self.commit_sync(self.store.stored(event))

    async def commit(self, row: StoredRow, *, alone: bool = False) -> None:
        """Commit one stored event (with whatever else is waiting); returns once it is durable.

        `alone` says that no other call of this caller's is under way, so nobody could join
        this commit: it is made at once, before the loop's next pass (unless others are
        already waiting, or the commit lock is taken); the caller goes on at once, unless the
        loop has not turned since the last such commit (then after one pass).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async backend: wait in a worker thread
            await anyio.to_thread.run_sync(self.commit_sync, row)
            return
        future: asyncio.Future[None] = loop.create_future()
        with self._queue_lock:
            self._check_open()
            now = alone and not self._queue
            self._queue.append((row, (loop, future)))
        if now and self._commit_lock.acquire(blocking=False):
            try:
                self._commit_queued()
            finally:
                self._commit_lock.release()
            # Committed. A caller whose calls never wait for I/O (an instant provider) would
            # never let the loop run others: when the loop has not turned since the last
            # commit made at once on it, let it turn now.
            if loop in self._unturned:
                await asyncio.sleep(0)
            else:
                self._unturned.add(loop)
                loop.call_soon(self._unturned.discard, loop)
        else:
            self._schedule(loop)
        # A caller cancelled meanwhile leaves its event queued: it is committed all the same.
        await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure a commit runs on the loop's next pass (one per loop and pass)."""
        with self._queue_lock:
            if loop in self._scheduled:
                return
            self._scheduled.add(loop)
        loop.call_soon(self._commit_on_loop, loop)

    def commit_sync(self, row: StoredRow) -> None:
        """Commit one stored event, blocking the calling thread until it is durable."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._queue_lock:
            self._check_open()
            self._queue.append((row, future))
        with self._commit_lock:
            self._commit_queued()
        future.result()

    def close(self) -> None:
        """Commit anything still queued, catch the read tables up, and stop the catch-up thread."""
        with self._queue_lock:
            self._closing = True
            catcher = self._catcher
        with self._commit_lock:
            self._commit_queued()
            if self._held is not None:
                self._held.close()
        self._closed.set()  # after the last commit: the catch-up thread's last round sees it
        self._behind.set()
        if catcher is not None and catcher is not threading.current_thread():
            catcher.join()
        atexit.unregister(self._atexit)

    # -- committing -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise UsageLogClosedError("the usage log is closed")

    def _commit_on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._commit_lock.acquire(blocking=False):
            loop.call_later(_RETRY_SECONDS, self._commit_on_loop, loop)
            return
        try:
            with self._queue_lock:
                self._scheduled.discard(loop)
            self._commit_queued()
        finally:
            self._commit_lock.release()

    def _commit_queued(self) -> None:
        """Commit everything queued (the caller holds the commit lock) and wake its waiters."""
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        error: BaseException | None = None
        try:
            self.store.append_stored([row for row, _ in batch], fsync=self.fsync, held=self._held)
        except BaseException as exc:  # every waiter must hear about it, whatever it is
            error = exc
        else:
            self.commits += 1
            self.committed += len(batch)
            if self.after_commit is not None:
                self._start_catcher()
                self._behind.set()
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        elsewhere: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, waiter in batch:
            if isinstance(waiter, concurrent.futures.Future):
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
            elif waiter[0] is here:
                _settle([waiter[1]], error)
            else:
                elsewhere.setdefault(waiter[0], []).append(waiter[1])
        for loop, futures in elsewhere.items():
            # A loop closed meanwhile has nobody waiting on it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures, error)

    # -- catching the read tables up ---------------------------------------------------

    def _start_catcher(self) -> None:
        if self._catcher is None:
            self._catcher = threading.Thread(
                target=self._catch_up_loop, name="freegin-catch-up", daemon=True
            )
            self._catcher.start()

    def _catch_up_loop(self) -> None:
        assert self.after_commit is not None
        sqlite = self.store.dialect == "sqlite"
        while True:
            if not self._closed.is_set():
                self._behind.wait()
                self._closed.wait(self.catch_up_interval)  # let events gather; bounds the lag
            final = self._closed.is_set()
            self._behind.clear()
            try:
                if sqlite:
                    with self._commit_lock:
                        self.after_commit()
                else:
                    self.after_commit()
            except Exception as error:  # the events are safe; the next catch-up tries again
                self._behind.set()
                # At the last round (often at exit) the next reader catches up instead.
                level = logging.INFO if final else logging.WARNING
                _log.log(level, "catching the read tables up failed: %s", error)
            if sqlite:
                try:  # outside the commit lock: a passive checkpoint waits for nobody
                    self.store.checkpoint()
                except Exception as error:  # the next round tries again
                    _log.info("checkpointing the WAL failed: %s", error)
            if final:
                return


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class DiscardingUsageLog(UsageLog):
    """A usage log that drops every event: a dry run must leave the database as it was."""

    async def commit(self, row: StoredRow, *, alone: bool = False) -> None:
        """Drop the event."""

    def commit_sync(self, row: StoredRow) -> None:
        """Drop the event."""
