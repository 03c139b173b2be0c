"""Printing JSON for scripts and one-line errors for people."""

from __future__ import annotations

import sys
from typing import Any


def emit_json(value: Any) -> None:
    """Print a value (dataclasses, lists, dicts) as indented JSON on stdout."""
    import msgspec  # only commands that print JSON pay for it

    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def fail(message: str, code: int = 2) -> int:
    """Print `error: message` on stderr and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def warn_exposed(store: Any) -> None:
    """Warn on stderr when the credentials file can be read by group or others."""
    exposed = store.exposure()
    if exposed is not None:
        print(f"warning: {exposed}", file=sys.stderr)
