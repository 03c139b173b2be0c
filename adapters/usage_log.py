"""UsageLog: buffers UsageLogged events and appends them in bulk.

Usage is logged on every provider call, so events are appended in batches (one insert per
batch), at the latest when the buffer is full, when `flush()` is called, when the log is
closed, or when the process exits normally (atexit). Each event is its own stream.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.usage import CallUsage, UsageRecord, usage_logged


class UsageLog:
    """A buffered, thread-safe appender of usage events."""

    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], datetime],
        *,
        new_id: Callable[[], UUID] = uuid4,
        max_buffer: int = 1_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.new_id = new_id
        self.max_buffer = max_buffer
        self._buffer: list[UsageRecord.UsageLogged] = []
        self._lock = threading.Lock()
        # Flush on a normal exit without keeping the log alive just for that.
        ref = weakref.ref(self)
        self._atexit = lambda: (log := ref()) is not None and log.flush()
        atexit.register(self._atexit)

    def log(self, usage: CallUsage) -> None:
        """Buffer one usage event."""
        event = usage_logged(id=self.new_id(), at=self.clock(), usage=usage)
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Append everything buffered in one transaction; returns how many events."""
        with self._lock:
            events, self._buffer = self._buffer, []
        if events:
            try:
                self.store.append_new_streams(events)
            except BaseException:
                with self._lock:
                    self._buffer[:0] = events  # keep them for the next flush
                raise
        return len(events)

    def close(self) -> None:
        self.flush()
        atexit.unregister(self._atexit)


class DiscardingUsageLog(UsageLog):
    """A usage log that drops every event: a dry run must leave the database as it was."""

    def log(self, usage: CallUsage) -> None:
        """Drop the event."""

    def flush(self) -> int:
        """Nothing is ever buffered, so nothing is appended (not even at exit)."""
        return 0
