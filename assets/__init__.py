"""Dagster asset definitions: thin wrappers that call appshot_model and record metadata."""
