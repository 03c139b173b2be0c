"""QuotaGate: an atomic reservation in the database before a request is sent.

Usage events are appended after a call, so two processes reading the same ledger could both
send the last request of a minute. Before sending to a model with a known request limit, the
router takes a slot with one conditional UPDATE on `quota_reservations` (one row per
provider, bucket and period): it counts the request only if the row's window is current and
below the limit, or starts the row over when the window has moved on. The database decides,
so every process on it shares one count (ADR 0014).

This table is coordination, not a projection: it is not rebuilt from the log (the ledger is),
and a lost row only forgets reservations of windows that are over.

Busy processes lease slots in blocks (ADR 0018): a process takes one slot at a time until
it uses a block up quickly, then twice as many (at most 16, and at most a tenth of the
window's limit), so a busy router writes to the table once per block instead of once per
request. Slots leased and not used are given back when the window moves on or the router
closes; a process killed with a lease leaves them counted until the window ends, which errs
on the side of sending less, never more. A window that refused a slot is remembered as
full until it ends, so a spent model costs no write either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    inspect,
)

from freegin_ai.adapters.store import driver_transaction

#: Stands for "no limit" in the conditional UPDATE (the row still counts).
UNLIMITED = 2**62

#: The most slots one lease takes, and the share of a window's limit it may hold at most.
MAX_LEASE = 16
LEASE_SHARE = 10
#: A lease used up within this many seconds doubles the next one; a slower one halves it.
FAST_SECONDS = 0.25

_metadata = MetaData()

quota_reservations = Table(
    "quota_reservations",
    _metadata,
    Column("provider", Text, nullable=False),
    Column("bucket", Text, nullable=False),
    Column("period", Text, nullable=False),  # minute or day
    Column("window_start", Text, nullable=False),  # YYYY-MM-DDTHH:MM:SSZ
    Column("requests", BigInteger, nullable=False),
    PrimaryKeyConstraint("provider", "bucket", "period"),
)


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Slot:
    """One window to take a request from: its period, its start key and its request limit."""

    period: str
    window_start: str
    limit: int | None


@dataclass(slots=True)
class _Lease:
    """Slots taken from the database and not used yet, for one set of windows."""

    windows: tuple[tuple[str, str], ...]  # (period, window start) of every slot
    left: int
    size: int
    taken_at: float


class QuotaGate:
    """Takes request slots atomically in the shared database."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self._ready = False
        self._lock = threading.Lock()
        self._lease_lock = threading.Lock()
        self._leases: dict[tuple[str, str], _Lease] = {}
        #: (provider, bucket, period) → the window start that refused a slot.
        self._full: dict[tuple[str, str, str], str] = {}
        #: Figures for benchmarks and tests: database round trips made.
        self.writes = 0
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sqlite = engine.dialect.name == "sqlite"
        self._update = (
            "UPDATE quota_reservations SET "
            f"requests = CASE WHEN window_start = {mark} THEN requests + {mark} ELSE {mark} END, "
            f"window_start = {mark} "
            f"WHERE provider = {mark} AND bucket = {mark} AND period = {mark} "
            f"AND (window_start < {mark} OR (window_start = {mark} AND requests <= {mark}))"
        )
        self._release = (
            f"UPDATE quota_reservations SET requests = requests - {mark} "
            f"WHERE provider = {mark} AND bucket = {mark} AND period = {mark} "
            f"AND window_start = {mark} AND requests >= {mark}"
        )
        self._insert = (
            "INSERT INTO quota_reservations (provider, bucket, period, window_start, requests) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}, 0) "
            "ON CONFLICT (provider, bucket, period) DO NOTHING"
        )

    def ensure_table(self) -> None:
        """Create the table if this database has none (once per process)."""
        with self._lock:
            if self._ready:
                return
            try:
                _metadata.create_all(self.engine, checkfirst=True)
            except Exception:
                # Another process created it between the check and the create (PostgreSQL
                # then fails on its type name): fine if the table is there now.
                if not inspect(self.engine).has_table(quota_reservations.name):
                    raise
            self._ready = True

    def reserve(self, provider: str, bucket: str, slots: Sequence[Slot]) -> str | None:
        """Take one request from every slot, all or nothing; None when taken, else the period
        whose limit is reached."""
        if not slots:
            return None
        for slot in slots:
            if slot.limit is not None and slot.limit <= 0:
                return slot.period
        key = (provider, bucket)
        windows = tuple((slot.period, slot.window_start) for slot in slots)
        with self._lease_lock:
            for period, start in windows:
                if self._full.get((provider, bucket, period)) == start:
                    return period
            lease = self._leases.get(key)
            if lease is not None and lease.windows == windows and lease.left > 0:
                lease.left -= 1
                return None
            size = self._next_size(lease, windows, slots)
            refused, granted = self._lease(provider, bucket, slots, size, lease)
            if refused is not None:
                start = dict(windows)[refused]
                self._full[(provider, bucket, refused)] = start
                self._leases.pop(key, None)
                return refused
            self._leases[key] = _Lease(windows, granted - 1, granted, self.clock())
            return None

    def release(self) -> None:
        """Give back every slot leased and not used (when a router closes)."""
        with self._lease_lock:
            leases, self._leases = self._leases, {}
            unused = [(key, lease) for key, lease in leases.items() if lease.left > 0]
            if not unused:
                return

            def give_back(cursor: Any) -> None:
                for (provider, bucket), lease in unused:
                    self._give_back(cursor, provider, bucket, lease)

            self._transaction(give_back)

    def _next_size(
        self, lease: _Lease | None, windows: tuple[tuple[str, str], ...], slots: Sequence[Slot]
    ) -> int:
        """One slot for a process that asks now and then; a doubling block for a busy one."""
        if lease is None:
            size = 1
        elif self.clock() - lease.taken_at < FAST_SECONDS:
            size = lease.size * 2
        else:
            size = max(1, lease.size // 2)
        cap = min(
            (slot.limit // LEASE_SHARE for slot in slots if slot.limit is not None),
            default=MAX_LEASE,
        )
        return max(1, min(size, MAX_LEASE, cap))

    def _lease(
        self,
        provider: str,
        bucket: str,
        slots: Sequence[Slot],
        size: int,
        previous: _Lease | None,
    ) -> tuple[str | None, int]:
        """Take `size` slots from every window (or one, when fewer are left), giving back what
        the previous lease did not use; (the full period, 0) when not even one is left."""

        def take(cursor: Any) -> tuple[str | None, int]:
            if previous is not None and previous.left > 0:
                self._give_back(cursor, provider, bucket, previous)
            if size > 1:
                cursor.execute("SAVEPOINT lease")
            for count in (size, 1) if size > 1 else (1,):
                refused = None
                for slot in slots:
                    if not self._take(cursor, provider, bucket, slot, count):
                        refused = slot.period
                        break
                if refused is None:
                    return None, count
                if count == 1:
                    return refused, 0
                # The larger block does not fit: undo what this attempt took, try one slot.
                cursor.execute("ROLLBACK TO SAVEPOINT lease")
            return refused, 0

        return self._transaction(take)

    def _transaction(self, work: Callable[[Any], _T]) -> _T:
        """Run `work(cursor)` in one write transaction (taken at once on SQLite)."""
        self.ensure_table()
        self.writes += 1
        with driver_transaction(self.engine, "cannot reserve quota") as cursor:
            if self._sqlite:
                # Take the write lock first: two readers upgrading at once would deadlock.
                cursor.execute("BEGIN IMMEDIATE")
            return work(cursor)

    def _give_back(self, cursor: Any, provider: str, bucket: str, lease: _Lease) -> None:
        for period, start in lease.windows:
            cursor.execute(self._release, (lease.left, provider, bucket, period, start, lease.left))
        lease.left = 0

    def _take(self, cursor: Any, provider: str, bucket: str, slot: Slot, count: int) -> bool:
        limit = UNLIMITED if slot.limit is None else slot.limit
        start = slot.window_start
        if count > limit:
            return False
        params = (start, count, count, start, provider, bucket, slot.period, start, start,
                  limit - count)  # fmt: skip
        cursor.execute(self._update, params)
        if cursor.rowcount == 1:
            return True
        cursor.execute(self._insert, (provider, bucket, slot.period, start))
        if cursor.rowcount != 1:
            return False  # the row exists: this window is full (or a later one started)
        cursor.execute(self._update, params)
        return bool(cursor.rowcount == 1)
