"""Natural keys: valid model names, and the stream ids derived from (provider, workload, model)."""

from __future__ import annotations

import re
from uuid import UUID, uuid5

from freegin_ai.domain.errors import InvalidModelNameError, InvalidPriorityError
from freegin_ai.domain.ranges import PRIORITY_MAX, show_value

#: Fixed namespace for uuid5 stream ids; changing it would orphan every stored stream.
STREAM_NAMESPACE = UUID("6f0b3c52-1d8e-5a4f-9c61-0e7f2a9d4b13")

MAX_MODEL_NAME = 200
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/@+\-]+$")


def check_model_name(model: str) -> str:
    """Return the model identifier stripped, or raise InvalidModelNameError."""
    name = model.strip()
    if not name:
        raise InvalidModelNameError("model name is empty")
    if len(name) > MAX_MODEL_NAME:
        raise InvalidModelNameError(f"model name is longer than {MAX_MODEL_NAME} characters")
    if not _MODEL_NAME.match(name) or not any(c.isalpha() for c in name):
        raise InvalidModelNameError(
            f"model name {name!r} has characters a model identifier cannot have"
        )
    return name


def check_priority(priority: object) -> int:
    """Return the priority (0 to PRIORITY_MAX: the guide's INTEGER on every database), or raise
    InvalidPriorityError."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidPriorityError(f"priority must be a whole number, got {show_value(priority)}")
    if not 0 <= priority <= PRIORITY_MAX:
        raise InvalidPriorityError(
            f"priority must be from 0 to {PRIORITY_MAX}, got {show_value(priority)}"
        )
    return priority


def roster_entry_id(provider: str, workload: str, model: str) -> UUID:
    """The stream id of one roster entry: one stream per (provider, workload, model)."""
    return uuid5(STREAM_NAMESPACE, f"roster\x1f{provider}\x1f{workload}\x1f{model}")


def suggestion_id(provider: str, workload: str, model: str) -> UUID:
    """The stream id of one suggestion: one stream per (provider, workload, model)."""
    return uuid5(STREAM_NAMESPACE, f"suggestion\x1f{provider}\x1f{workload}\x1f{model}")
