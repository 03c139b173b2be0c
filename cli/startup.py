"""How a command's process starts and, for the few that keep running, settles (ADR 0023).

A command is a short process that imports a lot (SQLAlchemy, eventsourcing, the HTTP stack)
and then does a little work; its imports are most of its cost, and eight commands at once
share two cores (issue 11). Two things cost much and buy nothing there:

- **httpx's command-line client.** `import httpx` also imports `httpx._main`, its `httpx`
  console command, which loads click, rich and pygments whenever they are installed (pygments
  and rich come with pytest and import-linter in a development environment, click with
  uvicorn everywhere): 60-100 ms of a command's start here. Nothing of ours uses that client,
  so the console script marks the module as not importable before httpx is first imported,
  exactly as if its optional `cli` extra were missing (httpx then keeps a stub `main` that
  says so).
- **The cyclic collector while modules load.** Imports create about a hundred thousand
  long-lived objects (functions, classes, dicts) and no garbage worth collecting; with the
  usual first-generation threshold (700) the collector runs thousands of times and walks the
  whole heap again at every quarter it grows. A command starts with a threshold of 300,000:
  everything a command loads is 60,000-110,000 tracked objects, so a one-shot command never
  collects (each collection of the young generation cost it 6-12 ms, more with eight at once
  sharing the caches; ADR 0025), while a long one still collects every 300,000 objects it
  keeps.

Commands that keep running (`serve`, `chat`) call `settle()` once started: everything loaded
so far is frozen out of the collector's sight (`gc.freeze`) and the usual thresholds return.
"""

from __future__ import annotations

import gc
import sys

#: The collector's thresholds as the interpreter set them.
_USUAL = gc.get_threshold()

#: The first generation's threshold while a command runs (ADR 0023, ADR 0025).
START_THRESHOLD = 300_000


def lean() -> None:
    """Start a command's process lean (see the module's doc); call before anything is imported."""
    # None in sys.modules makes `import httpx._main` raise ImportError, which httpx expects.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    gc.set_threshold(START_THRESHOLD, *_USUAL[1:])


def settle() -> None:
    """For a command that keeps running: freeze what start-up loaded, restore the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_USUAL)
