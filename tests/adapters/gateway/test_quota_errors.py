"""The gateway's answer when every candidate is out of free-tier quota: a 429 whose
Retry-After is the first reset, listing each skipped candidate and why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.gateway.routing import failure_error
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import Decision, NoCandidateError, Router, Skipped
from freegin_ai.domain.workloads import Workload

NOW = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def router(sqlite_url: str) -> Iterator[Router]:
    catalog = Catalog.open(sqlite_url, seed=False)
    yield Router(catalog, ProviderSet(Config(), {}, {}))
    catalog.close()


def test_every_candidate_out_of_quota_is_a_429_retrying_at_the_first_reset(router: Router) -> None:
    skipped = (
        Skipped("groq", "a", "quota: minute requests spent, back at 12:01:00 UTC",
                NOW + timedelta(seconds=30)),
        Skipped("google", "b", "quota: daily requests spent, back at 08:00 UTC",
                NOW + timedelta(hours=20)),
    )  # fmt: skip
    decision = Decision("catalog", Workload.CHAT, (), skipped)
    error = failure_error(router, NoCandidateError("no usable model", decision), NOW)
    assert error.status == 429
    assert dict(error.headers)["Retry-After"] == "30"
    assert [s["reason"] for s in error.extra["skipped"]] == [s.reason for s in skipped]
