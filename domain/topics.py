"""The stored name (topic) of every event, and the status words of the read models.

Events are stored forever under these topics. Renaming or moving an event class must keep
its old topic loadable (eventsourcing.utils.register_topic). Kept as plain strings so the
read side can use them without loading the aggregate classes; a test checks they match.
"""

from __future__ import annotations

_ROSTER = "freegin_ai.domain.roster:RosterEntry."
_SUGGESTION = "freegin_ai.domain.suggestions:Suggestion."

MODEL_ADOPTED = _ROSTER + "ModelAdopted"
MODEL_PRIORITY_CHANGED = _ROSTER + "ModelPriorityChanged"
MODEL_RETIRED = _ROSTER + "ModelRetired"
MODEL_REINSTATED = _ROSTER + "ModelReinstated"

SUGGESTION_PROPOSED = _SUGGESTION + "SuggestionProposed"
SUGGESTION_REVISED = _SUGGESTION + "SuggestionRevised"
SUGGESTION_ADOPTED = _SUGGESTION + "SuggestionAdopted"
SUGGESTION_REJECTED = _SUGGESTION + "SuggestionRejected"
TRIAL_STARTED = _SUGGESTION + "TrialStarted"
TRIAL_ENDED = _SUGGESTION + "TrialEnded"

USAGE_LOGGED = "freegin_ai.domain.usage:UsageRecord.UsageLogged"

PROVIDER_CLEARED = "freegin_ai.domain.availability:Availability.ProviderCleared"
RETIREMENT_PROPOSED = "freegin_ai.domain.availability:Availability.RetirementProposed"

REFRESH_COMPLETED = "freegin_ai.domain.refresh_runs:RefreshRun.RefreshCompleted"

# Roster entry statuses.
ACTIVE = "active"
RETIRED = "retired"

# Suggestion statuses.
PENDING = "pending"
TRIAL = "trial"
ADOPTED = "adopted"
REJECTED = "rejected"
