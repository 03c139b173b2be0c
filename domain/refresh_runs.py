"""RefreshRun: one completed refresh of a (provider, workload), recorded so that a scheduled
refresh (`refresh-models --all --max-age 7d`) knows which pairs were refreshed recently.

Each run is its own stream of one event, with an id the caller chooses (a fresh uuid4), so
runs never contend. A run is appended in the same transaction as the suggestions it kept.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate


class RefreshRun(Aggregate):
    """A refresh that asked an LLM about one (provider, workload) and recorded its answer."""

    class RefreshCompleted(Aggregate.Created):
        """A refresh finished: who answered, and how many suggestions were kept and dropped."""

        provider: str
        workload: str
        via_provider: str
        via_model: str
        kept: int
        dropped: int
        dry_run: bool = False

    def __init__(
        self,
        provider: str,
        workload: str,
        via_provider: str,
        via_model: str,
        kept: int,
        dropped: int,
        dry_run: bool = False,
    ) -> None:
        self.provider = provider
        self.workload = workload
        self.via_provider = via_provider
        self.via_model = via_model
        self.kept = kept
        self.dropped = dropped
        self.dry_run = dry_run

    @classmethod
    def complete(
        cls,
        *,
        id: UUID,
        provider: str,
        workload: str,
        via_provider: str,
        via_model: str,
        kept: int,
        dropped: int,
        at: datetime,
        dry_run: bool = False,
    ) -> RefreshRun:
        """Record a finished refresh of `provider` and `workload` (a stored workload name)."""
        return cls._create(
            cls.RefreshCompleted,
            id=id,
            timestamp=at,
            provider=provider,
            workload=workload,
            via_provider=via_provider,
            via_model=via_model,
            kept=max(0, kept),
            dropped=max(0, dropped),
            dry_run=dry_run,
        )
