"""The event store's transcoder: event state as msgspec JSON (domain.codec).

Kept in its own module, imported only where events are written or loaded, because
eventsourcing's persistence module costs start-up time that queries do not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Transcoder

from freegin_ai.domain.codec import decode_state, encode_state


class MsgspecTranscoder(Transcoder):
    """Event state as compact JSON through msgspec (see domain.codec)."""

    def encode(self, obj: Any) -> bytes:
        return encode_state(obj)

    def decode(self, data: bytes) -> Any:
        return decode_state(data)


def make_mapper() -> Mapper[UUID]:
    """A mapper that stores events exactly as the catalog's Application does."""
    return Mapper(transcoder=MsgspecTranscoder())


def stored_rows(mapper: Mapper[UUID], events: Sequence[Any]) -> list[dict[str, Any]]:
    """Events as rows of eventsourcing-sqlalchemy's events table, for one bulk insert."""
    rows = []
    for event in events:
        stored = mapper.to_stored_event(event)
        rows.append(
            {
                "originator_id": stored.originator_id,
                "originator_version": stored.originator_version,
                "topic": stored.topic,
                "state": stored.state,
            }
        )
    return rows
