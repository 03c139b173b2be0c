"""Routing policy: which (provider, model) to try for a request, in what order, and why others
were skipped; a pure function of a snapshot of the read side and the time.

Selection, as the guide says:
1. an explicit `model` is used as given: on the pinned provider, or on every configured
   provider whose catalog lists it;
2. a pinned `provider` is used as given (its active models for the workload, by priority),
   and only that provider unless `fallback` is set;
3. otherwise every active model for the workload is ranked: catalog priority first, then
   health (fewer consecutive failures), then cost per successful call. Suggestions on trial
   take about their percentage of requests, the same key always landing on the same arm.
A candidate cooling down after failures, on a sidelined provider, or whose free-tier quota
cannot take the request (the quota verdict the caller passes in, domain.quota, ADR 0014) is
skipped (explicit choices are not), with the time it is due back when that is known; a
provider that cannot be called here, or a model that cannot take the request at all (what the
caller's `cannot_take` says: its listed limits or features, missing labels), is always
skipped, explicit or not: sending it would only fail.

The adapter (`adapters/router.py`) loads the snapshot, calls `decide`, calls providers and
logs; nothing here does I/O, reads a clock or draws a random number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from freegin_ai.domain.errors import NoRouteError
from freegin_ai.domain.health import UNTIL_CLEARED
from freegin_ai.domain.topics import TRIAL
from freegin_ai.domain.workloads import Workload

#: Why a (provider, model) is out of quota now and when it is back, or None when it is not.
QuotaCheck = Callable[[str, str], "tuple[str, datetime | None] | None"]
#: Why a (provider, model) cannot take this request at all, or None when it can.
CapabilityCheck = Callable[[str, str], "str | None"]

EXPLICIT_MODEL = "explicit-model"
PINNED_PROVIDER = "pinned-provider"
CATALOG = "catalog"
CATALOG_TRIAL = "catalog-trial"
INCUMBENT = "incumbent"


@dataclass(frozen=True, slots=True)
class Listed:
    """An active roster entry as the router sees it."""

    provider: str
    model: str
    priority: int
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A (provider, model) resting after failures; model '' is the whole provider."""

    until: datetime
    consecutive_failures: int
    kind: str


@dataclass(frozen=True, slots=True)
class TrialArm:
    """A suggestion on trial, taking `percent` % of a workload's requests."""

    provider: str
    model: str
    percent: float


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """The read side the policy ranks with: roster, health, costs and trials, as plain data."""

    #: workload value → active entries
    roster: Mapping[str, tuple[Listed, ...]] = field(default_factory=dict)
    #: (provider, model) → cooldown; model '' for a sidelined provider
    cooldowns: Mapping[tuple[str, str], Cooldown] = field(default_factory=dict)
    #: (provider, model) → consecutive failures
    failures: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: (provider, model) → cost per successful call, in micros
    cost_per_success: Mapping[tuple[str, str], float] = field(default_factory=dict)
    #: workload value → trial arms
    trials: Mapping[str, tuple[TrialArm, ...]] = field(default_factory=dict)

    def listed(self, workload: str, provider: str, model: str) -> Listed | None:
        """The roster entry of a model, if the workload lists it on that provider."""
        for entry in self.roster.get(workload, ()):
            if entry.provider == provider and entry.model == model:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """What a request asks of routing; names are already canonical."""

    workload: Workload
    provider: str | None = None
    model: str | None = None
    fallback: bool = False
    #: Where a request lands among trial arms; the same key lands on the same arm.
    arm_key: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A (provider, model) the router may try, with what ranked it."""

    provider: str
    model: str
    priority: int
    consecutive_failures: int = 0
    cost_per_success_micros: float | None = None
    arm: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A (provider, model) the router did not try, and why."""

    provider: str
    model: str
    reason: str
    #: When it can be tried again, if that is known (a cooldown's end, a quota's reset).
    back_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """How the router chose: the mode, the candidates in order, and what it skipped."""

    mode: str  # explicit-model, pinned-provider, catalog or catalog-trial
    workload: Workload
    candidates: tuple[Candidate, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to a provider; `error` is already scrubbed of secrets."""

    provider: str
    model: str
    success: bool
    latency_ms: int
    error_kind: str | None = None
    error: str | None = None


def decide(
    route: Route,
    snapshot: RoutingSnapshot,
    *,
    now: datetime,
    unavailable: Mapping[str, str] | None = None,
    configured_models: Mapping[str, tuple[str, ...]] | None = None,
    quota: QuotaCheck | None = None,
    cannot_take: CapabilityCheck | None = None,
) -> Decision:
    """The candidates for a request, in the order to try them, and what was skipped.

    `unavailable` says why a provider cannot be called here (no key, disabled, ...);
    `configured_models` lists, per provider, the models config.toml says it serves; `quota`
    says why a (provider, model) is out of free-tier quota now and when it is back, or None;
    `cannot_take` says why a (provider, model) cannot take the request at all (checked for
    explicit choices too). Raises NoRouteError when an explicit choice names nothing that
    exists.
    """
    cannot = unavailable or {}
    workload = route.workload
    rows = snapshot.roster.get(workload.value, ())
    skipped: list[Skipped] = []

    def candidate(provider: str, model: str, priority: int) -> Candidate:
        return Candidate(
            provider=provider,
            model=model,
            priority=priority,
            consecutive_failures=snapshot.failures.get((provider, model), 0),
            cost_per_success_micros=snapshot.cost_per_success.get((provider, model)),
        )

    def usable(c: Candidate, explicit: bool) -> bool:
        why = cannot.get(c.provider)
        back_at: datetime | None = None
        if why is None and cannot_take is not None:
            why = cannot_take(c.provider, c.model)
        if why is None and not explicit:
            # Cooling down and out of quota: the later return is the one to tell.
            cooling = cooling_reason(snapshot.cooldowns, c.provider, c.model, now)
            if cooling is not None:
                why, back_at = cooling
            spent = quota(c.provider, c.model) if quota is not None else None
            if spent is not None and (
                back_at is None or (spent[1] is not None and spent[1] > back_at)
            ):
                why, back_at = spent
        if why is not None:
            skipped.append(Skipped(c.provider, c.model, why, back_at))
            return False
        return True

    pinned = route.provider
    if route.model:
        model = route.model.strip()
        if pinned:
            providers = [pinned]
        else:
            listed = {e.provider for es in snapshot.roster.values() for e in es if e.model == model}
            configured = {p for p, models in (configured_models or {}).items() if model in models}
            providers = sorted(listed | configured)
            if not providers:
                raise NoRouteError(
                    f"no provider in the catalog or config.toml serves model {model!r}; "
                    "pin one with --provider"
                )
        priorities = {e.provider: e.priority for e in rows if e.model == model}
        found = [candidate(p, model, priorities.get(p, 0)) for p in providers]
        chosen = [c for c in found if usable(c, explicit=pinned is not None)]
        return Decision(EXPLICIT_MODEL, workload, tuple(chosen), tuple(skipped))

    found = [candidate(e.provider, e.model, e.priority) for e in rows]
    if pinned and not any(c.provider == pinned for c in found):
        raise NoRouteError(
            f"provider {pinned!r} has no active model for workload {workload.value!r}; "
            f"adopt one with `freegin-ai adopt-model {pinned} MODEL --workload "
            f"{workload.value}`"
        )
    ranked = sorted(found, key=rank)
    if pinned:
        first = [c for c in ranked if c.provider == pinned]
        rest = [c for c in ranked if c.provider != pinned] if route.fallback else []
        ordered = first + rest
        mode = PINNED_PROVIDER
    else:
        ordered, mode = ranked, CATALOG
        trials = snapshot.trials.get(workload.value)
        if trials:
            ordered = with_trial_arm(ordered, trials, route.arm_key, candidate)
            mode = CATALOG_TRIAL if ordered and ordered[0].arm == TRIAL else mode
    chosen = [c for c in ordered if usable(c, explicit=False)]
    return Decision(mode, workload, tuple(chosen), tuple(skipped))


def rank(c: Candidate) -> tuple[int, int, float, str, str]:
    """Priority, then fewer consecutive failures, then cheaper per success, then by name."""
    cost = c.cost_per_success_micros
    return (
        c.priority,
        c.consecutive_failures,
        cost if cost is not None else 0.0,
        c.provider,
        c.model,
    )


def arm_point(key: str) -> float:
    """A stable point in [0, 100) for a request key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def with_trial_arm(
    incumbents: list[Candidate],
    trials: tuple[TrialArm, ...],
    arm_key: str,
    candidate: Callable[[str, str, int], Candidate],
) -> list[Candidate]:
    """Send about `percent` % of requests to each trial model, the same key to the same arm.

    The trial model goes first and the incumbents follow as fallback; every candidate is
    labelled with its arm so `stats` can compare them. `candidate(provider, model, priority)`
    builds a Candidate with the snapshot's health and cost.
    """
    point = arm_point(arm_key)
    cumulative = 0.0
    chosen: Candidate | None = None
    for arm in sorted(trials, key=lambda t: (t.provider, t.model, t.percent)):
        cumulative += arm.percent
        if point < cumulative:
            chosen = replace(candidate(arm.provider, arm.model, -1), arm=TRIAL)
            break
    rest = [replace(c, arm=INCUMBENT) for c in incumbents]
    if chosen is None:
        return rest
    return [
        chosen,
        *(c for c in rest if (c.provider, c.model) != (chosen.provider, chosen.model)),
    ]


def cooling_reason(
    cooldowns: Mapping[tuple[str, str], Cooldown], provider: str, model: str, now: datetime
) -> tuple[str, datetime | None] | None:
    """Why a model is resting at `now` (its provider sidelined, or itself cooling) and when
    it is back (None for a sideline that waits for a success or a person), or None."""
    for key, what in (((provider, ""), "provider sidelined"), ((provider, model), "cooling down")):
        entry = cooldowns.get(key)
        if entry is not None and entry.until > now:
            if entry.until >= _UNTIL_CLEARED:
                return sidelined_reason(provider, model, entry.kind), None
            failures = entry.consecutive_failures
            return (
                f"{what} until {entry.until.strftime('%H:%M:%S')} UTC after {failures} "
                f"consecutive failure{'s' if failures != 1 else ''} ({entry.kind})",
                entry.until,
            )
    return None


_UNTIL_CLEARED = datetime.fromisoformat(UNTIL_CLEARED)


def sidelined_reason(provider: str, model: str, kind: str) -> str:
    """Why a provider (402) or a model (410) waits for a success or a person."""
    if kind == "gone":
        return (
            f"gone (410): retirement proposed; `freegin-ai retire-model {provider} {model}`, "
            f"or `freegin-ai clear-provider {provider} --model {model}` to try it again"
        )
    return (
        "provider sidelined: out of credit (402) until a call succeeds or "
        f"`freegin-ai clear-provider {provider}`"
    )


def no_usable_model(decision: Decision) -> str:
    """The message when a decision left nothing to try."""
    reasons = "; ".join(f"{s.provider}/{s.model}: {s.reason}" for s in decision.skipped)
    return f"no usable model for workload {decision.workload.value!r}" + (
        f" ({reasons})" if reasons else " (the catalog has none)"
    )
