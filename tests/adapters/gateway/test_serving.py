"""The gateway's router as `serve` wires it (`serving_router` over `start_serving`): a model
adopted by another process applies from its next request, on SQLite (the router looks at the
tables' positions) and on PostgreSQL (the log follower hears the append), ADR 0021.

The router would also reload on its own once `refresh_seconds` (0.5 s) went by since it last
looked; these requests follow each other faster than that, so only the wiring makes them pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from freegin_ai.adapters.bootstrap import start_serving
from freegin_ai.adapters.catalog import utc_now
from freegin_ai.adapters.gateway.server import serving_router
from freegin_ai.domain.chat import GenerateRequest
from tests.fakes.catalogs import catalog_with
from tests.fakes.provider_server import FakeProviderServer, Reply

WORKLOAD = "classification"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def adopt(url: str, model: str, priority: int) -> None:
    """Adopt as another process does: its own catalog, closed (its tables caught up)."""
    with catalog_with(url, utc_now, [("groq", WORKLOAD, model, priority)]):
        pass


@pytest.mark.anyio
async def test_the_gateway_router_applies_another_process_s_adoption_on_its_next_request(
    database_url: str, fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.script("c-old", Reply("old"))
    fake.script("c-new", Reply("new"))
    adopt(database_url, "c-old", 1)
    env = {
        "FREEGIN_DATABASE_URL": database_url,
        "FREEGIN_DATA_DIR": str(tmp_path / "data"),
        "FREEGIN_CONFIG_DIR": str(tmp_path / "config"),
        "FREEGIN_GROQ_BASE_URL": fake.openai_url,
        "GROQ_API_KEY": "gsk-serving-test",
    }
    parts = start_serving(env)
    router = serving_router(parts)
    request = GenerateRequest(prompt="p", workload=WORKLOAD)
    postgres = parts.catalog.store.dialect == "postgresql"
    try:
        while postgres and parts.follower.rounds == 0:  # listening (SQLite has nothing to hear)
            await anyio.sleep(0.01)
        notices = parts.follower.catalog_notices
        started = time.perf_counter()
        assert (await router.generate(request)).model == "c-old"
        adopt(database_url, "c-new", 0)
        if postgres:
            while parts.follower.catalog_notices == notices and time.perf_counter() - started < 5:
                await anyio.sleep(0.005)
        assert (await router.generate(request)).model == "c-new"
    finally:
        await router.aclose()
        await parts.aclose()
