"""The health read model: `model_health`, a cooldown per (provider, model) derived from usage.

The rules (backoff, which failures sideline a whole provider: the row whose model is '') are
the domain's health policy (domain/health.py). Out of credit (402) sidelines the provider, and
410 Gone the model, until a call succeeds or a person clears it (`ProviderCleared`): their
cooldown ends at UNTIL_CLEARED. A success clears the model's row and the provider's sideline.
Times come from the events, so a replay gives the same rows and every process agrees.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import Column, Integer, PrimaryKeyConstraint, Table, Text

from freegin_ai.domain.health import (
    NEUTRAL_KINDS,
    PROVIDER_WIDE_KINDS,
    UNTIL_CLEARED,
    UNTIL_CLEARED_KINDS,
    cooldown_seconds,
)
from freegin_ai.domain.topics import PROVIDER_CLEARED
from freegin_ai.projections import versions
from freegin_ai.projections.base import Key, KeyedRows, Row
from freegin_ai.projections.envelope import USAGE_TOPICS, Envelope
from freegin_ai.projections.tables import metadata

model_health = Table(
    "model_health",
    metadata,
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),  # '' = the provider as a whole
    Column("consecutive_failures", Integer, nullable=False),
    Column("cooldown_until", Text),
    Column("last_error_kind", Text),
    Column("last_error", Text),
    Column("last_failure_at", Text),
    Column("last_success_at", Text),
    PrimaryKeyConstraint("provider", "model"),
)


def _until(at: str, seconds: float) -> str:
    when = datetime.fromisoformat(at) + timedelta(seconds=seconds)
    return when.isoformat().replace("+00:00", "Z")


class HealthProjection(KeyedRows):
    """Keeps `model_health` from UsageLogged events."""

    name: ClassVar[str] = "health"
    version: ClassVar[int] = versions.HEALTH
    table = model_health
    key_columns = ("provider", "model")
    topics = USAGE_TOPICS | frozenset({PROVIDER_CLEARED})

    def key_of(self, event: Envelope) -> Key:
        return (event.state["provider"], event.state.get("model") or "")

    def keys_of(self, event: Envelope) -> tuple[Key, ...]:
        # A success also clears the provider-wide row; some failures set it.
        return (self.key_of(event), (event.state["provider"], ""))

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        s = event.state
        provider, model = s["provider"], s.get("model")
        if event.topic == PROVIDER_CLEARED:
            key = (provider, model or "")
            if key in rows:
                rows[key] = self._healthy(provider, model or "", rows[key]["last_success_at"])
            return
        if not model:
            return  # legacy rows without a model say nothing about a model's health
        if s["success"]:
            rows[(provider, model)] = self._healthy(provider, model, event.at)
            wide = rows.get((provider, ""))
            if wide is not None:
                rows[(provider, "")] = self._healthy(provider, "", event.at)
            return
        kind = s.get("error_kind") or "unknown"
        if kind in NEUTRAL_KINDS:
            return
        key = (provider, "") if kind in PROVIDER_WIDE_KINDS else (provider, model)
        row = rows.get(key) or self._healthy(key[0], key[1], None)
        row["consecutive_failures"] += 1
        if kind in UNTIL_CLEARED_KINDS:
            row["cooldown_until"] = UNTIL_CLEARED
        else:
            row["cooldown_until"] = _until(
                event.at, cooldown_seconds(row["consecutive_failures"], s.get("retry_after_s"))
            )
        row["last_error_kind"] = kind
        row["last_error"] = (s.get("error") or "")[:300] or None
        row["last_failure_at"] = event.at
        rows[key] = row

    @staticmethod
    def _healthy(provider: str, model: str, at: str | None) -> Row:
        return {
            "provider": provider,
            "model": model,
            "consecutive_failures": 0,
            "cooldown_until": None,
            "last_error_kind": None,
            "last_error": None,
            "last_failure_at": None,
            "last_success_at": at,
        }
