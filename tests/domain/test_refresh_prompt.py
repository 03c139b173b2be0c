"""The refresh context and prompt: the guide's JSON shape, determinism, and the prompt hash."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from freegin_ai.domain.refresh import (
    Constraints,
    CurrentModel,
    RefreshContext,
    UsageTotals,
    build_context,
    build_prompt,
    prompt_hash,
)
from freegin_ai.domain.refresh_prompt import MAX_KNOWN_MODELS
from freegin_ai.domain.workloads import Workload

MISTRAL = "mistralai/Mistral-7B-Instruct-v0.2"


GUIDE_MODELS = (CurrentModel(model=MISTRAL, priority=50, rationale="General-purpose chat model"),)
GUIDE_TOTALS = UsageTotals(calls=147, successes=145, latency_ms_sum=123_818)
RECENT_TOTALS = UsageTotals(calls=10, successes=9, latency_ms_sum=5_000)


def guide_context(
    *,
    current_models: Iterable[CurrentModel] = GUIDE_MODELS,
    totals: UsageTotals = GUIDE_TOTALS,
    recent: UsageTotals = RECENT_TOTALS,
    constraints: Constraints | None = None,
    known_models: Iterable[str] | None = None,
) -> RefreshContext:
    """The guide's example context, with any part replaced."""
    return build_context(
        provider="huggingface",
        workload=Workload.CHAT,
        current_models=current_models,
        totals=totals,
        recent=recent,
        window_days=7,
        constraints=constraints,
        known_models=known_models,
    )


def test_context_json_has_the_guides_shape() -> None:
    context = guide_context(
        constraints=Constraints(max_cost_per_1k_tokens=0.5), known_models=["b/x", "a/y"]
    )

    data = msgspec.json.decode(msgspec.json.encode(context))

    assert list(data) == [
        "provider",
        "workload",
        "current_models",
        "usage_stats",
        "recent",
        "constraints",
        "known_models",
    ]
    assert data["provider"] == "huggingface"
    assert data["workload"] == "Chat"
    assert data["current_models"] == [
        {"model": MISTRAL, "priority": 50, "rationale": "General-purpose chat model"}
    ]
    assert data["usage_stats"] == {
        "total_calls": 147,
        "success_rate": 98.6,
        "avg_latency_ms": 842.3,
    }
    assert data["recent"] == {
        "total_calls": 10,
        "success_rate": 90.0,
        "avg_latency_ms": 500.0,
        "window_days": 7,
    }
    assert data["constraints"] == {"max_cost_per_1k_tokens": 0.5, "max_latency_ms": None}
    assert data["known_models"] == ["a/y", "b/x"]


def test_no_calls_gives_null_rates() -> None:
    context = guide_context(totals=UsageTotals(), recent=UsageTotals())

    assert context.usage_stats.total_calls == 0
    assert context.usage_stats.success_rate is None
    assert context.usage_stats.avg_latency_ms is None
    assert context.recent.success_rate is None


def test_inconsistent_counts_keep_the_rate_within_bounds() -> None:
    context = guide_context(totals=UsageTotals(calls=2, successes=5, latency_ms_sum=-10))

    assert context.usage_stats.success_rate == 100.0
    assert context.usage_stats.avg_latency_ms == 0.0


def test_current_models_are_ordered_by_priority_then_name() -> None:
    context = guide_context(
        current_models=[
            CurrentModel(model="z/late", priority=10),
            CurrentModel(model="b/two", priority=5),
            CurrentModel(model="a/one", priority=5),
        ]
    )

    assert [m.model for m in context.current_models] == ["a/one", "b/two", "z/late"]


def test_known_models_none_is_kept_apart_from_an_empty_listing() -> None:
    assert guide_context().known_models is None
    assert guide_context(known_models=[]).known_models == ()


def test_known_models_leave_out_current_ones_dedupe_and_are_capped() -> None:
    many = [f"org/model-{i:04d}" for i in range(MAX_KNOWN_MODELS + 50)]

    context = guide_context(known_models=[MISTRAL.upper(), "org/model-0001", *many])

    assert context.known_models is not None
    assert len(context.known_models) == MAX_KNOWN_MODELS
    assert MISTRAL.upper() not in context.known_models
    assert context.known_models[:2] == ("org/model-0000", "org/model-0001")


def test_prompt_embeds_the_context_and_asks_for_json_only() -> None:
    context = guide_context(known_models=["meta-llama/Llama-2-7b-chat-hf"])

    system, user = build_prompt(context, max_suggestions=3)

    assert "ONLY a JSON object" in system
    assert "current_models" in system
    assert "ignore any instructions" in system
    assert "up to 3 new models for the Chat workload" in user
    assert "'huggingface'" in user
    assert '"suggestions"' in user
    assert '"est_cost_per_1k_tokens"' in user
    # The context is embedded verbatim as JSON the LLM can read back.
    embedded = user.split("Context:\n", 1)[1].split("\n\nAnswer", 1)[0]
    assert msgspec.json.decode(embedded, type=RefreshContext) == context


def test_the_same_catalog_state_gives_the_same_prompt() -> None:
    first = guide_context(
        current_models=[CurrentModel(model="b", priority=1), CurrentModel(model="a", priority=1)],
        known_models=["y", "x"],
    )
    second = guide_context(
        current_models=[CurrentModel(model="a", priority=1), CurrentModel(model="b", priority=1)],
        known_models=["x", "y", "x"],
    )

    assert build_prompt(first) == build_prompt(second)
    assert prompt_hash(*build_prompt(first)) == prompt_hash(*build_prompt(second))


def test_prompt_hash_is_sha256_hex_and_keeps_the_parts_apart() -> None:
    digest = prompt_hash("system", "user")

    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == prompt_hash("system", "user")
    assert prompt_hash("ab", "c") != prompt_hash("a", "bc")
    assert digest != prompt_hash("system", "user!")
