"""exclusive_lock: one process at a time, through an advisory lock on a file.

The lock file is created (mode 0600) beside what it guards and never removed: removing it
would let a process lock a fresh file while another still holds the old one. The kernel
releases the lock when the descriptor is closed, so a process that dies, even by `kill -9`,
never leaves it held. Used by the credential store (a read-change-write of
`credentials.json`) and by the event store (creating or rebuilding a SQLite database's
tables).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path | str, failed: Callable[[OSError], Exception]) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing), waiting for other holders.

    When the lock file cannot be opened, the error `failed` makes of the OSError is raised
    instead (each caller names what it could not lock).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise failed(error) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
