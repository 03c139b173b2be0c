"""The suggestions read model: `provider_model_suggestions`, one row per natural key.

A row's `id` is the log position of its first proposal, so replays give the same ids.
`production_ready`, `notes` and the answering model are folded into the metadata JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from freegin_ai.domain.topics import (
    ADOPTED,
    PENDING,
    REJECTED,
    SUGGESTION_ADOPTED,
    SUGGESTION_PROPOSED,
    SUGGESTION_REJECTED,
    SUGGESTION_REVISED,
    TRIAL,
    TRIAL_ENDED,
    TRIAL_STARTED,
)
from freegin_ai.projections import versions
from freegin_ai.projections.base import EventNotApplicable, Key, KeyedRows, Row, json_text
from freegin_ai.projections.envelope import SUGGESTION_TOPICS, Envelope
from freegin_ai.projections.tables import provider_model_suggestions


def suggestion_metadata(state: dict[str, Any]) -> dict[str, Any]:
    """The metadata a suggestion row shows: the LLM's metadata plus review details."""
    meta: dict[str, Any] = dict(state.get("metadata") or {})
    if state.get("production_ready") is not None:
        meta["production_ready"] = state["production_ready"]
    if state.get("notes"):
        meta["notes"] = state["notes"]
    provenance = state.get("provenance") or {}
    if provenance.get("provider"):
        answered = provenance["provider"]
        if provenance.get("model"):
            answered += "/" + provenance["model"]
        meta["suggested_by"] = answered
    return meta


class SuggestionProjection(KeyedRows):
    """Keeps `provider_model_suggestions`."""

    name: ClassVar[str] = "suggestions"
    version: ClassVar[int] = versions.SUGGESTIONS
    table = provider_model_suggestions
    key_columns = ("provider", "workload", "model")
    topics = SUGGESTION_TOPICS

    def key_of(self, event: Envelope) -> Key:
        s = event.state
        return (s["provider"], s["workload"], s["model"])

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        s = event.state
        key = self.key_of(event)
        if event.topic == SUGGESTION_PROPOSED:
            rows[key] = {
                "id": event.position,
                "provider": s["provider"],
                "workload": s["workload"],
                "model": s["model"],
                "status": PENDING,
                "rationale": s.get("rationale"),
                "metadata": json_text(suggestion_metadata(s)),
                "created_at": event.at,
                "updated_at": event.at,
            }
            return
        row = rows.get(key)
        if row is None:
            raise EventNotApplicable(f"{event.kind}: no suggestion {'/'.join(key)} to change")
        row["updated_at"] = event.at
        if event.topic == SUGGESTION_REVISED:
            row["rationale"] = s.get("rationale")
            row["metadata"] = json_text(suggestion_metadata(s))
        elif event.topic == SUGGESTION_ADOPTED:
            row["status"] = ADOPTED
        elif event.topic == SUGGESTION_REJECTED:
            row["status"] = REJECTED
        elif event.topic == TRIAL_STARTED:
            row["status"] = TRIAL
            row["metadata"] = _with_meta(row["metadata"], trial_percent=s["percent"])
        elif event.topic == TRIAL_ENDED:
            row["status"] = s["outcome"]
            row["metadata"] = _with_meta(row["metadata"], trial_percent=None)


def _with_meta(text: str | None, **changes: Any) -> str | None:
    """Metadata JSON with keys set (None removes a key)."""
    meta: dict[str, Any] = msgspec.json.decode(text) if text else {}
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return json_text(meta)
