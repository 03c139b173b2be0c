"""Benchmarks for `make bench`: each prints its figures next to the target."""
