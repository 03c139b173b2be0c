"""Writer: what every command handler shares. Load an aggregate, save what a decision
changed, run the attempt again when another writer appended to the same stream first, and
catch the read tables up before returning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from freegin_ai.adapters.errors import ConcurrentWriteError
from freegin_ai.adapters.store import EventStore
from freegin_ai.projections.projector import Projector

Clock = Callable[[], datetime]
A = TypeVar("A")
T = TypeVar("T")

_MAX_ATTEMPTS = 8


def utc_now() -> datetime:
    """The real clock, in UTC."""
    return datetime.now(UTC)


class Writer:
    """Loads, saves and retries for the handlers, over one store and its projector."""

    def __init__(
        self,
        store: EventStore,
        projector: Projector,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self.store = store
        self.projector = projector
        self.clock = clock
        self.new_id = new_id
        #: Commands that appended here (a router reloads its snapshot when this moves).
        self.commands = 0

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as it stands, or None when it has no stream."""
        from eventsourcing.application import AggregateNotFoundError

        try:
            aggregate: Any = self.store.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, cls)
        return aggregate

    def update(
        self,
        cls: type[A],
        aggregate_id: UUID,
        missing: Callable[[], Exception],
        change: Callable[[A], None],
    ) -> None:
        """Load an existing aggregate, change it, save, retrying on conflicts; catch up."""

        def attempt() -> None:
            aggregate = self.get(cls, aggregate_id)
            if aggregate is None:
                raise missing()
            change(aggregate)
            self.store.save(aggregate)

        self.run(attempt)

    def run(self, attempt: Callable[[], T]) -> T:
        """Run a load-decide-save attempt, again on conflicts, then catch the tables up."""
        outcome = self.retrying(attempt)
        self.projector.catch_up()
        return outcome

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run a load-decide-save attempt again when another writer got there first."""
        for _ in range(_MAX_ATTEMPTS):
            try:
                outcome = attempt()
            except Exception as error:
                if not _is_conflict(error):
                    raise
                self.projector.catch_up()
            else:
                self.commands += 1
                return outcome
        raise ConcurrentWriteError("other writers kept changing the same entries; try again")


def _is_conflict(error: Exception) -> bool:
    """Whether an append failed because another writer appended to the same stream first."""
    # Imported here: queries never need the persistence module, and it costs start-up time.
    from eventsourcing.persistence import IntegrityError

    return isinstance(error, IntegrityError)
