"""Sensors. ``region_sensor``: watch a folder of region YAML files and register new regions.

Each ``<name>.yaml`` (or ``.yml``) in the folder becomes a partition ``<name>`` of the dynamic
partitions definition named ``region`` (shared with the region context assets), and a run of the
given job is requested for it. Files already registered are skipped; removing a file does not
remove its partition. Names must be usable as folder names (letters, digits, ``_ - .``).
"""

from __future__ import annotations

import os
from typing import Any

from dagster import (DefaultSensorStatus, JobDefinition, RunRequest, SensorDefinition, SensorEvaluationContext,
                     SensorResult, SkipReason, sensor)

from assets.partitions import REGION_PARTITIONS_NAME, region_partitions
from assets.region_context import region_files


def region_sensor(job: JobDefinition | Any, regions_dir: str | os.PathLike,
                  name: str = "region_files_sensor", minimum_interval_seconds: int = 60,
                  default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED) -> SensorDefinition:
    """Sensor adding each new region file of ``regions_dir`` as a ``region`` partition and
    requesting a run of ``job`` (partitioned by ``region``) for it."""

    @sensor(name=name, job=job, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
            description=f"New region YAML files in {regions_dir} -> new 'region' partitions + generation runs.")
    def _region_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        files = region_files(regions_dir)
        known = set(context.instance.get_dynamic_partitions(REGION_PARTITIONS_NAME))
        new = [key for key in files if key not in known]
        if not new:
            return SkipReason(f"no new region files in {regions_dir}")
        return SensorResult(
            run_requests=[RunRequest(run_key=f"region-{key}", partition_key=key,
                                     tags={"appshot/region_file": str(files[key])}) for key in new],
            dynamic_partitions_requests=[region_partitions.build_add_request(new)])

    return _region_sensor
