"""Reading the earlier tool's values: timestamps, whole numbers, text, metadata JSON, and the
stable ids of imported usage streams. A value that cannot be read raises BadRow, whose
message is the reason the row is skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import msgspec

from freegin_ai.domain.names import STREAM_NAMESPACE


class BadRow(Exception):
    """Raised while reading a source row that cannot be imported; the message is the reason."""


def read_time(value: object, column: str) -> datetime:
    """An RFC 3339 or SQLite (`YYYY-MM-DD HH:MM:SS`) timestamp as an aware UTC datetime."""
    if not isinstance(value, str):
        raise BadRow(f"{column} is not a timestamp: {value!r}")
    try:
        stamp = datetime.fromisoformat(value.strip())
        # SQLite's CURRENT_TIMESTAMP is UTC without saying so.
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRow(f"{column} is not a timestamp: {value[:40]!r}") from None


def read_whole(value: object, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRow(f"{column} is not a whole number: {value!r}")
    return value


def read_optional_whole(value: object, column: str) -> int | None:
    return None if value is None else read_whole(value, column)


def read_text(value: object, column: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRow(f"{column} is not text: {value!r}")
    return value


def read_metadata(value: object) -> dict[str, Any] | None:
    """The metadata JSON as a dict; text that is not a JSON object is kept under one key."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRow(f"metadata is not text: {value!r}")
    try:
        decoded = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return {"legacy_metadata": value}
    if decoded is None:
        return None
    return decoded if isinstance(decoded, dict) else {"legacy_metadata": value}


def suggestion_details(rationale: str | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A suggestion's fields; the earlier tool kept production_ready and notes in metadata."""
    meta = dict(metadata or {})
    ready = meta.pop("production_ready") if isinstance(meta.get("production_ready"), bool) else None
    notes = meta.get("notes")
    if isinstance(notes, str) and notes:
        meta.pop("notes")
    else:
        notes = None
    return {
        "rationale": rationale,
        "metadata": meta or None,
        "production_ready": ready,
        "notes": notes,
    }


def usage_stream_id(
    row_id: object,
    provider: object,
    created: object,
    success: object,
    latency: object,
    error: object,
) -> UUID:
    """A usage stream id from the source row itself, so any copy of the file imports the same.

    Only columns every version of the table has take part: a file before and after the
    earlier tool added its `model` column gives the same ids.
    """
    parts = ("legacy-usage", row_id, provider, created, success, latency, error or "")
    return uuid5(STREAM_NAMESPACE, "\x1f".join(str(p) for p in parts))
