"""No event stops the world: an event the read side cannot apply, found in the log, is recorded
as not applied with its reason, and every projection moves past it (ADR 0009).

Each poison is written straight into the log, past the domain's checks, as older code, an
import or a bug could have left it; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.topics import MODEL_ADOPTED, MODEL_RETIRED
from freegin_ai.domain.workloads import Workload
from tests.conftest import FakeClock
from tests.fakes.poison import POISONS, WHEN, adopted, append_raw, usage


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    c = Catalog.open(database_url, clock=clock)
    try:
        yield c
    finally:
        c.close()


def groq_chat(catalog: Catalog) -> dict[str, int]:
    return {
        r.model: r.priority for r in catalog.list_models(provider="groq", workload=Workload.CHAT)
    }


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poison_event_is_recorded_and_the_next_events_still_apply(
    catalog: Catalog, poison: str
) -> None:
    topic, state = POISONS[poison]
    append_raw(catalog.store, topic, state)
    # After the poison: an ordinary adoption and an ordinary call.
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="after/ok", priority=3))
    catalog.log_usage(
        provider="groq", workload="chat", model="after/ok", success=True, latency_ms=9
    )

    assert groq_chat(catalog)["after/ok"] == 3
    [stats] = catalog.model_stats(provider="groq", model="after/ok")
    assert stats.calls == 1
    failures = catalog.not_applied()
    assert failures, "the poison must be recorded"
    assert {f.kind for f in failures} == {topic.rsplit(".", 1)[-1]}
    assert all(f.reason for f in failures)
    # Every projection that reads the topic recorded it, at the same position.
    assert len({f.position for f in failures}) == 1


def test_the_reason_names_the_field_and_the_bound(catalog: Catalog) -> None:
    append_raw(catalog.store, MODEL_ADOPTED, adopted("big/priority", 2**63))

    [failure] = catalog.not_applied()

    assert failure.projection == "roster"
    assert "priority" in failure.reason
    assert "2147483647" in failure.reason
    assert "big/priority" not in groq_chat(catalog)


def test_replay_reports_the_poison_and_rebuilds_the_same_tables(catalog: Catalog) -> None:
    append_raw(catalog.store, MODEL_ADOPTED, adopted("big/priority", 2**63))
    append_raw(catalog.store, *POISONS["3e9 prompt tokens"])
    catalog.log_usage(provider="groq", workload="chat", model="m-1", success=True, latency_ms=5)
    incremental = catalog.not_applied()

    report = catalog.replay()

    assert report.equal
    assert {(n.projection, n.position) for n in report.not_applied} == {
        (f.projection, f.position) for f in incremental
    }
    assert {n.projection for n in report.not_applied} == {
        "roster",
        "usage",
        "usage_stats",
        "health",
        "quota",
    }
    assert catalog.not_applied() == incremental  # recorded once, not twice


def test_a_change_to_a_row_that_does_not_exist_is_recorded(catalog: Catalog) -> None:
    retired = {k: v for k, v in adopted("never/adopted", 1).items() if k != "priority"}
    append_raw(catalog.store, MODEL_RETIRED, retired | {"reason": "x"})

    [failure] = catalog.not_applied()

    assert failure.kind == "ModelRetired"
    assert "no roster entry groq/chat/never/adopted" in failure.reason


def test_a_value_only_the_database_refuses_is_isolated(catalog: Catalog) -> None:
    # PostgreSQL refuses NUL in text; SQLite stores it. Either way nothing else is lost.
    append_raw(catalog.store, MODEL_ADOPTED, adopted("nul\x00model", 4))
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="after/ok", priority=3))

    failures = catalog.not_applied()
    assert groq_chat(catalog)["after/ok"] == 3
    if catalog.store.dialect == "postgresql":
        [failure] = failures
        assert failure.reason.startswith(("DataError", "CharacterNotInRepertoire"))
        assert "nul\x00model" not in groq_chat(catalog)
    else:
        assert failures == []
    # A rebuild meets the same refusal in its bulk insert and starts again event by event.
    report = catalog.replay()
    assert report.equal
    assert [(n.projection, n.position) for n in report.not_applied] == [
        (f.projection, f.position) for f in failures
    ]


def test_adopting_a_poisoned_model_again_heals_the_roster(
    catalog: Catalog, clock: FakeClock
) -> None:
    from freegin_ai.domain.roster import RosterEntry

    # The old bug: an adoption with a 64-bit priority, through the aggregate (natural-key id).
    entry: Any = RosterEntry._create(
        RosterEntry.ModelAdopted,
        id=RosterEntry.create_id("groq", "chat", "vendor/x"),
        timestamp=clock(),
        provider="groq",
        workload="chat",
        model="vendor/x",
        priority=2**63,
        source="manual",
    )
    catalog.store.save(entry)
    assert "vendor/x" not in groq_chat(catalog)

    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="vendor/x", priority=7))

    assert groq_chat(catalog)["vendor/x"] == 7


def test_as_of_folds_leave_the_poison_out(catalog: Catalog, clock: FakeClock) -> None:
    append_raw(catalog.store, MODEL_ADOPTED, adopted("big/priority", 2**63))
    append_raw(catalog.store, MODEL_ADOPTED, adopted("bad/time", 1, timestamp="yesterday"))

    rows = catalog.roster_as_of(clock.now, provider="groq", workload=Workload.CHAT)

    assert {r.model for r in rows} == {
        r.model for r in catalog.list_models(provider="groq", workload=Workload.CHAT)
    }


def test_usage_poison_leaves_stats_and_health_working(catalog: Catalog) -> None:
    append_raw(catalog.store, *POISONS["Retry-After of centuries"])
    append_raw(catalog.store, *POISONS["2^70 prompt tokens"])
    catalog.log_usage(
        provider="groq", workload="chat", model="poison-model", success=True, latency_ms=1
    )

    [stats] = catalog.model_stats(provider="groq", model="poison-model")
    assert stats.calls == 1
    assert {f.projection for f in catalog.not_applied()} == {
        "usage",
        "usage_stats",
        "health",
        "quota",
    }
    assert usage()["timestamp"] == WHEN
