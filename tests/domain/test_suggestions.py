"""Suggestion: given events, when a command, then events or an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from freegin_ai.domain.errors import SuggestionStateError
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.topics import ADOPTED, PENDING, REJECTED, TRIAL

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def proposed() -> Suggestion:
    s = Suggestion.propose(
        provider="huggingface",
        workload="chat",
        model="meta-llama/Llama-2-7b-chat-hf",
        rationale="Better reasoning",
        metadata={"est_cost_per_1k_tokens": 0.2},
        production_ready=True,
        notes="Requires API key",
        provenance={"provider": "groq", "model": "llama-3.3-70b-versatile"},
        at=T0,
    )
    s.collect_events()
    return s


def test_proposing_again_while_pending_revises_the_details() -> None:
    s = proposed()
    s.propose_again(
        rationale="Even better",
        metadata=None,
        production_ready=False,
        notes=None,
        provenance=None,
        at=T0,
    )
    [event] = s.collect_events()
    assert isinstance(event, Suggestion.SuggestionRevised)
    assert s.rationale == "Even better" and s.status == PENDING


def test_an_adopted_suggestion_never_goes_back_to_pending() -> None:
    s = proposed()
    s.mark_adopted(priority=40, at=T0)
    s.collect_events()
    with pytest.raises(SuggestionStateError):
        s.propose_again(
            rationale="x", metadata=None, production_ready=None, notes=None, provenance=None, at=T0
        )
    assert s.status == ADOPTED
    assert s.collect_events() == []


def test_adopting_twice_records_once() -> None:
    s = proposed()
    s.mark_adopted(priority=40, at=T0)
    s.mark_adopted(priority=40, at=T0)
    assert [type(e).__name__ for e in s.collect_events()] == ["SuggestionAdopted"]


def test_trial_then_reject_ends_the_trial_rejected() -> None:
    s = proposed()
    s.start_trial(percent=10, at=T0)
    assert s.status == TRIAL
    s.reject(reason="worse", at=T0)
    started, ended = s.collect_events()
    assert isinstance(started, Suggestion.TrialStarted) and started.percent == 10
    assert isinstance(ended, Suggestion.TrialEnded) and ended.outcome == REJECTED
    assert s.status == REJECTED


@pytest.mark.parametrize("percent", [0, -5, 101])
def test_trial_percent_must_be_in_range(percent: float) -> None:
    with pytest.raises(SuggestionStateError):
        proposed().start_trial(percent=percent, at=T0)


def test_rejecting_an_adopted_suggestion_is_refused() -> None:
    s = proposed()
    s.mark_adopted(priority=1, at=T0)
    with pytest.raises(SuggestionStateError):
        s.reject(reason="", at=T0)
