"""freegin-ai projections layer."""
