"""Commands: what a person or the router asks the catalog to do (imperative names).

A command checks its names where it is made: the provider becomes its canonical name, the
workload its stored name and the model its stripped identifier, or making the command raises
a DomainError. Handlers and the CLI take them as they are.
"""

from __future__ import annotations

from typing import Any

import msgspec

from freegin_ai.domain.names import check_model_name, check_priority
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.workloads import Workload


def _canonical(command: Any, *, strict_model: bool) -> None:
    """Set a frozen command's names to their canonical form (raising on a bad one)."""
    force = msgspec.structs.force_setattr
    force(command, "provider", parse_provider(command.provider))
    force(command, "workload", Workload.parse(command.workload).value)
    # Retiring or rejecting names an existing stream: any spelling it was stored under goes.
    model = check_model_name(command.model) if strict_model else command.model.strip()
    force(command, "model", model)


class AdoptModel(msgspec.Struct, frozen=True, kw_only=True):
    """Put a model into the roster, change its priority, or reinstate it."""

    provider: str
    workload: str
    model: str
    priority: int | None = None
    rationale: str | None = None
    metadata: dict[str, Any] | None = None
    source: str = "manual"

    def __post_init__(self) -> None:
        if self.priority is not None:
            check_priority(self.priority)
        _canonical(self, strict_model=True)


class RetireModel(msgspec.Struct, frozen=True, kw_only=True):
    """Take an active model out of the roster."""

    provider: str
    workload: str
    model: str
    reason: str = ""

    def __post_init__(self) -> None:
        _canonical(self, strict_model=False)


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

    def __post_init__(self) -> None:
        _canonical(self, strict_model=True)


class RejectSuggestion(msgspec.Struct, frozen=True, kw_only=True):
    """Turn a suggestion down."""

    provider: str
    workload: str
    model: str
    reason: str = ""

    def __post_init__(self) -> None:
        _canonical(self, strict_model=False)
