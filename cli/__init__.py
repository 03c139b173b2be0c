"""freegin-ai cli layer."""
