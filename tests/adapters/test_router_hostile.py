"""The router against hostile providers over real HTTP: a dripping reply, an endless body, absurd
token counts and an empty answer are each one failed attempt, logged, and the next candidate
answers; the usage log stays within the domain's ranges (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import GenerateRequest, Router
from tests.conftest import FakeClock
from tests.fakes.catalogs import catalog_with, chat_roster
from tests.fakes.provider_server import Behaviour, Drip, Endless, FakeProviderServer, Reply

pytestmark = pytest.mark.anyio

KEY = "gsk-hostile-SECRET-13579"


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    with catalog_with(
        database_url, clock, chat_roster(("groq", "bad-1", 1), ("groq", "good-2", 2))
    ) as c:
        yield c


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (Drip(interval=0.3), "timeout: no complete reply within 1 s"),
        (Endless(), "reply larger than 200000 bytes"),
        (Reply("fine", prompt_tokens=2**70), "prompt_tokens must be from 0 to 1000000000"),
        (Reply("fine", completion_tokens=3_000_000_000), "must be from 0 to 1000000000"),
        (Reply(text=None), "empty answer"),
    ],
    ids=["drip", "endless", "2^70 tokens", "3e9 tokens", "null content"],
)
async def test_a_hostile_reply_is_one_failed_attempt_and_the_next_model_answers(
    catalog: Catalog, fake: FakeProviderServer, behaviour: Behaviour, expected: str
) -> None:
    fake.script("bad-1", behaviour)
    fake.script("good-2", Reply("the answer"))
    config = Config(timeout_seconds=1.0, max_reply_bytes=200_000)
    env = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": KEY}
    started = time.monotonic()
    async with Router(catalog, ProviderSet(config, env, {})) as router:
        result = await router.generate(GenerateRequest(prompt="hi"))

    assert time.monotonic() - started < 5.0
    assert (result.model, result.text) == ("good-2", "the answer")
    [failed, succeeded] = result.attempts
    assert failed.model == "bad-1" and not failed.success and succeeded.success
    assert expected in (failed.error or "")
    with catalog.reading() as conn:
        rows = conn.exec_driver_sql(
            "SELECT model, success, prompt_tokens FROM provider_usage ORDER BY id"
        ).all()
    # An empty answer still cost its tokens; a refused reply logs none.
    spent = 3 if isinstance(behaviour, Reply) and behaviour.text is None else None
    assert [tuple(r) for r in rows] == [("bad-1", 0, spent), ("good-2", 1, 3)]
    assert catalog.not_applied() == []
