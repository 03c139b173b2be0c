"""Adopting a model: the decision between adopting it new, reinstating it, changing its
priority, or leaving it unchanged, and marking its open suggestion adopted.

Pure: it takes the loaded aggregates (or None) and the command, triggers their events, and
says what it did. The application's handler loads, calls this, and saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.roster import RosterEntry
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.topics import PENDING, TRIAL

ADOPTED = "adopted"
REINSTATED = "reinstated"
REPRIORITISED = "reprioritised"
UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Adoption:
    """What adopting did: `action` is adopted, reinstated, reprioritised or unchanged."""

    action: str
    entry: RosterEntry
    #: The open suggestion, now marked adopted; None when there was none.
    suggestion: Suggestion | None


def adopt(
    command: AdoptModel,
    entry: RosterEntry | None,
    suggestion: Suggestion | None,
    *,
    at: datetime,
) -> Adoption:
    """Adopt `command`'s model given its roster entry and suggestion as they stand (or None).

    A new entry takes the open suggestion's rationale when the command gives none; a manual
    adoption of a suggested model is recorded with source "suggestion".
    """
    open_suggestion = suggestion if suggestion and suggestion.status in (PENDING, TRIAL) else None
    rationale = command.rationale
    if rationale is None and open_suggestion is not None and entry is None:
        rationale = open_suggestion.rationale
    source = "suggestion" if open_suggestion and command.source == "manual" else command.source
    if entry is None:
        entry = RosterEntry.adopt(
            provider=command.provider,
            workload=command.workload,
            model=command.model,
            priority=command.priority,
            rationale=rationale,
            metadata=command.metadata,
            source=source,
            at=at,
        )
        action = ADOPTED
    else:
        was_active, old_priority = entry.is_active, entry.priority
        entry.adopt_again(
            priority=command.priority,
            rationale=rationale,
            metadata=command.metadata,
            source=source,
            at=at,
        )
        if not was_active:
            action = REINSTATED
        elif entry.priority != old_priority or entry.pending_events:
            action = REPRIORITISED
        else:
            action = UNCHANGED
    if open_suggestion is not None:
        open_suggestion.mark_adopted(priority=entry.priority, at=at)
    return Adoption(action=action, entry=entry, suggestion=open_suggestion)
