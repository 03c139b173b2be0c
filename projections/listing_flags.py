"""Which active models their provider no longer lists: plain SQL and a pure function, so the
quick read (standard-library sqlite3, no SQLAlchemy) and the full path agree."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The columns `not_listed` needs, as plain SQL (the quick read runs it on sqlite3 too).
LISTING_FLAGS_SQL = "SELECT provider, model, listed, delisted_at, changed_at FROM model_listings"


def not_listed(
    listing_rows: Iterable[tuple[Any, ...]], pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Of the (provider, model) pairs, those a synced provider does not list, with since when.

    `listing_rows` are LISTING_FLAGS_SQL rows. A provider never synced flags nothing: no
    listing is not the same as an empty one.
    """
    synced: dict[str, str] = {}
    listed: set[tuple[str, str]] = set()
    gone: dict[tuple[str, str], str] = {}
    for provider, model, is_listed, delisted_at, changed_at in listing_rows:
        if model == "":
            synced[provider] = changed_at
        elif is_listed:
            listed.add((provider, model))
        elif delisted_at:
            gone[(provider, model)] = delisted_at
    flags = {}
    for pair in pairs:
        if pair[0] in synced and pair not in listed:
            flags[pair] = gone.get(pair) or synced[pair[0]]
    return flags
