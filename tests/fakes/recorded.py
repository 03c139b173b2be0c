"""Replies recorded from the real provider APIs (tests/data/recorded), served by the fake.

    fake.script("claude-x", recorded("anthropic_cache_read").behaviour())

Each file names its source (see tests/data/recorded/README.md); the fake sends the recorded
status and body bytes unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.provider_server import Status

RECORDED_DIR = Path(__file__).resolve().parent.parent / "data" / "recorded"


@dataclass(frozen=True)
class RecordedReply:
    """One recorded reply: where it came from, its status and its decoded body."""

    name: str
    source: dict[str, Any]
    status: int
    body: Any

    def behaviour(self) -> Status:
        """The fake server behaviour that sends this reply as recorded."""
        return Status(self.status, raw=json.dumps(self.body).encode())


def recorded(name: str) -> RecordedReply:
    """Load `tests/data/recorded/<name>.json`."""
    data = json.loads((RECORDED_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return RecordedReply(name, data["source"], data["status"], data["body"])
