"""Suggestion: a candidate model for a (provider, workload), proposed by a refresh or an import.

Statuses: `pending` (awaiting review), `trial` (taking a share of traffic), `adopted` (moved to
the roster) and `rejected` (turned down). An adopted suggestion never goes back to pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from freegin_ai.domain.errors import SuggestionStateError
from freegin_ai.domain.names import check_model_name, suggestion_id
from freegin_ai.domain.topics import ADOPTED, PENDING, REJECTED, TRIAL

STATUSES = (PENDING, TRIAL, ADOPTED, REJECTED)


class Suggestion(Aggregate):
    """A suggested model; every event names its (provider, workload, model)."""

    class SuggestionProposed(Aggregate.Created):
        """A model was suggested for a provider and workload."""

        provider: str
        workload: str
        model: str
        rationale: str | None = None
        metadata: dict[str, Any] | None = None
        production_ready: bool | None = None
        notes: str | None = None
        provenance: dict[str, Any] | None = None

    class SuggestionEvent(Aggregate.Event):
        """Base of the events after the proposal; carries the natural key."""

        provider: str
        workload: str
        model: str

    class SuggestionRevised(SuggestionEvent):
        """A pending suggestion was proposed again; its details were replaced."""

        rationale: str | None = None
        metadata: dict[str, Any] | None = None
        production_ready: bool | None = None
        notes: str | None = None
        provenance: dict[str, Any] | None = None

        def apply(self, suggestion: Any) -> None:
            suggestion.rationale = self.rationale
            suggestion.metadata = self.metadata
            suggestion.production_ready = self.production_ready
            suggestion.notes = self.notes

    class SuggestionAdopted(SuggestionEvent):
        """The suggestion was moved into the roster."""

        priority: int

        def apply(self, suggestion: Any) -> None:
            suggestion.status = ADOPTED

    class SuggestionRejected(SuggestionEvent):
        """The suggestion was turned down."""

        reason: str = ""

        def apply(self, suggestion: Any) -> None:
            suggestion.status = REJECTED

    class TrialStarted(SuggestionEvent):
        """The suggestion began taking about `percent` % of its workload's requests."""

        percent: float

        def apply(self, suggestion: Any) -> None:
            suggestion.status = TRIAL
            suggestion.trial_percent = self.percent

    class TrialEnded(SuggestionEvent):
        """A trial stopped; `outcome` is `adopted` or `rejected` (the status that follows)."""

        outcome: str
        reason: str = ""

        def apply(self, suggestion: Any) -> None:
            suggestion.status = self.outcome
            suggestion.trial_percent = None

    def __init__(
        self,
        provider: str,
        workload: str,
        model: str,
        rationale: str | None = None,
        metadata: dict[str, Any] | None = None,
        production_ready: bool | None = None,
        notes: str | None = None,
    ) -> None:
        self.provider = provider
        self.workload = workload
        self.model = model
        self.rationale = rationale
        self.metadata = metadata
        self.production_ready = production_ready
        self.notes = notes
        self.status = PENDING
        self.trial_percent: float | None = None

    @staticmethod
    def create_id(provider: str, workload: str, model: str) -> UUID:
        return suggestion_id(provider, workload, model)

    @classmethod
    def propose(
        cls,
        *,
        provider: str,
        workload: str,
        model: str,
        rationale: str | None,
        metadata: dict[str, Any] | None,
        production_ready: bool | None,
        notes: str | None,
        provenance: dict[str, Any] | None,
        at: datetime,
    ) -> Suggestion:
        """Record a new suggestion."""
        model = check_model_name(model)
        return cls._create(
            cls.SuggestionProposed,
            id=suggestion_id(provider, workload, model),
            timestamp=at,
            provider=provider,
            workload=workload,
            model=model,
            rationale=rationale or None,
            metadata=metadata or None,
            production_ready=production_ready,
            notes=notes or None,
            provenance=provenance or None,
        )

    def propose_again(
        self,
        *,
        rationale: str | None,
        metadata: dict[str, Any] | None,
        production_ready: bool | None,
        notes: str | None,
        provenance: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        """Update a pending suggestion's details; anything but pending is left as it is."""
        if self.status != PENDING:
            raise SuggestionStateError(
                f"suggestion {self.model!r} is {self.status}, not pending; it is left as it is"
            )
        self.trigger_event(
            self.SuggestionRevised,
            timestamp=at,
            **self._key(),
            rationale=rationale or None,
            metadata=metadata or None,
            production_ready=production_ready,
            notes=notes or None,
            provenance=provenance or None,
        )

    def mark_adopted(self, *, priority: int, at: datetime) -> None:
        """Mark the suggestion adopted (a trial ends adopted); adopting twice is a no-op."""
        if self.status == ADOPTED:
            return
        if self.status == TRIAL:
            self.trigger_event(self.TrialEnded, timestamp=at, **self._key(), outcome=ADOPTED)
            return
        self.trigger_event(self.SuggestionAdopted, timestamp=at, **self._key(), priority=priority)

    def reject(self, *, reason: str, at: datetime) -> None:
        """Turn the suggestion down (a trial ends rejected)."""
        if self.status in (ADOPTED, REJECTED):
            raise SuggestionStateError(f"suggestion {self.model!r} is already {self.status}")
        if self.status == TRIAL:
            self.trigger_event(
                self.TrialEnded, timestamp=at, **self._key(), outcome=REJECTED, reason=reason
            )
            return
        self.trigger_event(self.SuggestionRejected, timestamp=at, **self._key(), reason=reason)

    def start_trial(self, *, percent: float, at: datetime) -> None:
        """Send about `percent` % of the workload's requests to this model."""
        if not 0 < percent <= 100:
            raise SuggestionStateError(f"trial percent must be above 0 and at most 100: {percent}")
        if self.status not in (PENDING, TRIAL):
            raise SuggestionStateError(
                f"suggestion {self.model!r} is {self.status}; only a pending one can go on trial"
            )
        self.trigger_event(self.TrialStarted, timestamp=at, **self._key(), percent=percent)

    def end_trial(self, *, adopt: bool, reason: str, at: datetime) -> None:
        """Stop the trial, adopting or rejecting the model."""
        if self.status != TRIAL:
            raise SuggestionStateError(f"suggestion {self.model!r} is not on trial")
        outcome = ADOPTED if adopt else REJECTED
        self.trigger_event(
            self.TrialEnded, timestamp=at, **self._key(), outcome=outcome, reason=reason
        )

    def _key(self) -> dict[str, str]:
        return {"provider": self.provider, "workload": self.workload, "model": self.model}
