"""Partitions: cities (the demo world's, static) x peak hours, and the regions (dynamic, one per region file)."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import DynamicPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from appshot_model.core.names import PEAK_HOURS, check_names


def hour_partitions(hours: Sequence[str] = tuple(PEAK_HOURS)) -> StaticPartitionsDefinition:
    """One partition per peak hour (``morning``, ``midday``, ``evening``)."""
    return StaticPartitionsDefinition(check_names(hours, tuple(PEAK_HOURS), "peak hour"))


def city_partitions(cities: Sequence[str]) -> StaticPartitionsDefinition:
    """One partition per city."""
    return StaticPartitionsDefinition(list(cities))


def city_hour_partitions(cities: StaticPartitionsDefinition,
                         hours: StaticPartitionsDefinition) -> MultiPartitionsDefinition:
    """City x peak hour; keys look like ``aurora|morning`` (dimension names ``city`` and ``hour``)."""
    return MultiPartitionsDefinition({"city": cities, "hour": hours})


REGION_PARTITIONS_NAME = "region"
#: The dynamic partitions of regions, one per region file (added by ``pipelines.sensors.region_sensor``).
region_partitions = DynamicPartitionsDefinition(name=REGION_PARTITIONS_NAME)
