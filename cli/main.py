"""The `freegin-ai` console script."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return 0
