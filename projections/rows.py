"""Row types of the roster and suggestion read tables, free of SQLAlchemy so that the quick
SQLite reader (adapters.quick_read) can build them without loading it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROSTER_COLUMNS = (
    "provider",
    "workload",
    "model",
    "status",
    "priority",
    "rationale",
    "metadata",
    "created_at",
    "updated_at",
)
SUGGESTION_COLUMNS = ("id", *ROSTER_COLUMNS[:3], "status", "rationale", "metadata",
                      "created_at", "updated_at")  # fmt: skip


@dataclass(frozen=True, slots=True)
class RosterRow:
    """A row of `provider_models`."""

    provider: str
    workload: str
    model: str
    status: str
    priority: int
    rationale: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class SuggestionRow:
    """A row of `provider_model_suggestions`."""

    id: int
    provider: str
    workload: str
    model: str
    status: str
    rationale: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


def metadata_of(text: str | None) -> dict[str, Any]:
    """The metadata column as a dict (NULL is empty)."""
    if not text:
        return {}
    value: dict[str, Any] = json.loads(text)
    return value


def roster_row(row: Mapping[str, Any]) -> RosterRow:
    """A RosterRow from a table row (or a folded row)."""
    return RosterRow(
        provider=row["provider"],
        workload=row["workload"],
        model=row["model"],
        status=row["status"],
        priority=int(row["priority"]),
        rationale=row["rationale"],
        metadata=metadata_of(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def suggestion_row(row: Mapping[str, Any]) -> SuggestionRow:
    """A SuggestionRow from a table row (or a folded row)."""
    return SuggestionRow(
        id=int(row["id"]),
        provider=row["provider"],
        workload=row["workload"],
        model=row["model"],
        status=row["status"],
        rationale=row["rationale"],
        metadata=metadata_of(row["metadata"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
