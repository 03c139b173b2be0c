"""Stored topics, stream ids and name parsing: the parts of the domain that must never drift."""

from __future__ import annotations

import pytest
from eventsourcing.utils import get_topic

from freegin_ai.domain import topics
from freegin_ai.domain.availability import Availability
from freegin_ai.domain.errors import UnknownProviderError, UnknownWorkloadError
from freegin_ai.domain.names import roster_entry_id, suggestion_id
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.roster import RosterEntry
from freegin_ai.domain.suggestions import Suggestion
from freegin_ai.domain.usage import UsageRecord
from freegin_ai.domain.workloads import Workload


@pytest.mark.parametrize(
    ("constant", "event_class"),
    [
        (topics.MODEL_ADOPTED, RosterEntry.ModelAdopted),
        (topics.MODEL_PRIORITY_CHANGED, RosterEntry.ModelPriorityChanged),
        (topics.MODEL_RETIRED, RosterEntry.ModelRetired),
        (topics.MODEL_REINSTATED, RosterEntry.ModelReinstated),
        (topics.SUGGESTION_PROPOSED, Suggestion.SuggestionProposed),
        (topics.SUGGESTION_REVISED, Suggestion.SuggestionRevised),
        (topics.SUGGESTION_ADOPTED, Suggestion.SuggestionAdopted),
        (topics.SUGGESTION_REJECTED, Suggestion.SuggestionRejected),
        (topics.TRIAL_STARTED, Suggestion.TrialStarted),
        (topics.TRIAL_ENDED, Suggestion.TrialEnded),
        (topics.USAGE_LOGGED, UsageRecord.UsageLogged),
        (topics.PROVIDER_CLEARED, Availability.ProviderCleared),
        (topics.RETIREMENT_PROPOSED, Availability.RetirementProposed),
    ],
)
def test_stored_topics_match_the_event_classes(constant: str, event_class: type) -> None:
    assert get_topic(event_class) == constant


def test_stream_ids_are_stable_and_distinct() -> None:
    # Stored streams are found by these ids: the value must never change.
    assert str(roster_entry_id("huggingface", "chat", "bigcode/starcoder")) == str(
        roster_entry_id("huggingface", "chat", "bigcode/starcoder")
    )
    assert roster_entry_id("a", "chat", "m") != suggestion_id("a", "chat", "m")
    assert roster_entry_id("a", "chat", "m") != roster_entry_id("a", "code", "m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Chat", Workload.CHAT), ("CODE", Workload.CODE), ("summarisation", Workload.SUMMARIZATION)],
)
def test_workloads_are_case_insensitive(text: str, expected: Workload) -> None:
    assert Workload.parse(text) is expected
    assert expected.display == expected.value.capitalize()


def test_unknown_workload_and_provider_are_refused() -> None:
    with pytest.raises(UnknownWorkloadError):
        Workload.parse("poetry-slam")
    with pytest.raises(UnknownProviderError):
        parse_provider("skynet")


@pytest.mark.parametrize(("alias", "name"), [("hf", "huggingface"), ("Gemini", "google")])
def test_provider_aliases(alias: str, name: str) -> None:
    assert parse_provider(alias) == name
