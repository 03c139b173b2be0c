"""The projector: replay equals incremental, exactly-once positions, no half-written batches."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import OperationalError

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion, RejectSuggestion, RetireModel
from freegin_ai.domain.usage import CallUsage, TokenUsage, usage_logged
from freegin_ai.projections.envelope import ROSTER_TOPICS, Envelope
from freegin_ai.projections.projector import Projector
from freegin_ai.projections.tables import (
    projection_state,
    provider_model_suggestions,
    provider_models,
    provider_usage,
    provider_usage_stats,
)
from tests.conftest import FakeClock

TABLES = (provider_models, provider_model_suggestions, provider_usage, provider_usage_stats)


def dump(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    columns = list(table.c)
    return [tuple(r) for r in conn.execute(select(*columns).order_by(*columns))]


def snapshot(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    with catalog.reading() as conn:
        return {t.name: dump(conn, t) for t in TABLES}


@pytest.fixture
def busy_catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    """A catalog with every kind of event in its log, projected incrementally."""
    c = Catalog.open(database_url, clock=clock)
    c.adopt_model(AdoptModel(provider="groq", workload="chat", model="a-1", priority=5))
    c.adopt_model(AdoptModel(provider="groq", workload="chat", model="a-1", priority=7))
    c.retire_model(RetireModel(provider="groq", workload="chat", model="a-1", reason="x"))
    c.adopt_model(AdoptModel(provider="groq", workload="chat", model="a-1", rationale="back"))
    c.propose(
        [
            ProposeSuggestion(provider="hf", workload="code", model="s/one", rationale="r1"),
            ProposeSuggestion(provider="hf", workload="code", model="s/two", metadata={"k": 1}),
        ]
    )
    c.propose([ProposeSuggestion(provider="hf", workload="code", model="s/one", rationale="r2")])
    c.reject_suggestion(RejectSuggestion(provider="hf", workload="code", model="s/two"))
    for i in range(30):
        c.log_usage(
            CallUsage(
                provider="groq",
                workload="chat" if i % 3 else "code",
                model="a-1",
                success=i % 4 != 0,
                latency_ms=40 * i,
                tokens=TokenUsage(prompt_tokens=i, completion_tokens=2 * i),
                total_cost_micros=i,
            )
        )
    c.projector.catch_up()
    yield c
    c.close()


def test_replay_gives_the_same_rows_as_incremental_projection(busy_catalog: Catalog) -> None:
    before = snapshot(busy_catalog)
    assert all(before[t.name] for t in TABLES)
    report = busy_catalog.replay()
    assert report.equal
    assert report.events == busy_catalog.store.last_position()
    assert snapshot(busy_catalog) == before


def test_replay_reports_and_repairs_a_tampered_table(busy_catalog: Catalog) -> None:
    before = snapshot(busy_catalog)
    with busy_catalog.store.engine.begin() as conn:
        conn.execute(provider_models.update().values(priority=999))
    report = busy_catalog.replay()
    assert not report.equal
    assert [c.table for c in report.tables if not c.equal] == ["provider_models"]
    assert snapshot(busy_catalog) == before


def test_processing_a_position_twice_changes_nothing(busy_catalog: Catalog) -> None:
    before = snapshot(busy_catalog)
    assert busy_catalog.projector.catch_up() == 0
    # A second projector that read the positions before the first applied the batch:
    stale = {name: 0 for name in busy_catalog.projector.positions()}
    events = busy_catalog.store.read(0, 10_000)
    with (
        pytest.raises(Exception, match=r"roster|suggestions|usage"),
        busy_catalog.store.engine.begin() as conn,
    ):
        busy_catalog.projector._apply_batch(conn, stale, events)
    assert snapshot(busy_catalog) == before


def _storage_failure() -> OperationalError:
    return OperationalError("INSERT INTO somewhere", {}, Exception("boom: disk I/O error"))


class ExplodingProjection:
    """Writes nothing itself and fails as the database does (not the event's fault): the
    batch's other rows must roll back with it."""

    name: ClassVar[str] = "exploding"
    version: ClassVar[int] = 1
    topics: ClassVar[frozenset[str]] = ROSTER_TOPICS

    @property
    def tables(self) -> tuple[Table, ...]:
        return ()

    def apply(self, conn: Connection, events: Sequence[Envelope]) -> None:
        raise _storage_failure()

    def rebuild_batch(self, conn: Connection, events: Sequence[Envelope]) -> list[Any]:
        raise _storage_failure()

    def finish_rebuild(self, conn: Connection) -> None:
        raise _storage_failure()

    def abandon_rebuild(self) -> None:
        pass


def test_a_failure_mid_batch_leaves_nothing_half_written(
    database_url: str, clock: FakeClock
) -> None:
    catalog = Catalog.open(database_url, clock=clock)
    try:
        before = snapshot(catalog)
        positions = catalog.projector.positions()
        catalog.store.save(*_adoption_events(clock))
        exploding = Projector(
            catalog.store.engine,
            catalog.store,
            [*catalog.projector.projections, ExplodingProjection()],
        )
        exploding.create_tables()
        with catalog.store.engine.begin() as conn:
            conn.execute(
                projection_state.update()
                .where(projection_state.c.name == "exploding")
                .values(position=positions["roster"], version=1)
            )
        with pytest.raises(OperationalError, match="boom"):
            exploding.catch_up()
        # Neither the roster rows nor any position moved.
        with catalog.store.engine.connect() as conn:
            assert {t.name: dump(conn, t) for t in TABLES} == before
        assert catalog.projector.positions() == {**positions, "exploding": positions["roster"]}
    finally:
        catalog.close()


def _adoption_events(clock: FakeClock) -> list[Any]:
    from freegin_ai.domain.roster import RosterEntry

    entry = RosterEntry.adopt(
        provider="groq",
        workload="code",
        model="z-1",
        priority=1,
        rationale=None,
        metadata=None,
        source="manual",
        at=clock(),
    )
    return [entry]


def test_an_outdated_projection_is_rebuilt_on_start(database_url: str, clock: FakeClock) -> None:
    catalog = Catalog.open(database_url, clock=clock)
    try:
        before = snapshot(catalog)
        with catalog.store.engine.begin() as conn:
            conn.execute(provider_models.delete())
            conn.execute(
                projection_state.update()
                .where(projection_state.c.name == "roster")
                .values(version=0)
            )
    finally:
        catalog.close()
    seen: list[tuple[int, int]] = []
    reopened = Catalog.open(database_url, clock=clock, progress=lambda d, t: seen.append((d, t)))
    try:
        assert snapshot(reopened) == before
        assert seen and seen[-1][0] == seen[-1][1]
    finally:
        reopened.close()


def test_a_version_bump_recreates_tables_whose_columns_changed(
    database_url: str, clock: FakeClock
) -> None:
    catalog = Catalog.open(database_url, clock=clock)
    try:
        before = snapshot(catalog)
        with catalog.store.engine.begin() as conn:
            # What an older version of the code might have left: another column set.
            conn.exec_driver_sql("ALTER TABLE provider_models ADD COLUMN obsolete TEXT")
            conn.execute(
                projection_state.update()
                .where(projection_state.c.name == "roster")
                .values(version=99)
            )
    finally:
        catalog.close()
    reopened = Catalog.open(database_url, clock=clock)
    try:
        with reopened.store.engine.connect() as conn:
            columns = [
                row[1] if reopened.store.dialect == "sqlite" else row[0]
                for row in conn.exec_driver_sql(
                    "PRAGMA table_info(provider_models)"
                    if reopened.store.dialect == "sqlite"
                    else "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'provider_models'"
                )
            ]
        assert "obsolete" not in columns
        assert snapshot(reopened) == before
    finally:
        reopened.close()


def test_usage_stats_folded_in_batches_equal_a_replay(database_url: str, clock: FakeClock) -> None:
    """Batches of many events per row (with and without time to first token, unknown token
    counts, failures) fold to the rows a replay builds."""
    rng = random.Random(7)
    c = Catalog.open(database_url, clock=clock, seed=False)
    try:
        for _ in range(6):
            events = []
            for _ in range(rng.randint(1, 40)):
                streamed = rng.random() < 0.5
                usage = CallUsage(
                    provider=rng.choice(["groq", "google"]),
                    workload=rng.choice(["chat", "code"]),
                    model=rng.choice(["m-1", "m-2"]),
                    success=rng.random() < 0.8,
                    latency_ms=rng.randint(0, 70_000),
                    tokens=TokenUsage(
                        prompt_tokens=rng.choice([None, rng.randint(0, 900)]),
                        completion_tokens=rng.randint(0, 900),
                        cached_tokens=rng.choice([None, 3]),
                    ),
                    total_cost_micros=rng.choice([None, rng.randint(0, 99)]),
                    ttft_ms=rng.randint(0, 9_000) if streamed else None,
                    streamed=streamed,
                )
                events.append(usage_logged(id=uuid.uuid4(), at=clock(), usage=usage))
            c.store.append_new_streams(events)
            clock.now += timedelta(seconds=rng.choice([1, 3_600, 86_400]))
            c.projector.catch_up()  # each chunk in one batch, onto the rows the last left
        before = snapshot(c)
        assert len(before["provider_usage_stats"]) > 4
        assert c.replay().equal
        assert snapshot(c) == before
    finally:
        c.close()


@pytest.mark.parametrize("one_at_a_time", [True, False])
def test_usage_stats_add_up_as_the_events_say(
    database_url: str, clock: FakeClock, one_at_a_time: bool
) -> None:
    calls = [  # latency, success, prompt tokens, completion tokens, cost, time to first token
        (120, True, 10, 1, 5, None),
        (40, False, None, 2, None, 30),
        (900, True, 5, 3, 7, 12),
    ]
    c = Catalog.open(database_url, clock=clock, seed=False)
    try:
        stamps = []
        for latency, success, prompt, completion, cost, ttft in calls:
            stamps.append(clock())
            usage = CallUsage(
                provider="groq", workload="chat", model="m", success=success, latency_ms=latency,
                tokens=TokenUsage(prompt_tokens=prompt, completion_tokens=completion),
                total_cost_micros=cost, ttft_ms=ttft, streamed=ttft is not None,
            )  # fmt: skip
            c.store.append_new_streams([usage_logged(id=uuid.uuid4(), at=stamps[-1], usage=usage)])
            if one_at_a_time:
                c.projector.catch_up()
        with c.reading() as conn:
            row = conn.execute(select(provider_usage_stats)).mappings().one()
    finally:
        c.close()
    histogram = [0] * 18
    histogram[2], histogram[0], histogram[6] = 1, 1, 1  # 120 ms, 40 ms, 900 ms
    expected = {
        "calls": 3, "successes": 2,
        "latency_sum_ms": 1060, "latency_min_ms": 40, "latency_max_ms": 900,
        "prompt_tokens": 15, "completion_tokens": 6, "total_tokens": 19, "cost_micros": 12,
        "ttft_calls": 2, "ttft_sum_ms": 42, "ttft_min_ms": 12, "ttft_max_ms": 30,
        "last_used_at": stamps[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    assert {name: row[name] for name in expected} == expected
    assert json.loads(row["latency_histogram"]) == histogram
    assert json.loads(row["ttft_histogram"]) == [2] + [0] * 17


@pytest.mark.parametrize("backlog", [6, 7])
def test_catch_up_goes_on_past_a_full_batch(
    database_url: str, clock: FakeClock, backlog: int
) -> None:
    """A catch-up stops reading once a batch comes back short, never after a full one: a
    backlog of exactly two batches and one of two and a bit are both applied whole."""
    c = Catalog.open(database_url, clock=clock, seed=False)
    try:
        start = c.projector.position()
        usage = CallUsage(provider="groq", workload="chat", model="m", success=True, latency_ms=5)
        c.store.append_new_streams(
            [usage_logged(id=uuid.uuid4(), at=clock(), usage=usage) for _ in range(backlog)]
        )
        small = Projector(
            c.store.engine,
            c.store,
            c.projector.projections,
            reader=c.store.reader,
            batch_size=3,
        )
        assert small.catch_up() == backlog
        assert small.position() == c.store.last_position() == start + backlog
        with c.store.reader.connect() as conn:
            assert len(conn.execute(select(provider_usage.c.id)).all()) == backlog
    finally:
        c.close()
