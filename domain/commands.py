"""Commands: what a person or the router asks the catalog to do (imperative names)."""

from __future__ import annotations

from typing import Any

import msgspec


class AdoptModel(msgspec.Struct, frozen=True, kw_only=True):
    """Put a model into the roster, change its priority, or reinstate it."""

    provider: str
    workload: str
    model: str
    priority: int | None = None
    rationale: str | None = None
    metadata: dict[str, Any] | None = None
    source: str = "manual"


class RetireModel(msgspec.Struct, frozen=True, kw_only=True):
    """Take an active model out of the roster."""

    provider: str
    workload: str
    model: str
    reason: str = ""


class ProposeSuggestion(msgspec.Struct, frozen=True, kw_only=True):
    """Record (or refresh) a candidate model for review."""

    provider: str
    workload: str
    model: str
    rationale: str | None = None
    metadata: dict[str, Any] | None = None
    production_ready: bool | None = None
    notes: str | None = None
    provenance: dict[str, Any] | None = None


class RejectSuggestion(msgspec.Struct, frozen=True, kw_only=True):
    """Turn a suggestion down."""

    provider: str
    workload: str
    model: str
    reason: str = ""
