"""CLI errors: what the command line itself refuses (exit 2), before any layer is called.

CliError
└── TimeFormatError

Errors of the other layers have their own trees: `freegin_ai.domain.errors` (a broken rule,
exit 2) and `freegin_ai.adapters.errors` (configuration exits 2, anything else 1).
"""

from __future__ import annotations


class CliError(Exception):
    """Raised when an argument cannot be read; the command exits 2 with a one-line error."""


class TimeFormatError(CliError, ValueError):
    """Raised when a time or age cannot be read."""
