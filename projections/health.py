"""The health read model: `model_health`, a cooldown per (provider, model) derived from usage.

A failed call starts or lengthens a cooldown that doubles with each consecutive failure
(30 s, 60 s, 120 s, … up to an hour) and is never shorter than the provider's Retry-After.
Authentication failures sideline the whole provider (the row whose model is ''), also with a
growing cooldown. Out of credit (402) sidelines the provider, and 410 Gone the model, until a
call succeeds or a person clears it (`ProviderCleared`): their cooldown ends at UNTIL_CLEARED.
A success clears the model's row and the provider's sideline.
Times come from the events, so a replay gives the same rows and every process agrees.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import Column, Integer, PrimaryKeyConstraint, Table, Text

from freegin_ai.domain.topics import PROVIDER_CLEARED
from freegin_ai.projections import versions
from freegin_ai.projections.base import Key, KeyedRows, Row
from freegin_ai.projections.envelope import USAGE_TOPICS, Envelope
from freegin_ai.projections.tables import metadata

BASE_COOLDOWN_S = 30.0
MAX_COOLDOWN_S = 3600.0
PROVIDER_WIDE_KINDS = frozenset({"auth", "credit", "no_credentials"})
#: Failures that last until a success or a person clears them, not for a backoff.
UNTIL_CLEARED_KINDS = frozenset({"credit", "gone"})
#: The cooldown end of a sideline that waits for a success or a person.
UNTIL_CLEARED = "9999-12-31T23:59:59Z"
#: Failures that say nothing about the model's health (the request itself was wrong, or the
#: provider's filter withheld the answer to this prompt).
NEUTRAL_KINDS = frozenset({"bad_request", "filtered"})

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


def cooldown_seconds(consecutive_failures: int, retry_after_s: float | None) -> float:
    """Exponential backoff: 30 s doubled per consecutive failure, capped, at least Retry-After."""
    backoff = min(MAX_COOLDOWN_S, BASE_COOLDOWN_S * 2.0 ** max(0, consecutive_failures - 1))
    return max(backoff, float(retry_after_s or 0.0))


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
