"""The version of every projection's tables. Bump one when its table or fold changes: the
tables are then rebuilt from the log on start (ADR 0005). Kept apart so a reader can check
them without loading SQLAlchemy."""

from __future__ import annotations

# 2: events outside the domain's ranges are recorded as not applied (ADR 0009).
ROSTER = 2
# 2: suggestion metadata carries `trial_percent` while a suggestion is on trial.
# 3: events outside the domain's ranges are recorded as not applied (ADR 0009).
SUGGESTIONS = 3
# 2: token and cost columns are BIGINT on PostgreSQL; out-of-range events not applied.
USAGE = 2
# 2: cached and reasoning token counts.
# 3: events outside the domain's ranges are recorded as not applied (ADR 0009).
USAGE_STATS = 3
# 2: events outside the domain's ranges are recorded as not applied (ADR 0009).
# 3: out of credit (402) and gone (410) last until a success or ProviderCleared (ADR 0014).
HEALTH = 3
QUOTA = 1
LISTINGS = 1

#: Projection name → version, as stored in `projection_state`.
VERSIONS: dict[str, int] = {
    "roster": ROSTER,
    "suggestions": SUGGESTIONS,
    "usage": USAGE,
    "usage_stats": USAGE_STATS,
    "health": HEALTH,
    "quota": QUOTA,
    "listings": LISTINGS,
}
