"""ProviderListing (given a listing, when a new one is recorded, then only the changes are
events), the capability lookup, and retirement proposals on roster entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from freegin_ai.domain.capabilities import Needs, prompt_token_estimate, unmet
from freegin_ai.domain.errors import InvalidListingError
from freegin_ai.domain.listing import ProviderListing
from freegin_ai.domain.model_info import ModelInfo
from freegin_ai.domain.roster import RosterEntry

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def kinds(listing: ProviderListing) -> list[str]:
    return [type(e).__name__ for e in listing.collect_events()]


def test_a_listing_records_what_appeared_changed_or_went_and_each_sync() -> None:
    # Given a first listing of two models
    listing = ProviderListing.start("openrouter", AT)
    listing.record({"a/x": ModelInfo(context_window=8), "b/y": ModelInfo()}, source="s", at=AT)
    assert kinds(listing) == ["ListingStarted", "ModelListed", "ModelListed", "ListingSynced"]
    # When the same listing comes again, then only the sync is recorded
    listing.record({"a/x": ModelInfo(context_window=8), "b/y": ModelInfo()}, source="s", at=AT)
    assert kinds(listing) == ["ListingSynced"]
    # When one model's details change and the other is gone, then exactly that is recorded
    changes = listing.record({"a/x": ModelInfo(context_window=16)}, source="s", at=AT)
    assert (changes.new, changes.changed, changes.delisted) == ((), ("a/x",), ("b/y",))
    assert kinds(listing) == ["ModelListed", "ModelDelisted", "ListingSynced"]
    assert listing.models == {"a/x": {"context_window": 16}}


def test_an_empty_or_ill_typed_listing_is_refused_whole() -> None:
    listing = ProviderListing.start("groq", AT)
    listing.collect_events()
    with pytest.raises(InvalidListingError, match="listed no models"):
        listing.record({}, source="s", at=AT)
    with pytest.raises(InvalidListingError, match="context_window"):
        listing.record({"m": ModelInfo(context_window=-1)}, source="s", at=AT)
    with pytest.raises(InvalidListingError, match="free"):
        listing.record({"m": ModelInfo(free="yes")}, source="s", at=AT)  # type: ignore[arg-type]
    assert kinds(listing) == []


def test_model_info_round_trips_through_its_stored_form() -> None:
    info = ModelInfo(context_window=1, supports_tools=False, pipeline_tag="summarization",
                     tags=("a",), input_per_1k_micros=0.5)  # fmt: skip
    assert ModelInfo.from_dict(info.as_dict() | {"added_later": 1}) == info
    assert ModelInfo().as_dict() == {}


def test_capabilities_say_why_a_model_cannot_take_a_request_and_unknown_never_skips() -> None:
    info = ModelInfo(context_window=1000, max_output_tokens=200, supports_tools=False,
                     supports_json=True)  # fmt: skip
    assert unmet(info, Needs(tools=True)) == "does not support tools (per its listing)"
    assert unmet(info, Needs(json_schema=True)) is None
    assert "output limit 200" in (unmet(info, Needs(max_tokens=300)) or "")
    assert "context window 1000" in (unmet(info, Needs(prompt_tokens=900, max_tokens=150)) or "")
    assert unmet(info, Needs(prompt_tokens=700, max_tokens=150)) is None
    assert unmet(None, Needs(tools=True, max_tokens=10**9)) is None
    assert unmet(ModelInfo(), Needs(tools=True, json_schema=True)) is None
    assert prompt_token_estimate("abcd", None, "e") == 2


def test_retirement_is_proposed_once_and_a_decision_clears_it() -> None:
    entry = RosterEntry.adopt(provider="groq", workload="chat", model="m", priority=10,
                              rationale=None, metadata=None, source="manual", at=AT)  # fmt: skip
    entry.collect_events()
    assert entry.propose_retirement(reason="gone", at=AT)
    assert not entry.propose_retirement(reason="gone", at=AT)  # already proposed
    # A person keeps it (new priority): a later sync may propose again.
    entry.adopt_again(priority=5, rationale=None, metadata=None, source="manual", at=AT)
    assert entry.propose_retirement(reason="gone again", at=AT)
    entry.retire(reason="accepted", at=AT)
    assert not entry.propose_retirement(reason="gone", at=AT)  # not active
    assert [type(e).__name__ for e in entry.collect_events()] == [
        "RetirementProposed", "ModelPriorityChanged", "RetirementProposed", "ModelRetired",
    ]  # fmt: skip


def test_a_proposal_says_why_and_an_unknown_cause_is_refused() -> None:
    entry = RosterEntry.adopt(provider="groq", workload="chat", model="m", priority=10,
                              rationale=None, metadata=None, source="manual", at=AT)  # fmt: skip
    entry.collect_events()
    # A 410 and a delisting propose the same event; `cause` tells them apart.
    assert entry.propose_retirement(reason="410: retired", at=AT, cause="gone", source="router")
    [event] = entry.collect_events()
    assert isinstance(event, RosterEntry.RetirementProposed)
    assert (event.cause, event.source, event.reason) == ("gone", "router", "410: retired")
    entry.retire(reason="accepted", at=AT)
    with pytest.raises(ValueError, match="cause"):
        entry.propose_retirement(reason="x", at=AT, cause="bored")  # type: ignore[arg-type]
