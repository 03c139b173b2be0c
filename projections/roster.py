"""The roster read model: `provider_models`, one row per (provider, workload, model)."""

from __future__ import annotations

from typing import ClassVar

from freegin_ai.domain.topics import (
    ACTIVE,
    MODEL_ADOPTED,
    MODEL_PRIORITY_CHANGED,
    MODEL_REINSTATED,
    MODEL_RETIRED,
    RETIRED,
)
from freegin_ai.projections import versions
from freegin_ai.projections.base import EventNotApplicable, Key, KeyedRows, Row, json_text
from freegin_ai.projections.envelope import ROSTER_TOPICS, Envelope
from freegin_ai.projections.tables import provider_models


class RosterProjection(KeyedRows):
    """Keeps `provider_models`."""

    name: ClassVar[str] = "roster"
    version: ClassVar[int] = versions.ROSTER
    table = provider_models
    key_columns = ("provider", "workload", "model")
    topics = ROSTER_TOPICS

    def key_of(self, event: Envelope) -> Key:
        s = event.state
        return (s["provider"], s["workload"], s["model"])

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        s = event.state
        key = self.key_of(event)
        if event.topic == MODEL_ADOPTED or (
            key not in rows and event.topic in (MODEL_PRIORITY_CHANGED, MODEL_REINSTATED)
        ):
            # A change to an entry whose adoption was never applied (ADR 0009) carries all a
            # row needs: adopting the model again heals the roster.
            priority = s["priority"] if event.topic != MODEL_PRIORITY_CHANGED else s["new_priority"]
            rows[key] = {
                "provider": s["provider"],
                "workload": s["workload"],
                "model": s["model"],
                "status": ACTIVE,
                "priority": priority,
                "rationale": s.get("rationale"),
                "metadata": json_text(s.get("metadata")),
                "created_at": event.at,
                "updated_at": event.at,
            }
            return
        row = rows.get(key)
        if row is None:
            raise EventNotApplicable(f"{event.kind}: no roster entry {'/'.join(key)} to change")
        row["updated_at"] = event.at
        if event.topic == MODEL_PRIORITY_CHANGED:
            row["priority"] = s["new_priority"]
            if s.get("rationale") is not None:
                row["rationale"] = s["rationale"]
        elif event.topic == MODEL_RETIRED:
            row["status"] = RETIRED
        elif event.topic == MODEL_REINSTATED:
            row["status"] = ACTIVE
            row["priority"] = s["priority"]
            if s.get("rationale") is not None:
                row["rationale"] = s["rationale"]
            if s.get("metadata") is not None:
                row["metadata"] = json_text(s["metadata"])
