"""freegin-ai adapters layer."""
