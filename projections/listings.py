"""The listings read model: `model_listings`, what each provider lists, one row per model.

A row stays after its model is delisted (`listed` 0, `delisted_at` set), so `list-models`
and `status` can say since when an active model is gone. The row whose model is '' is the
provider's last sync (when, and how many models it listed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Float, Integer, PrimaryKeyConstraint, Table, Text, select

from freegin_ai.domain.model_info import ModelInfo
from freegin_ai.domain.topics import LISTING_SYNCED, MODEL_DELISTED, MODEL_LISTED
from freegin_ai.projections import versions
from freegin_ai.projections.base import Key, KeyedRows, Row, json_text
from freegin_ai.projections.envelope import LISTING_TOPICS, Envelope
from freegin_ai.projections.rows import metadata_of
from freegin_ai.projections.tables import metadata

model_listings = Table(
    "model_listings",
    metadata,
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),  # '' = the provider's last sync
    Column("listed", Integer, nullable=False),
    Column("context_window", Integer),
    Column("max_output_tokens", Integer),
    Column("supports_tools", Integer),
    Column("supports_json", Integer),
    Column("input_per_1k_micros", Float),
    Column("output_per_1k_micros", Float),
    Column("free", Integer),
    Column("pipeline_tag", Text),
    Column("info", Text),
    Column("first_listed_at", Text),
    Column("changed_at", Text),
    Column("delisted_at", Text),
    PrimaryKeyConstraint("provider", "model"),
)


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))


class ListingProjection(KeyedRows):
    """Keeps `model_listings` from ProviderListing events."""

    name: ClassVar[str] = "listings"
    version: ClassVar[int] = versions.LISTINGS
    table = model_listings
    key_columns = ("provider", "model")
    topics = LISTING_TOPICS

    def key_of(self, event: Envelope) -> Key:
        s = event.state
        return (s["provider"], s.get("model") or "")

    def fold(self, rows: dict[Key, Row], event: Envelope) -> None:
        s = event.state
        key = self.key_of(event)
        if event.topic == MODEL_LISTED:
            info = s.get("info") or {}
            old = rows.get(key)
            rows[key] = {
                "provider": s["provider"],
                "model": s["model"],
                "listed": 1,
                "context_window": info.get("context_window"),
                "max_output_tokens": info.get("max_output_tokens"),
                "supports_tools": _flag(info.get("supports_tools")),
                "supports_json": _flag(info.get("supports_json")),
                "input_per_1k_micros": info.get("input_per_1k_micros"),
                "output_per_1k_micros": info.get("output_per_1k_micros"),
                "free": _flag(info.get("free")),
                "pipeline_tag": info.get("pipeline_tag"),
                "info": json_text(info),
                "first_listed_at": (old or {}).get("first_listed_at") or event.at,
                "changed_at": event.at,
                "delisted_at": None,
            }
        elif event.topic == MODEL_DELISTED and key in rows:
            rows[key] |= {"listed": 0, "delisted_at": event.at, "changed_at": event.at}
        elif event.topic == LISTING_SYNCED:
            rows[key] = {c.name: None for c in model_listings.columns} | {
                "provider": s["provider"],
                "model": "",
                "listed": int(s.get("listed") or 0),
                "changed_at": event.at,
            }


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One model as its provider lists (or listed) it."""

    provider: str
    model: str
    listed: bool
    info: ModelInfo
    first_listed_at: str | None
    changed_at: str | None
    delisted_at: str | None


@dataclass(frozen=True, slots=True)
class SyncRow:
    """A provider's last sync."""

    provider: str
    listed: int
    synced_at: str


def list_listings(conn: Connection, *, provider: str | None = None) -> list[ListingRow]:
    """Listed and delisted models, by provider and model."""
    query = (
        select(model_listings)
        .where(model_listings.c.model != "")
        .order_by(model_listings.c.provider, model_listings.c.model)
    )
    if provider:
        query = query.where(model_listings.c.provider == provider)
    return [
        ListingRow(
            provider=r["provider"],
            model=r["model"],
            listed=bool(r["listed"]),
            info=ModelInfo.from_dict(metadata_of(r["info"])),
            first_listed_at=r["first_listed_at"],
            changed_at=r["changed_at"],
            delisted_at=r["delisted_at"],
        )
        for r in conn.execute(query).mappings()
    ]


def list_syncs(conn: Connection) -> list[SyncRow]:
    """Each synced provider's last sync."""
    query = (
        select(model_listings.c.provider, model_listings.c.listed, model_listings.c.changed_at)
        .where(model_listings.c.model == "")
        .order_by(model_listings.c.provider)
    )
    return [SyncRow(str(p), int(n), str(at)) for p, n, at in conn.execute(query)]
