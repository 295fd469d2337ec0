"""Partitions: cities (the demo world's, static) x hours (the paper's peaks and/or hours of day "00".."23"),
and the regions (dynamic, one per region file)."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import DynamicPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from appshot_model.core.names import PEAK_HOURS, check_names
from appshot_model.model.hours import HOURS

#: Every accepted hour partition name: the paper's peaks, then the hours of day.
HOUR_NAMES: tuple[str, ...] = (*PEAK_HOURS, *HOURS)


def hour_partitions(hours: Sequence[str] = tuple(PEAK_HOURS)) -> StaticPartitionsDefinition:
    """One partition per hour: the peak hours (``morning``, ``midday``, ``evening``; the default) and/or
    hours of day ``"00"`` .. ``"23"`` (:func:`appshot_model.model.hours.hour_of_day` reads both)."""
    return StaticPartitionsDefinition(check_names(hours, HOUR_NAMES, "hour"))


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
