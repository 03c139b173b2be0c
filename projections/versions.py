"""The version of every projection's tables. Bump one when its table or fold changes: the
tables are then rebuilt from the log on start (ADR 0005). Kept apart so a reader can check
them without loading SQLAlchemy."""

from __future__ import annotations

ROSTER = 1
# 2: suggestion metadata carries `trial_percent` while a suggestion is on trial.
SUGGESTIONS = 2
USAGE = 1
# 2: cached and reasoning token counts.
USAGE_STATS = 2
# 2: out of credit (402) and gone (410) last until a success or ProviderCleared.
HEALTH = 2
QUOTA = 1

#: Projection name → version, as stored in `projection_state`.
VERSIONS: dict[str, int] = {
    "roster": ROSTER,
    "suggestions": SUGGESTIONS,
    "usage": USAGE,
    "usage_stats": USAGE_STATS,
    "health": HEALTH,
    "quota": QUOTA,
}
