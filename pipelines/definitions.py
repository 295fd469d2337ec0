"""The appshot code location: one ``Definitions`` assembled from the asset modules."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from dagster import AssetSelection, Definitions, define_asset_job

from appshot_model.core.names import PEAK_HOURS
from appshot_model.traffic.demo import DEMO_CITIES, DemoCity
from assets.demo_world import build_demo_world_assets
from assets.doppelganger import build_dg_assets
from assets.evaluation import build_evaluation_assets
from assets.features import build_feature_assets
from assets.generation import build_generation_assets
from assets.hourly import build_hourly_assets
from assets.partitions import city_hour_partitions, city_partitions, hour_partitions, region_partitions
from assets.privacy import build_privacy_assets
from assets.region_context import build_region_context_assets
from assets.release import build_release_assets
from assets.resources import AppshotSettings, DaskSettings, EvaluationSettings, PrivacySettings, default_data_dir
from assets.sessions import build_session_assets
from assets.traffic import build_traffic_assets
from assets.training import build_training_assets
from pipelines.io_managers import io_managers
from pipelines.schedules import release_schedule
from pipelines.sensors import region_sensor

#: The jobs' table (assets or group, partitioning, description), one entry per job.
JOBS_FILE = Path(__file__).with_name("jobs.yaml")


def job_table(path: Path = JOBS_FILE) -> dict[str, dict]:
    """``{job name: {"selection": AssetSelection, "partitions": str | None, "description": str}}``."""
    table = {}
    for name, spec in yaml.safe_load(path.read_text()).items():
        selection = (AssetSelection.groups(spec["group"]) if "group" in spec
                     else AssetSelection.assets(*spec["assets"]))
        table[name] = {"selection": selection, "partitions": spec.get("partitions"),
                       "description": spec["description"], "tags": spec.get("tags", {})}
    return table


#: Stage jobs, in the order the whole demo runs them (Dagster jobs need one partitioning each).
STAGE_JOBS = ("demo_world_job", "peak_traffic_job", "attribute_selection_job", "training_job", "generation_job",
              "release_job")


def build_definitions(cities: Sequence[DemoCity] = DEMO_CITIES, hours: Sequence[str] = tuple(PEAK_HOURS),
                      settings: AppshotSettings | None = None, base_path: str | None = None,
                      regions_dir: str | None = None, evaluation: EvaluationSettings | None = None,
                      privacy: PrivacySettings | None = None, dask: DaskSettings | None = None) -> Definitions:
    """Assets, jobs, schedule, sensor and resources for the given demo cities and peak hours; real
    regions are the YAML files of ``regions_dir`` (default ``$APPSHOT_REGIONS_DIR`` or
    ``examples/regions``), registered as ``region`` partitions by the sensor."""
    by_name = {city.name: city for city in cities}
    cities_def = city_partitions(list(by_name))
    hours_def = hour_partitions(hours)
    city_hour = city_hour_partitions(cities_def, hours_def)
    settings = settings or AppshotSettings()
    base_path = base_path or f"{settings.data_dir or default_data_dir()}/assets"
    regions_dir = regions_dir or os.environ.get("APPSHOT_REGIONS_DIR",
                                                str(Path(__file__).resolve().parents[1] / "examples" / "regions"))
    assets = [
        *build_demo_world_assets(by_name, cities_def),
        *build_traffic_assets(city_hour),
        *build_feature_assets(hours_def),
        *build_training_assets(hours_def),
        *build_generation_assets(city_hour),
        *build_release_assets(city_hour, assets_dir=base_path),
        *build_privacy_assets(assets_dir=base_path),
        *build_evaluation_assets(city_hour),
        *build_region_context_assets(region_partitions, regions_dir, hours_def),
        *build_session_assets(city_hour, cities_def),
        *build_hourly_assets(cities_def),
        *build_dg_assets(cities_def),
    ]
    partitions = {"city": cities_def, "city_hour": city_hour, "hour": hours_def, "region": region_partitions,
                  None: None}
    jobs = [define_asset_job(name, spec["selection"], partitions_def=partitions[spec["partitions"]],
                             description=spec["description"], tags=spec["tags"])
            for name, spec in job_table().items()]
    by_job = {job.name: job for job in jobs}
    return Definitions(assets=assets, jobs=jobs, schedules=[release_schedule(by_job["release_job"])],
                       sensors=[region_sensor(by_job["region_context_job"], regions_dir)],
                       resources={"settings": settings, "evaluation": evaluation or EvaluationSettings(),
                                  "privacy": privacy or PrivacySettings(), "dask": dask or DaskSettings(),
                                  **io_managers(base_path)})


defs = build_definitions()
