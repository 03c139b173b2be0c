"""RosterEntry: one model's place in the active roster of a (provider, workload).

Statuses: `active` (the router may use it) and `retired` (kept for reference).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from freegin_ai.domain.errors import NotActiveError
from freegin_ai.domain.names import check_model_name, check_priority, roster_entry_id
from freegin_ai.domain.topics import ACTIVE, RETIRED

DEFAULT_PRIORITY = 100

#: Where an adoption came from.
SOURCES = ("manual", "default", "suggestion", "import")

#: Why a retirement is proposed: the provider no longer lists the model, or answered 410.
RetirementCause = Literal["delisted", "gone"]
DELISTED: RetirementCause = "delisted"
GONE: RetirementCause = "gone"
RETIREMENT_CAUSES: tuple[RetirementCause, ...] = (DELISTED, GONE)


class RosterEntry(Aggregate):
    """A roster entry; every event names its (provider, workload, model) so the log reads alone."""

    class ModelAdopted(Aggregate.Created):
        """A model entered the roster."""

        provider: str
        workload: str
        model: str
        priority: int
        rationale: str | None = None
        metadata: dict[str, Any] | None = None
        source: str = "manual"

    class EntryEvent(Aggregate.Event):
        """Base of the events after adoption; carries the natural key."""

        provider: str
        workload: str
        model: str

    class ModelPriorityChanged(EntryEvent):
        """An active entry was adopted again: its priority (and maybe rationale) changed."""

        old_priority: int
        new_priority: int
        rationale: str | None = None
        source: str = "manual"

        def apply(self, entry: Any) -> None:
            entry.priority = self.new_priority
            if self.rationale is not None:
                entry.rationale = self.rationale
            entry.retirement_proposed = False  # a person chose to keep it

    class ModelRetired(EntryEvent):
        """An active entry was taken out of use."""

        reason: str = ""

        def apply(self, entry: Any) -> None:
            entry.status = RETIRED
            entry.retirement_proposed = False

    class ModelReinstated(EntryEvent):
        """A retired entry was adopted again."""

        priority: int
        rationale: str | None = None
        metadata: dict[str, Any] | None = None
        source: str = "manual"

        def apply(self, entry: Any) -> None:
            entry.status = ACTIVE
            entry.retirement_proposed = False
            entry.priority = self.priority
            if self.rationale is not None:
                entry.rationale = self.rationale
            if self.metadata is not None:
                entry.metadata = self.metadata

    class RetirementProposed(EntryEvent):
        """Retiring the active entry was proposed, for a person to accept (`retire-model`)
        or decline (`adopt-model`): its provider no longer lists the model (`cause`
        "delisted", by sync-models) or answered 410 Gone for it ("gone", by the router).
        The one proposal event for both (ADR 0016); events before it are all "delisted"."""

        reason: str
        source: str = "sync-models"
        cause: str = "delisted"

        def apply(self, entry: Any) -> None:
            entry.retirement_proposed = True

    def __init__(
        self,
        provider: str,
        workload: str,
        model: str,
        priority: int,
        rationale: str | None = None,
        metadata: dict[str, Any] | None = None,
        source: str = "manual",
    ) -> None:
        self.provider = provider
        self.workload = workload
        self.model = model
        self.priority = priority
        self.rationale = rationale
        self.metadata = metadata
        self.source = source
        self.status = ACTIVE
        self.retirement_proposed = False

    @staticmethod
    def create_id(provider: str, workload: str, model: str) -> UUID:
        return roster_entry_id(provider, workload, model)

    @classmethod
    def adopt(
        cls,
        *,
        provider: str,
        workload: str,
        model: str,
        priority: int | None,
        rationale: str | None,
        metadata: dict[str, Any] | None,
        source: str,
        at: datetime,
    ) -> RosterEntry:
        """Put a new model into the roster (priority 100 unless given)."""
        model = check_model_name(model)
        chosen = DEFAULT_PRIORITY if priority is None else check_priority(priority)
        return cls._create(
            cls.ModelAdopted,
            id=roster_entry_id(provider, workload, model),
            timestamp=at,
            provider=provider,
            workload=workload,
            model=model,
            priority=chosen,
            rationale=rationale or None,
            metadata=metadata or None,
            source=source,
        )

    @property
    def is_active(self) -> bool:
        return bool(self.status == ACTIVE)

    def adopt_again(
        self,
        *,
        priority: int | None,
        rationale: str | None,
        metadata: dict[str, Any] | None,
        source: str,
        at: datetime,
    ) -> None:
        """Adopt an existing entry: reinstate it if retired, else change its priority.

        An unchanged priority and no new rationale is a no-op: nothing is recorded.
        """
        if priority is not None:
            check_priority(priority)
        if self.status == RETIRED:
            self.trigger_event(
                self.ModelReinstated,
                timestamp=at,
                **self._key(),
                priority=self.priority if priority is None else priority,
                rationale=rationale or None,
                metadata=metadata or None,
                source=source,
            )
            return
        new_priority = self.priority if priority is None else priority
        new_rationale = rationale or None
        if new_priority == self.priority and new_rationale in (None, self.rationale):
            return
        self.trigger_event(
            self.ModelPriorityChanged,
            timestamp=at,
            **self._key(),
            old_priority=self.priority,
            new_priority=new_priority,
            rationale=new_rationale,
            source=source,
        )

    def retire(self, *, reason: str, at: datetime) -> None:
        """Take an active entry out of use."""
        if self.status != ACTIVE:
            raise NotActiveError(
                f"model {self.model!r} is not active for provider {self.provider!r} "
                f"and workload {self.workload!r}"
            )
        self.trigger_event(self.ModelRetired, timestamp=at, **self._key(), reason=reason)

    def propose_retirement(
        self,
        *,
        reason: str,
        at: datetime,
        cause: RetirementCause = DELISTED,
        source: str = "sync-models",
    ) -> bool:
        """Propose retiring an active entry (once, until a person decides); False when there
        is nothing to propose. `cause` says why: DELISTED or GONE."""
        if cause not in RETIREMENT_CAUSES:
            raise ValueError(f"unknown retirement cause {cause!r}")
        if self.status != ACTIVE or getattr(self, "retirement_proposed", False):
            return False
        self.trigger_event(
            self.RetirementProposed,
            timestamp=at,
            **self._key(),
            reason=reason,
            source=source,
            cause=cause,
        )
        return True

    def _key(self) -> dict[str, str]:
        return {"provider": self.provider, "workload": self.workload, "model": self.model}
