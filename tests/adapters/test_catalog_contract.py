"""Catalog storage contract: the same tests on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion, RetireModel
from freegin_ai.domain.defaults import DEFAULT_MODELS, HUGGINGFACE_DEFAULTS
from freegin_ai.domain.errors import NotActiveError, UnknownProviderError
from freegin_ai.domain.usage import CallUsage, TokenUsage
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.tables import provider_models
from tests.conftest import FakeClock


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    c = Catalog.open(database_url, clock=clock)
    yield c
    c.close()


def test_first_use_seeds_the_guides_huggingface_table_exactly(catalog: Catalog) -> None:
    rows = catalog.list_models(provider="huggingface")
    assert sorted((r.workload, r.model, r.priority, r.rationale) for r in rows) == sorted(
        (d.workload.value, d.model, d.priority, d.rationale) for d in HUGGINGFACE_DEFAULTS
    )
    assert len(catalog.list_models()) == len(DEFAULT_MODELS)
    sources = {h.details["source"] for h in catalog.history() if h.kind == "ModelAdopted"}
    assert sources == {"default"}


def test_seeding_again_appends_nothing_and_a_retired_default_stays_retired(
    database_url: str, catalog: Catalog, clock: FakeClock
) -> None:
    catalog.retire_model(RetireModel(provider="hf", workload="code", model="bigcode/starcoder"))
    before = catalog.store.last_position()
    again = Catalog.open(database_url, clock=clock)
    try:
        assert again.store.last_position() == before
        code = again.list_models(
            provider="huggingface", workload=Workload.CODE, include_retired=True
        )
        assert [(r.model, r.status) for r in code] == [("bigcode/starcoder", "retired")]
    finally:
        again.close()


def test_adopt_changes_priority_keeps_rationale_and_reinstates(catalog: Catalog) -> None:
    model = "mistralai/Mistral-7B-Instruct-v0.2"
    outcome = catalog.adopt_model(
        AdoptModel(provider="huggingface", workload="Chat", model=model, priority=50)
    )
    assert outcome.action == "reprioritised"
    [row] = catalog.list_models(provider="huggingface", workload=Workload.CHAT)
    assert (row.priority, row.rationale) == (50, "General-purpose chat model")

    catalog.retire_model(RetireModel(provider="huggingface", workload="chat", model=model))
    assert catalog.list_models(provider="huggingface", workload=Workload.CHAT) == []
    outcome = catalog.adopt_model(AdoptModel(provider="hf", workload="chat", model=model))
    assert outcome.action == "reinstated"
    [row] = catalog.list_models(provider="huggingface", workload=Workload.CHAT)
    assert (row.status, row.priority) == ("active", 50)


def test_adopting_a_pending_suggestion_marks_it_adopted_in_the_same_append(
    catalog: Catalog,
) -> None:
    catalog.propose(
        [
            ProposeSuggestion(
                provider="huggingface",
                workload="chat",
                model="meta-llama/Llama-2-7b-chat-hf",
                rationale="Better reasoning",
            )
        ]
    )
    before = catalog.store.last_position()
    outcome = catalog.adopt_model(
        AdoptModel(
            provider="huggingface",
            workload="chat",
            model="meta-llama/Llama-2-7b-chat-hf",
            priority=40,
        )
    )
    assert outcome.suggestion_marked
    new = catalog.store.read(before, 10)
    assert [e.kind for e in new] == ["ModelAdopted", "SuggestionAdopted"]
    assert new[0].state["source"] == "suggestion"
    assert new[0].state["rationale"] == "Better reasoning"
    [suggestion] = catalog.list_suggestions(provider="huggingface")
    assert suggestion.status == "adopted"


def test_a_query_sees_every_event_appended_before_it_by_another_writer(
    database_url: str, catalog: Catalog, clock: FakeClock
) -> None:
    other = Catalog(catalog.store.__class__(database_url), clock=clock)
    try:
        other.adopt_model(AdoptModel(provider="groq", workload="code", model="qwen-2.5-coder"))
    finally:
        other.close()
    models = [r.model for r in catalog.list_models(provider="groq", workload=Workload.CODE)]
    assert "qwen-2.5-coder" in models


def test_concurrent_writers_keep_one_row_and_one_stream_per_natural_key(
    database_url: str, catalog: Catalog
) -> None:
    errors: list[BaseException] = []

    def adopt(priority: int) -> None:
        mine = Catalog.open(database_url, seed=False)
        try:
            mine.adopt_model(
                AdoptModel(
                    provider="openrouter",
                    workload="chat",
                    model="meta/llama-4:free",
                    priority=priority,
                )
            )
        except BaseException as error:  # collected and asserted below
            errors.append(error)
        finally:
            mine.close()

    threads = [threading.Thread(target=adopt, args=(10 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    adopted = [
        h
        for h in catalog.history(provider="openrouter", model="meta/llama-4:free")
        if h.kind == "ModelAdopted"
    ]
    assert len(adopted) == 1
    with catalog.reading() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(provider_models)
            .where(provider_models.c.model == "meta/llama-4:free")
        ).scalar_one()
    assert count == 1


def test_bad_commands_append_nothing(catalog: Catalog) -> None:
    before = catalog.store.last_position()
    with pytest.raises(UnknownProviderError):
        catalog.adopt_model(AdoptModel(provider="nope", workload="chat", model="m"))
    with pytest.raises(NotActiveError):
        catalog.retire_model(RetireModel(provider="groq", workload="chat", model="not-there"))
    assert catalog.store.last_position() == before


def test_roster_as_of_a_past_time(catalog: Catalog, clock: FakeClock) -> None:
    model = "llama-3.3-70b-versatile"
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model=model, priority=5))
    between = clock.now
    catalog.retire_model(RetireModel(provider="groq", workload="chat", model=model))
    then = catalog.roster_as_of(between, provider="groq", workload=Workload.CHAT)
    assert (model, 5, "active") in [(r.model, r.priority, r.status) for r in then]
    now = catalog.list_models(provider="groq", workload=Workload.CHAT)
    assert model not in [r.model for r in now]
    before_anything = catalog.roster_as_of(between.replace(year=2000))
    assert before_anything == []


def test_history_is_oldest_first_and_filtered(catalog: Catalog) -> None:
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="m-1", priority=3))
    catalog.retire_model(RetireModel(provider="groq", workload="chat", model="m-1", reason="bad"))
    entries = catalog.history(provider="groq", model="m-1")
    assert [e.kind for e in entries] == ["ModelAdopted", "ModelRetired"]
    assert entries[0].at < entries[1].at
    assert entries[1].details["reason"] == "bad"


def test_usage_stats_are_kept_per_provider_workload_and_model(catalog: Catalog) -> None:
    for latency, ok in [(100, True), (300, True), (900, False)]:
        catalog.log_usage(
            CallUsage(
                provider="groq",
                workload="chat",
                model="m",
                success=ok,
                latency_ms=latency,
                tokens=TokenUsage(prompt_tokens=10, completion_tokens=5),
            )
        )
    catalog.log_usage(
        CallUsage(provider="groq", workload="code", model="m", success=True, latency_ms=50)
    )
    chat = catalog.usage_stats("groq", Workload.CHAT)
    assert (chat.calls, chat.successes, chat.total_tokens) == (3, 2, 45)
    assert chat.avg_latency_ms == pytest.approx(1300 / 3)
    assert chat.success_rate == pytest.approx(200 / 3)
    assert catalog.usage_stats("groq").calls == 4
