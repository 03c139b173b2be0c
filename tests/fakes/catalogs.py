"""Catalogs for tests: opened unseeded on a test database with a given roster, closed after."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel

#: (provider, workload, model, priority) of each model to adopt.
Roster = Iterable[tuple[str, str, str, int | None]]


@contextmanager
def catalog_with(url: str, clock: Callable[[], datetime], roster: Roster = ()) -> Iterator[Catalog]:
    """An unseeded catalog at `url` with `roster` adopted, closed when the block ends."""
    catalog = Catalog.open(url, clock=clock, seed=False)
    try:
        for provider, workload, model, priority in roster:
            catalog.adopt_model(
                AdoptModel(provider=provider, workload=workload, model=model, priority=priority)
            )
        yield catalog
    finally:
        catalog.close()


def chat_roster(*entries: tuple[str, str, int]) -> list[tuple[str, str, str, int | None]]:
    """(provider, model, priority) entries as a chat roster."""
    return [(provider, "chat", model, priority) for provider, model, priority in entries]
