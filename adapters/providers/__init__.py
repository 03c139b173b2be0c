"""freegin-ai adapters/providers layer."""
