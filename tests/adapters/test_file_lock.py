"""exclusive_lock: one holder at a time, the file made 0600, a clear error when it cannot open."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest

from freegin_ai.adapters.file_lock import exclusive_lock


class LockFailedError(Exception):
    """Raised by the test's `failed` callback."""


def failed(error: OSError) -> LockFailedError:
    return LockFailedError(f"cannot lock: {error.strerror}")


def test_a_second_holder_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    order: list[str] = []

    def second() -> None:
        with exclusive_lock(path, failed):
            order.append("second")

    with exclusive_lock(path, failed):
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.3)  # long enough for the second to reach the lock, and wait there
        order.append("first")
    waiting.join(5)
    assert order == ["first", "second"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_lock_file_that_cannot_be_opened_raises_the_callers_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "x.lock"
    with (
        pytest.raises(LockFailedError, match="cannot lock: No such file or directory"),
        exclusive_lock(missing, failed),
    ):
        pass


def test_the_lock_is_free_again_after_an_error_inside(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError), exclusive_lock(path, failed):
        raise RuntimeError("boom")
    started = time.monotonic()
    with exclusive_lock(path, failed):
        pass
    assert time.monotonic() - started < 1
