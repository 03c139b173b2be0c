"""The routing policy as a pure function: given a snapshot and the time, when a request comes,
then these candidates in this order, and these skipped with these reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from freegin_ai.domain.errors import NoRouteError
from freegin_ai.domain.routing import (
    Cooldown,
    Listed,
    Route,
    RoutingSnapshot,
    TrialArm,
    arm_point,
    decide,
)
from freegin_ai.domain.workloads import Workload

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CHAT = Workload.CHAT


def snapshot(**extra: object) -> RoutingSnapshot:
    roster = {
        "chat": (
            Listed("groq", "g-slow", 30),
            Listed("groq", "g-fast", 10),
            Listed("google", "gem", 20),
        )
    }
    return RoutingSnapshot(roster=roster, **extra)  # type: ignore[arg-type]


def order(decision: object) -> list[str]:
    return [f"{c.provider}/{c.model}" for c in decision.candidates]  # type: ignore[attr-defined]


def test_catalog_mode_ranks_by_priority_then_failures_then_cost() -> None:
    # given two equal priorities, one failing more, one cheaper
    snap = RoutingSnapshot(
        roster={"chat": (Listed("groq", "a", 5), Listed("groq", "b", 5), Listed("groq", "c", 5))},
        failures={("groq", "a"): 2},
        cost_per_success={("groq", "b"): 900.0, ("groq", "c"): 100.0},
    )
    # when routing a plain request
    decision = decide(Route(workload=CHAT), snap, now=NOW)
    # then the healthy cheap one leads and the failing one trails
    assert decision.mode == "catalog"
    assert order(decision) == ["groq/c", "groq/b", "groq/a"]


def test_a_cooling_model_and_a_sidelined_provider_are_skipped_with_reasons() -> None:
    # given gem cooling down and the whole groq provider sidelined until later
    later = NOW + timedelta(minutes=5)
    snap = snapshot(
        cooldowns={
            ("google", "gem"): Cooldown(later, 2, "server"),
            ("groq", ""): Cooldown(later, 1, "auth"),
        }
    )
    # when routing
    decision = decide(Route(workload=CHAT), snap, now=NOW)
    # then nothing is left, and each skip says why
    assert decision.candidates == ()
    reasons = {s.model: s.reason for s in decision.skipped}
    assert reasons["gem"] == "cooling down until 12:05:00 UTC after 2 consecutive failures (server)"
    assert reasons["g-fast"].startswith("provider sidelined until 12:05:00 UTC after 1 ")


def test_an_expired_cooldown_no_longer_skips() -> None:
    snap = snapshot(cooldowns={("google", "gem"): Cooldown(NOW, 3, "timeout")})
    assert "google/gem" in order(decide(Route(workload=CHAT), snap, now=NOW))


def test_an_unavailable_provider_is_skipped_even_when_pinned_explicitly() -> None:
    decision = decide(
        Route(workload=CHAT, provider="groq", model="g-fast"),
        snapshot(),
        now=NOW,
        unavailable={"groq": "no API key"},
    )
    assert decision.candidates == () and decision.skipped[0].reason == "no API key"


def test_an_explicit_model_on_a_pinned_provider_ignores_cooldowns() -> None:
    snap = snapshot(cooldowns={("groq", "g-fast"): Cooldown(NOW + timedelta(hours=1), 4, "x")})
    decision = decide(Route(workload=CHAT, provider="groq", model="g-fast"), snap, now=NOW)
    assert decision.mode == "explicit-model" and order(decision) == ["groq/g-fast"]


def test_a_model_that_cannot_take_the_request_is_skipped_even_when_pinned_explicitly() -> None:
    # given g-fast's listing says it cannot take this request, and its quota is spent
    def cannot_take(provider: str, model: str) -> str | None:
        return "does not support tools (per its listing)" if model == "g-fast" else None

    def spent(provider: str, model: str) -> tuple[str, datetime | None]:
        return "quota: spent", NOW + timedelta(hours=1)

    # when it is asked for by name, then it is skipped for what it cannot take (quota is not
    # checked for an explicit choice)
    explicit = decide(Route(workload=CHAT, provider="groq", model="g-fast"), snapshot(),
                      now=NOW, cannot_take=cannot_take, quota=spent)  # fmt: skip
    assert explicit.candidates == ()
    assert [(s.model, s.reason, s.back_at) for s in explicit.skipped] == [
        ("g-fast", "does not support tools (per its listing)", None)
    ]
    # and in catalog mode that reason wins over the quota's too: it is not due back
    ranked = decide(Route(workload=CHAT), snapshot(), now=NOW, cannot_take=cannot_take)
    assert order(ranked) == ["google/gem", "groq/g-slow"]
    assert [s.model for s in ranked.skipped] == ["g-fast"]


def test_an_explicit_model_goes_to_every_provider_listing_or_configuring_it() -> None:
    decision = decide(
        Route(workload=CHAT, model="gem"),
        snapshot(),
        now=NOW,
        configured_models={"openrouter": ("gem",), "groq": ("other",)},
    )
    assert order(decision) == ["google/gem", "openrouter/gem"]


def test_an_explicit_model_nobody_serves_is_refused() -> None:
    with pytest.raises(NoRouteError, match=r"no provider in the catalog or config\.toml"):
        decide(Route(workload=CHAT, model="nowhere"), snapshot(), now=NOW)


def test_a_pinned_provider_goes_alone_unless_fallback() -> None:
    alone = decide(Route(workload=CHAT, provider="google"), snapshot(), now=NOW)
    assert order(alone) == ["google/gem"]
    with_rest = decide(Route(workload=CHAT, provider="google", fallback=True), snapshot(), now=NOW)
    assert order(with_rest) == ["google/gem", "groq/g-fast", "groq/g-slow"]


def test_a_pinned_provider_without_models_is_refused() -> None:
    with pytest.raises(NoRouteError, match="adopt one with"):
        decide(Route(workload=CHAT, provider="cerebras"), snapshot(), now=NOW)


def test_a_trial_arm_takes_its_share_and_the_same_key_lands_on_the_same_arm() -> None:
    snap = snapshot(trials={"chat": (TrialArm("groq", "newbie", 50.0),)})
    keys = [f"k{i}" for i in range(400)]
    modes = [decide(Route(workload=CHAT, arm_key=k), snap, now=NOW).mode for k in keys]
    on_trial = modes.count("catalog-trial")
    assert 150 < on_trial < 250  # about half
    for key in keys[:20]:
        first = decide(Route(workload=CHAT, arm_key=key), snap, now=NOW)
        again = decide(Route(workload=CHAT, arm_key=key), snap, now=NOW)
        assert first == again
        expected = "catalog-trial" if arm_point(key) < 50 else "catalog"
        assert first.mode == expected
    trial = next(
        decide(Route(workload=CHAT, arm_key=k), snap, now=NOW) for k in keys if arm_point(k) < 50
    )
    assert order(trial)[0] == "groq/newbie"
    assert [c.arm for c in trial.candidates] == ["trial", "incumbent", "incumbent", "incumbent"]
