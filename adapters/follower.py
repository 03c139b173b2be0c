"""LogFollower: keeps the read tables within a second of the log in a long-running process.

On PostgreSQL every append sends NOTIFY on the events table's channel at commit (the library
does it for its own appends, EventStore.append_new_streams for usage). The follower LISTENs on
its own connection in a background thread and catches the read tables up after each burst of
notifications, and at least every `poll_seconds` in case one was missed (a reconnect, say).
So whatever any process appends, even one killed before it caught up itself, reaches the read
tables here well within a second.

SQLite has no notifications: there each writer catches up after its own commits (UsageLog,
catalog commands), and the follower does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection

from freegin_ai.adapters.quick_read import EVENTS_TABLE
from freegin_ai.adapters.store import USAGE_NOTICE, EventStore

_log = logging.getLogger(__name__)


class LogFollower:
    """Catches the read tables up whenever the log moves (PostgreSQL LISTEN/NOTIFY)."""

    def __init__(
        self,
        store: EventStore,
        catch_up: Callable[[], object],
        *,
        settle_seconds: float = 0.05,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        self.catch_up = catch_up
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Catch-ups run, for tests and benchmarks.
        self.rounds = 0
        #: Appends heard that were not usage (catalog commands, other versions' appends),
        #: counted as each is heard: a router compares it before every decision (ADR 0021).
        self.catalog_notices = 0

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> LogFollower:
        """Start listening (PostgreSQL only); returns self."""
        if self.store.dialect == "postgresql" and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="freegin-log-follower", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening; returns within `poll_seconds`."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.store.engine.connect() as conn:
                    self._listen(conn)
            except Exception as error:  # the database went away: try again shortly
                _log.warning("following the log failed: %s", error)
                self._stop.wait(1.0)

    def _listen(self, conn: Connection) -> None:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        raw: Any = conn.connection.driver_connection
        raw.execute(f"LISTEN {EVENTS_TABLE}")
        last = time.monotonic()
        while not self._stop.is_set():
            heard = self._heard(raw.notifies(timeout=self.poll_seconds, stop_after=1))
            if self._stop.is_set():
                return
            if heard:
                # Let a burst of commits gather, and take the notifications it queued.
                self._stop.wait(self.settle_seconds)
                self._heard(raw.notifies(timeout=0))
            if heard or time.monotonic() - last >= self.poll_seconds:
                self._catch_up()
                last = time.monotonic()

    def _heard(self, notices: Iterable[Any]) -> bool:
        """Count the notifications that were not usage; whether there was any."""
        heard = False
        for notice in notices:
            heard = True
            if notice.payload != USAGE_NOTICE:
                self.catalog_notices += 1
        return heard

    def _catch_up(self) -> None:
        try:
            self.catch_up()
            self.rounds += 1
        except Exception as error:  # the next notification or poll tries again
            _log.warning("catching the read tables up failed: %s", error)
