"""The read tables: the guide's schemas and indexes, the usage-stats and health tables, and
the projection state (position and version) of every projection.

Everything here can be dropped and rebuilt from the event log.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# INTEGER on SQLite (so `id INTEGER PRIMARY KEY` is the rowid), BIGINT elsewhere.
_BigInt = BigInteger().with_variant(Integer(), "sqlite")

provider_models = Table(
    "provider_models",
    metadata,
    Column("provider", Text, nullable=False),
    Column("workload", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("rationale", Text),
    Column("metadata", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    UniqueConstraint("provider", "workload", "model"),
    Index("idx_provider_models_active", "provider", "workload", "status", "priority"),
)

provider_model_suggestions = Table(
    "provider_model_suggestions",
    metadata,
    # The log position of the proposal: the same on every replay.
    Column("id", _BigInt, primary_key=True, autoincrement=False),
    Column("provider", Text, nullable=False),
    Column("workload", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rationale", Text),
    Column("metadata", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    UniqueConstraint("provider", "workload", "model"),
    Index("idx_provider_model_suggestions", "provider", "workload", "status"),
)

provider_usage = Table(
    "provider_usage",
    metadata,
    # The log position of the UsageLogged event.
    Column("id", _BigInt, primary_key=True, autoincrement=False),
    Column("provider", Text, nullable=False),
    Column("model", Text),
    Column("success", Integer, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("error_message", Text),
    # INTEGER as in the guide on SQLite (64-bit there), BIGINT on PostgreSQL: the same range.
    Column("prompt_tokens", _BigInt),
    Column("completion_tokens", _BigInt),
    Column("total_tokens", _BigInt),
    Column("input_cost_micros", _BigInt),
    Column("output_cost_micros", _BigInt),
    Column("total_cost_micros", _BigInt),
    Column("created_at", Text, nullable=False),
    Index("idx_provider_usage_provider_model_time", "provider", "model", "created_at"),
)

# Kept incrementally per (provider, workload, model, UTC day): stats never scan provider_usage.
# '' stands for an unknown workload or model (imported legacy rows).
provider_usage_stats = Table(
    "provider_usage_stats",
    metadata,
    Column("provider", Text, nullable=False),
    Column("workload", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("day", Text, nullable=False),
    Column("arm", Text, nullable=False),
    Column("calls", _BigInt, nullable=False),
    Column("successes", _BigInt, nullable=False),
    Column("latency_sum_ms", _BigInt, nullable=False),
    Column("latency_min_ms", _BigInt, nullable=False),
    Column("latency_max_ms", _BigInt, nullable=False),
    Column("prompt_tokens", _BigInt, nullable=False),
    Column("completion_tokens", _BigInt, nullable=False),
    Column("total_tokens", _BigInt, nullable=False),
    Column("cached_tokens", _BigInt, nullable=False),
    Column("reasoning_tokens", _BigInt, nullable=False),
    Column("cost_micros", _BigInt, nullable=False),
    Column("latency_histogram", Text, nullable=False),
    Column("last_used_at", Text, nullable=False),
    # Streamed calls that reached a first token: how many, and time to it (ms).
    Column("ttft_calls", _BigInt, nullable=False, server_default="0"),
    Column("ttft_sum_ms", _BigInt, nullable=False, server_default="0"),
    Column("ttft_min_ms", _BigInt, nullable=False, server_default="0"),
    Column("ttft_max_ms", _BigInt, nullable=False, server_default="0"),
    Column("ttft_histogram", Text, nullable=False, server_default="[]"),
    PrimaryKeyConstraint("provider", "workload", "model", "day", "arm"),
)

# Events a projection could not apply (out-of-range numbers, missing fields, a change to a row
# that does not exist): recorded, skipped, reported by `replay` and `status`.
projection_failures = Table(
    "projection_failures",
    metadata,
    Column("projection", Text, nullable=False),
    Column("position", _BigInt, nullable=False),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    PrimaryKeyConstraint("projection", "position"),
)

projection_state = Table(
    "projection_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("position", _BigInt, nullable=False),
    Column("version", Integer, nullable=False),
)
