"""The quota gate's leases (ADR 0018): a busy process takes request slots in blocks, never
more than a window allows, gives back what it did not use, and remembers a full window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from freegin_ai.adapters.quota_gate import MAX_LEASE, QuotaGate, Slot
from freegin_ai.adapters.store import make_engine

MINUTE = "2026-11-24T12:00:00Z"
NEXT_MINUTE = "2026-11-24T12:01:00Z"
DAY = "2026-11-24T00:00:00Z"


class StepClock:
    """A monotonic clock that moves only when told: every lease looks quick or slow."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def counted(engine: Engine, period: str = "minute") -> int:
    with engine.connect() as conn:
        value = conn.exec_driver_sql(
            f"SELECT requests FROM quota_reservations WHERE period = '{period}'"
        ).scalar()
    return int(value or 0)


def slots(
    minute_limit: int | None, day_limit: int | None = None, minute: str = MINUTE
) -> list[Slot]:
    return [Slot("minute", minute, minute_limit), Slot("day", DAY, day_limit)]


def test_a_busy_process_leases_blocks_and_gives_back_what_it_did_not_use(engine: Engine) -> None:
    gate = QuotaGate(engine, clock=StepClock())  # a still clock: every lease used up at once
    for _ in range(200):
        assert gate.reserve("groq", "m", slots(1000, 10_000)) is None
    # Blocks double up to the cap: far fewer writes than requests.
    assert gate.writes <= 200 // MAX_LEASE + 5
    assert counted(engine) >= 200
    gate.release()
    assert counted(engine) == 200
    assert counted(engine, "day") == 200


def test_a_lease_never_takes_more_than_the_window_has_left(engine: Engine) -> None:
    gate = QuotaGate(engine, clock=StepClock())
    taken = sum(1 for _ in range(40) if gate.reserve("groq", "m", slots(30)) is None)
    assert taken == 30
    assert counted(engine) == 30
    gate.release()
    assert counted(engine) == 30


def test_two_processes_share_the_limit_and_leftovers_return(engine: Engine) -> None:
    one, two = QuotaGate(engine, clock=StepClock()), QuotaGate(engine, clock=StepClock())
    granted = 0
    for _ in range(120):
        for gate in (one, two):
            if gate.reserve("groq", "m", slots(100, 1_000)) is None:
                granted += 1
    assert granted <= 100
    one.release()
    two.release()
    # What is counted is exactly what was sent: nothing leased stays counted.
    assert counted(engine) == granted
    assert counted(engine, "day") == granted


def test_a_full_window_is_remembered_until_the_next_one(engine: Engine) -> None:
    gate = QuotaGate(engine, clock=StepClock())
    assert gate.reserve("groq", "m", slots(1)) is None
    assert gate.reserve("groq", "m", slots(1)) == "minute"
    writes = gate.writes
    for _ in range(10):
        assert gate.reserve("groq", "m", slots(1)) == "minute"
    assert gate.writes == writes  # no database round trip for a window known to be full
    assert gate.reserve("groq", "m", slots(1, minute=NEXT_MINUTE)) is None
    assert counted(engine) == 1


def test_a_slow_process_takes_one_slot_at_a_time(engine: Engine) -> None:
    clock = StepClock()
    gate = QuotaGate(engine, clock=clock)
    for _ in range(5):
        clock.now += 10.0  # a request every ten seconds
        assert gate.reserve("groq", "m", slots(1000)) is None
        assert counted(engine) == gate.writes  # one slot per write, none held back


def test_a_new_window_gives_back_what_the_last_lease_left(engine: Engine) -> None:
    gate = QuotaGate(engine, clock=StepClock())
    for _ in range(50):
        assert gate.reserve("groq", "m", slots(1000, 10_000)) is None
    assert counted(engine, "day") > 50  # a block is held beyond what was sent
    assert gate.reserve("groq", "m", slots(1000, 10_000, minute=NEXT_MINUTE)) is None
    # The day counts the 50 sent last minute plus only this minute's lease.
    assert counted(engine, "day") - counted(engine, "minute") == 50
