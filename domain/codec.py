"""The stored form of event state: compact JSON written and read with msgspec.

Event fields are JSON-native (str, int, float, bool, None, dict, list) except `timestamp`,
an aware datetime, which is stored as an RFC 3339 string and turned back on decode.
Projections read the JSON directly and use the timestamp string as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode_state(state: dict[str, Any]) -> bytes:
    """Encode an event's state (its fields but the id and version)."""
    return _encoder.encode(state)


def decode_state(data: bytes) -> dict[str, Any]:
    """Decode an event's state, turning `timestamp` back into a datetime."""
    state: dict[str, Any] = _decoder.decode(data)
    stamp = state.get("timestamp")
    if isinstance(stamp, str):
        state["timestamp"] = datetime.fromisoformat(stamp)
    return state


def decode_raw(data: bytes) -> dict[str, Any]:
    """Decode an event's state, leaving `timestamp` as its RFC 3339 string."""
    state: dict[str, Any] = _decoder.decode(data)
    return state
