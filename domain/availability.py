"""Availability: what a person or a provider said about whether a provider or model can be
used, beyond one call's usage.

- `ProviderCleared`: a person cleared a sidelined provider (out of credit, 402) or a model
  marked gone, so the router tries it again.
- `RetirementProposed`: a provider answered 410 Gone for a model and its retirement was
  proposed. No longer appended: since ADR 0016 both a 410 and a delisting append
  `RosterEntry.RetirementProposed` (with its `cause`); the class stays so the events already
  stored still load, and `history` still shows them.

Like usage, each event is a stream of its own (a new id each time): nothing contends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic


class Availability(Aggregate):
    """A notice about a provider's or a model's availability."""

    class ProviderCleared(Aggregate.Created):
        """A person cleared a provider's sideline (or, with `model`, a model marked gone)."""

        provider: str
        model: str = ""
        reason: str | None = None

    class RetirementProposed(Aggregate.Created):
        """A provider said a model is gone (410); its retirement was proposed to a person.
        Kept for stored events only (ADR 0016)."""

        provider: str
        workload: str
        model: str
        reason: str
        status: int = 410

    def __init__(self, provider: str) -> None:
        self.provider = provider


_TOPIC = get_topic(Availability)


def _build(cls: Any, *, id: UUID, at: datetime, **fields: Any) -> Any:
    # The event classes are made dataclasses by eventsourcing's metaclass (mypy cannot see it).
    return cls(originator_id=id, originator_version=1, timestamp=at, originator_topic=_TOPIC,
               **fields)  # fmt: skip


def provider_cleared(
    *, id: UUID, at: datetime, provider: str, model: str = "", reason: str | None = None
) -> Availability.ProviderCleared:
    """The event of a person clearing a provider (or one model) for routing again."""
    event: Availability.ProviderCleared = _build(
        Availability.ProviderCleared, id=id, at=at, provider=provider, model=model, reason=reason
    )
    return event
