"""The command side: one module per concern holding its command handlers.

Each handler loads aggregates, lets the domain decide, saves, retries on a conflicting
writer, and leaves the read tables current before it returns (`writer.Writer`). Queries are
not here: they are views in `freegin_ai.projections` (`queries`, `log_views`).
"""
