"""ModelInfo: what a provider's listing says about one model, as plain checked data.

Kept apart from the ProviderListing aggregate so the read side and the router use it without
loading the event classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from freegin_ai.domain.errors import InvalidListingError


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """What a listing says about one model; None where it says nothing."""

    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool | None = None
    supports_json: bool | None = None
    #: Listed prices, micros (millionths of a dollar) per 1,000 tokens.
    input_per_1k_micros: float | None = None
    output_per_1k_micros: float | None = None
    free: bool | None = None
    #: Hugging Face Hub: the pipeline tag and tags (which API the model needs).
    pipeline_tag: str | None = None
    tags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The details as stored in events: only what is known, tags as a list."""
        data = {k: v for k, v in asdict(self).items() if v is not None and v != ()}
        if "tags" in data:
            data["tags"] = list(data["tags"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Read stored details back (unknown keys are ignored: newer code may add some)."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        if "tags" in known:
            known["tags"] = tuple(known["tags"])
        return cls(**known)


def check_info(info: ModelInfo) -> ModelInfo:
    """The details when every value has its type and is not negative, else InvalidListingError."""
    for name in ("context_window", "max_output_tokens"):
        value = getattr(info, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidListingError(f"{name} must be a whole number, got {value!r}")
        if value is not None and value < 0:
            raise InvalidListingError(f"{name} must not be negative")
    for name in ("input_per_1k_micros", "output_per_1k_micros"):
        value = getattr(info, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise InvalidListingError(f"{name} must be a non-negative number, got {value!r}")
    for name in ("supports_tools", "supports_json", "free"):
        value = getattr(info, name)
        if value is not None and not isinstance(value, bool):
            raise InvalidListingError(f"{name} must be true or false, got {value!r}")
    if info.pipeline_tag is not None and not isinstance(info.pipeline_tag, str):
        raise InvalidListingError("pipeline_tag must be text")
    if not all(isinstance(t, str) for t in info.tags):
        raise InvalidListingError("tags must be text")
    return info


@dataclass(frozen=True, slots=True)
class ListingChanges:
    """What a sync would record: new, changed and delisted models."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    delisted: tuple[str, ...]
