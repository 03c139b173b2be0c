"""The catalog's domain model: workloads, providers, aggregates, events and rules.

Pure: no I/O, no clock, no environment. Times are passed in by the caller.
"""
