"""A router process killed with SIGKILL mid-run loses no usage of any answered call, on
SQLite and PostgreSQL: every answer the child printed has its UsageLogged event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel
from freegin_ai.domain.topics import USAGE_LOGGED
from tests.fakes.provider_server import FakeProviderServer, Reply

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        server.script("m", Reply("ok"))
        yield server


def logged_keys(url: str) -> set[str]:
    catalog = Catalog.open(url, seed=False)
    try:
        keys: set[str] = set()
        position = 0
        while batch := catalog.store.read(position, 5_000, topics=frozenset({USAGE_LOGGED})):
            keys.update(e.state["request_key"] for e in batch)
            position = batch[-1].position
        assert catalog.replay().equal  # the read tables rebuild to what catch-up had made
        return keys
    finally:
        catalog.close()


@pytest.mark.parametrize("kill_after", [1, 300])
def test_a_killed_router_loses_no_usage_of_an_answered_call(
    database_url: str, fake: FakeProviderServer, kill_after: int
) -> None:
    # Given a catalog with one model at the fake provider
    catalog = Catalog.open(database_url, seed=False)
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="m", priority=1))
    catalog.close()
    # When a router process with 16 calls in flight is killed after `kill_after` answers
    answered: list[str] = []
    deadline = time.monotonic() + 60
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.router_process", database_url, fake.openai_url, "16"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                answered.append(line.split()[1])
                if len(answered) >= kill_after or time.monotonic() > deadline:
                    break
            child.send_signal(signal.SIGKILL)
            # Answers printed before the kill landed count too.
            answered.extend(line.split()[1] for line in child.stdout)
        finally:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert len(answered) >= kill_after
    # Then every answered call has its usage event: zero lost
    logged = logged_keys(database_url)
    lost = [key for key in answered if key not in logged]
    assert lost == [], f"{len(lost)} of {len(answered)} answered calls have no usage event"
    # and calls still in flight at the kill were made too (the kill came mid-run)
    assert len(fake.requests) >= len(answered)
