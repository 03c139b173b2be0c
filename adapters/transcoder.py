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


def stored_row(mapper: Mapper[UUID], event: Any) -> tuple[UUID, int, str, bytes]:
    """An event as the events table stores it: stream id, version, topic, state."""
    stored = mapper.to_stored_event(event)
    id = stored.originator_id
    return (
        id if isinstance(id, UUID) else UUID(id),
        stored.originator_version,
        stored.topic,
        stored.state,
    )


#: The events table's columns, in the order of `stored_row`.
_COLUMNS = ("originator_id", "originator_version", "topic", "state")


def stored_rows(mapper: Mapper[UUID], events: Sequence[Any]) -> list[dict[str, Any]]:
    """Events as rows of eventsourcing-sqlalchemy's events table, for one bulk insert."""
    return [dict(zip(_COLUMNS, stored_row(mapper, event), strict=True)) for event in events]
