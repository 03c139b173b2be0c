"""ProviderListing: what a provider says it serves, as synced from its model listing.

One stream per provider. A sync records only what changed since the last one: a model that
appeared or whose details changed is `ModelListed` (with its details), a model that is gone
is `ModelDelisted`, and every sync ends with `ListingSynced`. The details are plain data
(`ModelInfo.as_dict()`), checked before they are appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from freegin_ai.domain.errors import InvalidListingError
from freegin_ai.domain.model_info import ListingChanges, ModelInfo, check_info
from freegin_ai.domain.names import STREAM_NAMESPACE, check_model_name


def listing_id(provider: str) -> UUID:
    """The stream id of a provider's listing."""
    return uuid5(STREAM_NAMESPACE, f"listing\x1f{provider}")


class ProviderListing(Aggregate):
    """The models a provider lists, with their details."""

    class ListingStarted(Aggregate.Created):
        """A provider's listing was read for the first time."""

        provider: str

    class ListingEvent(Aggregate.Event):
        """Base of the listing events; carries the provider."""

        provider: str

    class ModelListed(ListingEvent):
        """The provider lists this model (new, or with changed details)."""

        model: str
        info: dict[str, Any]

        def apply(self, listing: Any) -> None:
            listing.models[self.model] = self.info

    class ModelDelisted(ListingEvent):
        """The provider no longer lists this model."""

        model: str

        def apply(self, listing: Any) -> None:
            listing.models.pop(self.model, None)

    class ListingSynced(ListingEvent):
        """A sync finished: the provider listed `listed` models, read from `source`."""

        listed: int
        source: str = ""

        def apply(self, listing: Any) -> None:
            listing.synced = True

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.models: dict[str, dict[str, Any]] = {}
        self.synced = False

    @classmethod
    def start(cls, provider: str, at: datetime) -> ProviderListing:
        """A provider's listing, before its first sync."""
        return cls._create(
            cls.ListingStarted, id=listing_id(provider), timestamp=at, provider=provider
        )

    def changes(self, models: Mapping[str, ModelInfo]) -> ListingChanges:
        """What recording `models` would change."""
        new, changed = [], []
        for model, info in sorted(models.items()):
            stored = self.models.get(model)
            if stored is None:
                new.append(model)
            elif stored != info.as_dict():
                changed.append(model)
        delisted = sorted(m for m in self.models if m not in models)
        return ListingChanges(tuple(new), tuple(changed), tuple(delisted))

    def record(
        self, models: Mapping[str, ModelInfo], *, source: str, at: datetime
    ) -> ListingChanges:
        """Record a fresh listing: what appeared or changed, what is gone, and the sync.

        An empty listing is refused: a provider that lists nothing is broken, not empty.
        """
        if not models:
            raise InvalidListingError(f"{self.provider} listed no models; nothing recorded")
        checked = {check_model_name(m): check_info(i) for m, i in models.items()}
        diff = self.changes(checked)
        for model in (*diff.new, *diff.changed):
            self.trigger_event(
                self.ModelListed,
                timestamp=at,
                provider=self.provider,
                model=model,
                info=checked[model].as_dict(),
            )
        for model in diff.delisted:
            self.trigger_event(
                self.ModelDelisted, timestamp=at, provider=self.provider, model=model
            )
        self.trigger_event(
            self.ListingSynced,
            timestamp=at,
            provider=self.provider,
            listed=len(checked),
            source=source,
        )
        return diff
