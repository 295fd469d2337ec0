"""Dagster wiring for appshot: partitions, resources, IO managers, jobs, definitions."""
