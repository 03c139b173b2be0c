"""Writing events straight into the log, past every check: what older code, an import or a bug
may have left there. Tests use it to prove that no such event stops the catalog."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec

from freegin_ai.adapters.store import EventStore
from freegin_ai.domain.topics import MODEL_ADOPTED, USAGE_LOGGED

WHEN = "2026-11-01T12:00:00Z"


def append_raw(store: EventStore, topic: str, state: dict[str, Any]) -> None:
    """Append one event of a new stream with exactly this state, bypassing the domain."""
    store.create_log()
    row = (store.bind_id(uuid4()), 1, topic, msgspec.json.encode(state))
    store.append_rows([row], fsync=True, failure="cannot append")


def adopted(model: str, priority: Any, **extra: Any) -> dict[str, Any]:
    """The state of a ModelAdopted event for groq/chat."""
    return {
        "timestamp": WHEN,
        "originator_topic": "freegin_ai.domain.roster:RosterEntry",
        "provider": "groq",
        "workload": "chat",
        "model": model,
        "priority": priority,
        "rationale": None,
        "metadata": None,
        "source": "manual",
        **extra,
    }


def usage(**fields: Any) -> dict[str, Any]:
    """The state of a UsageLogged event of groq/chat, with fields overridden."""
    return {
        "timestamp": WHEN,
        "originator_topic": "freegin_ai.domain.usage:UsageRecord",
        "provider": "groq",
        "workload": "chat",
        "model": "poison-model",
        "success": True,
        "latency_ms": 12,
        **fields,
    }


POISONS: dict[str, tuple[str, dict[str, Any]]] = {
    "priority past 64 bits": (MODEL_ADOPTED, adopted("big/priority", 2**63)),
    "priority past INTEGER": (MODEL_ADOPTED, adopted("int/priority", 2**31)),
    "2^70 prompt tokens": (USAGE_LOGGED, usage(prompt_tokens=2**70)),
    "3e9 prompt tokens": (USAGE_LOGGED, usage(prompt_tokens=3_000_000_000)),
    "negative latency": (USAGE_LOGGED, usage(latency_ms=-1)),
    "Retry-After of centuries": (USAGE_LOGGED, usage(success=False, retry_after_s=1e12)),
    "no provider": (USAGE_LOGGED, {"timestamp": WHEN, "success": True, "latency_ms": 1}),
    "not a timestamp": (MODEL_ADOPTED, adopted("bad/time", 5, timestamp="yesterday")),
}
