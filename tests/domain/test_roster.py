"""RosterEntry: given events, when a command, then events or an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from freegin_ai.domain.errors import InvalidModelNameError, InvalidPriorityError, NotActiveError
from freegin_ai.domain.names import roster_entry_id
from freegin_ai.domain.roster import RosterEntry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def adopted(priority: int = 100, rationale: str | None = "General chat") -> RosterEntry:
    entry = RosterEntry.adopt(
        provider="huggingface",
        workload="chat",
        model="mistralai/Mistral-7B-Instruct-v0.2",
        priority=priority,
        rationale=rationale,
        metadata=None,
        source="default",
        at=T0,
    )
    entry.collect_events()  # given: already stored
    return entry


def test_adopting_records_model_adopted_with_the_natural_key_id() -> None:
    entry = RosterEntry.adopt(
        provider="groq",
        workload="code",
        model="llama-3.3-70b-versatile",
        priority=None,
        rationale="fast",
        metadata={"tier": "free"},
        source="manual",
        at=T0,
    )
    [event] = entry.collect_events()
    assert isinstance(event, RosterEntry.ModelAdopted)
    assert event.originator_id == roster_entry_id("groq", "code", "llama-3.3-70b-versatile")
    assert (event.priority, event.rationale, event.metadata, event.source) == (
        100,
        "fast",
        {"tier": "free"},
        "manual",
    )
    assert event.timestamp == T0


@pytest.mark.parametrize("bad", ["", "   ", "has space", "x" * 201, "semi;colon", "1234"])
def test_adopting_a_bad_model_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidModelNameError):
        RosterEntry.adopt(
            provider="groq",
            workload="chat",
            model=bad,
            priority=1,
            rationale=None,
            metadata=None,
            source="manual",
            at=T0,
        )


def test_negative_priority_is_refused() -> None:
    with pytest.raises(InvalidPriorityError):
        adopted(priority=-1)


def test_adopting_again_changes_priority_and_keeps_rationale() -> None:
    entry = adopted(priority=100)
    entry.adopt_again(priority=50, rationale=None, metadata=None, source="manual", at=T0)
    [event] = entry.collect_events()
    assert isinstance(event, RosterEntry.ModelPriorityChanged)
    assert (event.old_priority, event.new_priority, event.rationale) == (100, 50, None)
    assert entry.rationale == "General chat"
    assert entry.priority == 50


def test_adopting_again_with_nothing_new_records_nothing() -> None:
    entry = adopted(priority=100)
    entry.adopt_again(priority=None, rationale=None, metadata=None, source="manual", at=T0)
    entry.adopt_again(priority=100, rationale="General chat", metadata=None, source="x", at=T0)
    assert entry.collect_events() == []


def test_retiring_then_adopting_reinstates_with_the_old_priority() -> None:
    entry = adopted(priority=30)
    later = T0 + timedelta(days=1)
    entry.retire(reason="slow", at=later)
    entry.adopt_again(priority=None, rationale=None, metadata=None, source="manual", at=later)
    retired, reinstated = entry.collect_events()
    assert isinstance(retired, RosterEntry.ModelRetired) and retired.reason == "slow"
    assert isinstance(reinstated, RosterEntry.ModelReinstated)
    assert reinstated.priority == 30
    assert entry.is_active and entry.rationale == "General chat"


def test_retiring_what_is_not_active_is_refused() -> None:
    entry = adopted()
    entry.retire(reason="", at=T0)
    entry.collect_events()
    with pytest.raises(NotActiveError):
        entry.retire(reason="again", at=T0)
    assert entry.collect_events() == []
