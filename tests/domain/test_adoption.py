"""The adoption decision: given the roster entry and the suggestion as they stand, when a
model is adopted, then which action it was and which events were recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from freegin_ai.domain.adoption import adopt
from freegin_ai.domain.commands import AdoptModel, RetireModel
from freegin_ai.domain.errors import InvalidModelNameError, UnknownProviderError
from freegin_ai.domain.roster import RosterEntry
from freegin_ai.domain.suggestions import Suggestion

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
KEY: dict[str, Any] = {"provider": "groq", "workload": "chat", "model": "llama-3.3-70b-versatile"}


def entry(priority: int = 10, retired: bool = False) -> RosterEntry:
    e = RosterEntry.adopt(**KEY, priority=priority, rationale="fast", metadata=None,
                          source="default", at=T0)  # fmt: skip
    if retired:
        e.retire(reason="slow", at=T0)
    e.collect_events()  # given: already stored
    return e


def suggestion(trial: bool = False) -> Suggestion:
    s = Suggestion.propose(**KEY, rationale="suggested because", metadata=None,
                           production_ready=None, notes=None, provenance=None, at=T0)  # fmt: skip
    if trial:
        s.start_trial(percent=10.0, at=T0)
    s.collect_events()
    return s


def kinds(aggregate: RosterEntry | Suggestion | None) -> list[str]:
    return [] if aggregate is None else [type(e).__name__ for e in aggregate.collect_events()]


def test_a_new_model_is_adopted_with_the_suggestions_rationale_and_marks_it() -> None:
    # given no entry and a pending suggestion; when adopted by hand without a rationale
    done = adopt(AdoptModel(**KEY, priority=5), None, suggestion(), at=T1)
    # then it is adopted from the suggestion, whose rationale it keeps
    assert done.action == "adopted"
    assert (done.entry.priority, done.entry.rationale) == (5, "suggested because")
    [adopted] = done.entry.collect_events()
    assert adopted.source == "suggestion"  # type: ignore[attr-defined]
    assert kinds(done.suggestion) == ["SuggestionAdopted"]


def test_a_retired_model_is_reinstated() -> None:
    done = adopt(AdoptModel(**KEY), entry(retired=True), None, at=T1)
    assert done.action == "reinstated" and done.entry.is_active
    assert kinds(done.entry) == ["ModelReinstated"] and done.suggestion is None


def test_a_new_priority_reprioritises() -> None:
    done = adopt(AdoptModel(**KEY, priority=3), entry(priority=10), None, at=T1)
    assert (done.action, done.entry.priority) == ("reprioritised", 3)
    assert kinds(done.entry) == ["ModelPriorityChanged"]


def test_the_same_priority_and_no_rationale_changes_nothing() -> None:
    done = adopt(AdoptModel(**KEY, priority=10), entry(priority=10), None, at=T1)
    assert done.action == "unchanged" and kinds(done.entry) == []


def test_a_new_rationale_alone_is_recorded_as_a_change() -> None:
    done = adopt(AdoptModel(**KEY, rationale="cheaper now"), entry(), None, at=T1)
    assert done.action == "reprioritised" and kinds(done.entry) == ["ModelPriorityChanged"]


def test_a_trial_suggestion_is_marked_adopted_and_a_closed_one_is_left_alone() -> None:
    on_trial = adopt(AdoptModel(**KEY), None, suggestion(trial=True), at=T1)
    assert kinds(on_trial.suggestion) == ["TrialEnded"]  # ended by adoption
    closed = suggestion()
    closed.reject(reason="no", at=T0)
    closed.collect_events()
    done = adopt(AdoptModel(**KEY), None, closed, at=T1)
    assert done.suggestion is None and done.entry.rationale is None


def test_commands_check_and_canonicalise_their_names_where_they_are_made() -> None:
    command = AdoptModel(provider="Gemini", workload="Summary", model="  some/model ")
    assert (command.provider, command.workload, command.model) == (
        "google",
        "summarization",
        "some/model",
    )
    with pytest.raises(UnknownProviderError):
        AdoptModel(provider="nope", workload="chat", model="m")
    with pytest.raises(InvalidModelNameError):
        AdoptModel(provider="groq", workload="chat", model="has space")
    # Retiring names an existing stream: its model is only stripped.
    assert RetireModel(provider="groq", workload="chat", model=" odd name ").model == "odd name"
