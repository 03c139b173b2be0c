"""Envelope: one event as the projections see it, and the port they read the log through."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
from sqlalchemy import Connection

from freegin_ai.domain.topics import (
    LISTING_STARTED,
    LISTING_SYNCED,
    MODEL_ADOPTED,
    MODEL_DELISTED,
    MODEL_LISTED,
    MODEL_PRIORITY_CHANGED,
    MODEL_REINSTATED,
    MODEL_RETIRED,
    MODEL_RETIREMENT_PROPOSED,
    PROVIDER_CLEARED,
    RETIREMENT_PROPOSED,
    SUGGESTION_ADOPTED,
    SUGGESTION_PROPOSED,
    SUGGESTION_REJECTED,
    SUGGESTION_REVISED,
    TRIAL_ENDED,
    TRIAL_STARTED,
    USAGE_LOGGED,
)


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """An event at its log position; `state` is its decoded JSON (timestamp as RFC 3339).

    A msgspec Struct: the log is read an envelope per event, and one is made in a tenth of a
    frozen dataclass's time. It refers to plain decoded JSON only, so it can never be part of
    a reference cycle and the garbage collector need not track it.
    """

    position: int
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


ROSTER_TOPICS = frozenset(
    {
        MODEL_ADOPTED,
        MODEL_PRIORITY_CHANGED,
        MODEL_RETIRED,
        MODEL_REINSTATED,
        MODEL_RETIREMENT_PROPOSED,
    }
)
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
USAGE_TOPICS = frozenset({USAGE_LOGGED})
#: What people and providers said about availability (domain.availability).
AVAILABILITY_TOPICS = frozenset({PROVIDER_CLEARED, RETIREMENT_PROPOSED})
LISTING_TOPICS = frozenset({LISTING_STARTED, MODEL_LISTED, MODEL_DELISTED, LISTING_SYNCED})

#: Everything but usage: what `history` and `--as-of` read.
CATALOG_TOPICS = ROSTER_TOPICS | SUGGESTION_TOPICS | AVAILABILITY_TOPICS
