"""The log follower keeps the read tables within a second of what any process appends, on
PostgreSQL through LISTEN/NOTIFY; on SQLite it stays idle (writers catch up themselves)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.follower import LogFollower
from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.usage import CallUsage, usage_logged


def usage_rows(catalog: Catalog) -> int:
    """Rows in the read table as they are (no catch-up on the way)."""
    with catalog.store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM provider_usage").scalar() or 0)


def append_elsewhere(url: str, count: int) -> None:
    """Another writer appends usage and never catches the read tables up (as if killed)."""
    store = EventStore(url)
    try:
        store.append_new_streams(
            [
                usage_logged(
                    id=uuid.uuid4(),
                    at=datetime.now(UTC),
                    usage=CallUsage(
                        provider="groq", workload="chat", model="m", success=True, latency_ms=5
                    ),
                )
                for _ in range(count)
            ]
        )
    finally:
        store.close()


@pytest.mark.postgres
def test_appends_by_another_process_reach_the_read_tables_within_a_second(
    postgres_url: str,
) -> None:
    catalog = Catalog.open(postgres_url, seed=False)
    follower = LogFollower(catalog.store, catalog.projector.catch_up).start()
    try:
        time.sleep(0.2)  # listening
        append_elsewhere(postgres_url, 3)
        started = time.monotonic()
        while usage_rows(catalog) < 3 and time.monotonic() - started < 1.0:
            time.sleep(0.01)
        # Nobody here read through the catalog: the follower caught the tables up.
        assert usage_rows(catalog) == 3
    finally:
        follower.close()
        catalog.close()


def test_on_sqlite_the_follower_stays_idle(sqlite_url: str) -> None:
    catalog = Catalog.open(sqlite_url, seed=False)
    follower = LogFollower(catalog.store, catalog.projector.catch_up).start()
    assert not follower.active
    follower.close()
    catalog.close()
