"""Envelope: one event as the projections see it, and the port they read the log through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import Connection

from freegin_ai.domain.roster import RosterEntry
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.usage import UsageRecord


@dataclass(frozen=True, slots=True)
class Envelope:
    """An event at its log position; `state` is its decoded JSON (timestamp as RFC 3339)."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    state: dict[str, Any]

    @property
    def at(self) -> str:
        """When the event happened, as stored (RFC 3339, UTC)."""
        stamp: str = self.state["timestamp"]
        return stamp

    @property
    def kind(self) -> str:
        """The event's class name, e.g. `ModelAdopted`."""
        return self.topic.rsplit(".", 1)[-1]


class EventSource(Protocol):
    """Reads the event log in position order."""

    def read(
        self,
        after: int,
        limit: int,
        topics: frozenset[str] = frozenset(),
        conn: Connection | None = None,
    ) -> list[Envelope]:
        """Events with position > `after`, oldest first, at most `limit`, optionally by topic.

        With `conn`, reads inside that connection's transaction (the same database).
        """
        ...

    def last_position(self, conn: Connection | None = None) -> int:
        """The position of the newest event, 0 for an empty log."""
        ...


MODEL_ADOPTED = get_topic(RosterEntry.ModelAdopted)
MODEL_PRIORITY_CHANGED = get_topic(RosterEntry.ModelPriorityChanged)
MODEL_RETIRED = get_topic(RosterEntry.ModelRetired)
MODEL_REINSTATED = get_topic(RosterEntry.ModelReinstated)
ROSTER_TOPICS = frozenset({MODEL_ADOPTED, MODEL_PRIORITY_CHANGED, MODEL_RETIRED, MODEL_REINSTATED})

SUGGESTION_PROPOSED = get_topic(Suggestion.SuggestionProposed)
SUGGESTION_REVISED = get_topic(Suggestion.SuggestionRevised)
SUGGESTION_ADOPTED = get_topic(Suggestion.SuggestionAdopted)
SUGGESTION_REJECTED = get_topic(Suggestion.SuggestionRejected)
TRIAL_STARTED = get_topic(Suggestion.TrialStarted)
TRIAL_ENDED = get_topic(Suggestion.TrialEnded)
SUGGESTION_TOPICS = frozenset(
    {
        SUGGESTION_PROPOSED,
        SUGGESTION_REVISED,
        SUGGESTION_ADOPTED,
        SUGGESTION_REJECTED,
        TRIAL_STARTED,
        TRIAL_ENDED,
    }
)

USAGE_LOGGED = get_topic(UsageRecord.UsageLogged)
USAGE_TOPICS = frozenset({USAGE_LOGGED})

#: Everything but usage: what `history` and `--as-of` read.
CATALOG_TOPICS = ROSTER_TOPICS | SUGGESTION_TOPICS
