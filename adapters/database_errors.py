"""One description of a database error for people: its first line, without driver noise."""

from __future__ import annotations


def describe(error: BaseException) -> str:
    """A one-line description of a database error (the driver's own message when there is one)."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
