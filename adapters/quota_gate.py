"""QuotaGate: an atomic reservation in the database before a request is sent.

Usage events are appended after a call, so two processes reading the same ledger could both
send the last request of a minute. Before sending to a model with a known request limit, the
router takes a slot with one conditional UPDATE on `quota_reservations` (one row per
provider, bucket and period): it counts the request only if the row's window is current and
below the limit, or starts the row over when the window has moved on. The database decides,
so every process on it shares one count (ADR 0014).

This table is coordination, not a projection: it is not rebuilt from the log (the ledger is),
and a lost row only forgets reservations of windows that are over.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

from freegin_ai.adapters.errors import StorageError

#: Stands for "no limit" in the conditional UPDATE (the row still counts).
UNLIMITED = 2**62

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


@dataclass(frozen=True, slots=True)
class Slot:
    """One window to take a request from: its period, its start key and its request limit."""

    period: str
    window_start: str
    limit: int | None


class QuotaGate:
    """Takes request slots atomically in the shared database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = threading.Lock()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sqlite = engine.dialect.name == "sqlite"
        self._update = (
            "UPDATE quota_reservations SET "
            f"requests = CASE WHEN window_start = {mark} THEN requests + 1 ELSE 1 END, "
            f"window_start = {mark} "
            f"WHERE provider = {mark} AND bucket = {mark} AND period = {mark} "
            f"AND (window_start < {mark} OR (window_start = {mark} AND requests < {mark}))"
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
        self.ensure_table()
        raw: Any = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                if self._sqlite:
                    # Take the write lock first: two readers upgrading at once would deadlock.
                    cursor.execute("BEGIN IMMEDIATE")
                for slot in slots:
                    if not self._take(cursor, provider, bucket, slot):
                        raw.rollback()
                        return slot.period
                raw.commit()
                return None
            finally:
                cursor.close()
        except Exception as error:
            # The connection may be gone; the pool then discards it.
            with contextlib.suppress(Exception):
                raw.rollback()
            raise StorageError(f"cannot reserve quota: {type(error).__name__}: {error}") from None
        finally:
            raw.close()

    def _take(self, cursor: Any, provider: str, bucket: str, slot: Slot) -> bool:
        limit = UNLIMITED if slot.limit is None else slot.limit
        start = slot.window_start
        params = (start, start, provider, bucket, slot.period, start, start, limit)
        cursor.execute(self._update, params)
        if cursor.rowcount == 1:
            return True
        cursor.execute(self._insert, (provider, bucket, slot.period, start))
        if cursor.rowcount != 1:
            return False  # the row exists: this window is full (or a later one started)
        cursor.execute(self._update, params)
        return bool(cursor.rowcount == 1)
