"""Two router processes sharing one database (SQLite and PostgreSQL) against a fake provider
that allows 10 requests a minute: together they never send it an 11th request in a minute,
and the overflow goes to the next candidate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.domain.commands import AdoptModel
from tests.fakes.provider_server import FakeProviderServer, Reply

ROOT = Path(__file__).resolve().parents[2]
PER_WORKER = 12


def test_two_processes_never_send_an_eleventh_request_in_a_minute(
    database_url: str, tmp_path: Path
) -> None:
    catalog = Catalog.open(database_url, seed=False)
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="limited", priority=10))
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="spare", priority=20))
    catalog.close()
    # config.toml gives the published limit; the fake enforces the same limit itself.
    (tmp_path / "config.toml").write_text(
        '[limits."groq/limited"]\nrequests_per_minute = 10\n', encoding="utf-8"
    )
    with FakeProviderServer() as fake:
        fake.script("limited", Reply("limited"))
        fake.script("spare", Reply("spare"))
        fake.limit_per_minute("limited", 10)
        env = {
            **os.environ,
            "FREEGIN_DATABASE_URL": database_url,
            "FREEGIN_CONFIG_DIR": str(tmp_path),
            "FREEGIN_GROQ_BASE_URL": fake.openai_url,
            "GROQ_API_KEY": "sk-two-processes",
            "PYTHONPATH": str(ROOT),
        }
        # Stay inside one minute (the fake counts calendar minutes by its own clock).
        if time.gmtime().tm_sec >= 35:
            time.sleep(61 - time.gmtime().tm_sec)
        start_at = time.time() + 4.0
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.router_worker", str(PER_WORKER), str(start_at)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        answered: list[str] = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            answered += json.loads(out)
        per_minute = {minute: n for (model, minute), n in fake.per_minute.items()
                      if model == "limited"}  # fmt: skip
        refused = dict(fake.refused)
    # Every request was answered; never more than 10 a minute reached the limited model...
    assert len(answered) == 2 * PER_WORKER
    assert per_minute and max(per_minute.values()) <= 10, per_minute
    assert refused == {}
    # ...it took all 10 of its minute, and the overflow went to the next candidate.
    counts = Counter(answered)
    assert counts["limited"] == sum(per_minute.values())
    assert counts["limited"] >= 10
    assert counts["spare"] == 2 * PER_WORKER - counts["limited"]
