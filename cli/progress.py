"""A progress bar on stderr for long work (replays, rebuilds, refreshes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Call with (done, total); redraws in place on a terminal, prints every 10% otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_step = -1
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        if self.tty:
            now = time.monotonic()
            if fraction < 1.0 and now - self._last_draw < 0.05:
                return
            self._last_draw = now
            filled = int(self.width * fraction)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} ({done}/{total})")
            self._drawn = True
        else:
            step = int(fraction * 10)
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(f"{self.label}: {fraction:.0%} ({done}/{total})\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line the bar was drawn on."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
