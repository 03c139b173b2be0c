"""Health policy: how long a model (or a whole provider) rests after failures.

A failed call starts or lengthens a cooldown that doubles with each consecutive failure
(30 s, 60 s, 120 s, … up to an hour) and is never shorter than the provider's Retry-After.
Authentication and out-of-credit failures sideline the whole provider; a malformed request
says nothing about the model's health. The health projection folds usage events with these
rules; the routing policy reads the cooldowns it keeps.
"""

from __future__ import annotations

BASE_COOLDOWN_S = 30.0
MAX_COOLDOWN_S = 3600.0
#: Failures that sideline the whole provider, not one model.
PROVIDER_WIDE_KINDS = frozenset({"auth", "credit", "no_credentials"})
#: Failures that last until a success or a person clears them, not for a backoff.
UNTIL_CLEARED_KINDS = frozenset({"credit", "gone"})
#: The cooldown end of a sideline that waits for a success or a person.
UNTIL_CLEARED = "9999-12-31T23:59:59Z"
#: Failures that say nothing about the model's health (the request itself was wrong, or the
#: provider's filter withheld the answer to this prompt).
NEUTRAL_KINDS = frozenset({"bad_request", "filtered"})


def cooldown_seconds(consecutive_failures: int, retry_after_s: float | None) -> float:
    """Exponential backoff: 30 s doubled per consecutive failure, capped, at least Retry-After."""
    backoff = min(MAX_COOLDOWN_S, BASE_COOLDOWN_S * 2.0 ** max(0, consecutive_failures - 1))
    return max(backoff, float(retry_after_s or 0.0))
