"""The appshot code location: one ``Definitions`` assembled from the asset modules."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagster import AssetSelection, Definitions, define_asset_job

from appshot_model.traffic.demo import DEMO_CITIES, DemoCity
from appshot_model.core.names import PEAK_HOURS
from assets.demo_world import build_demo_world_assets
from assets.evaluation import build_evaluation_assets
from assets.features import build_feature_assets
from assets.generation import build_generation_assets
from assets.privacy import build_privacy_assets
from assets.region_context import build_region_context_assets
from assets.release import build_release_assets
from assets.traffic import build_traffic_assets
from assets.training import build_training_assets
from pipelines.io_managers import io_managers
from assets.partitions import city_hour_partitions, city_partitions, hour_partitions, region_partitions
from assets.resources import AppshotSettings, EvaluationSettings, PrivacySettings, default_data_dir
from pipelines.schedules import release_schedule
from pipelines.sensors import region_sensor

#: Stage jobs, in the order the whole demo runs them (Dagster jobs need one partitioning each).
STAGE_JOBS = ("demo_world_job", "peak_traffic_job", "attribute_selection_job", "training_job", "generation_job",
              "release_job")
#: Tag of the jobs that train models; deploy/dagster-postgres.yaml lets one such run go at a time.
TRAINING_TAG = {"appshot/stage": "training"}


def build_definitions(cities: Sequence[DemoCity] = DEMO_CITIES, hours: Sequence[str] = tuple(PEAK_HOURS),
                      settings: AppshotSettings | None = None, base_path: str | None = None,
                      regions_dir: str | None = None, evaluation: EvaluationSettings | None = None,
                      privacy: PrivacySettings | None = None) -> Definitions:
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
    ]
    jobs = [
        define_asset_job("demo_world_job", AssetSelection.groups("demo_world"), partitions_def=cities_def,
                         description="Simulate one demo city: grid, context cube, hourly traffic cube."),
        define_asset_job("peak_traffic_job", AssetSelection.assets("peak_traffic"), partitions_def=city_hour,
                         description="Extract the weekday snapshots of one city at one peak hour."),
        define_asset_job("attribute_selection_job", AssetSelection.assets("attribute_selection"),
                         description="Spearman attribute selection over the training cities."),
        define_asset_job("training_job", AssetSelection.assets("normalisation", "trained_model"),
                         partitions_def=hours_def, tags=TRAINING_TAG,
                         description="Normalisation constants and the AppShot model of one peak hour."),
        define_asset_job("generation_job", AssetSelection.assets("generated_snapshots"), partitions_def=city_hour,
                         description="Generate N synthetic snapshots for one city x peak hour."),
        define_asset_job("city_hour_release_job", AssetSelection.assets("city_hour_release"), partitions_def=city_hour,
                         description="Publish and verify the release of one city x peak hour."),
        define_asset_job("release_job", AssetSelection.assets("privacy_audit", "release"),
                         description="Audit every generated city x peak hour against the privacy gate, then gather "
                                     "them into one versioned release (skipped when the gate blocks)."),
        define_asset_job("loco_job", AssetSelection.assets("loco_scores"), partitions_def=city_hour, tags=TRAINING_TAG,
                         description="Leave one city out: train every evaluated method on the other cities, "
                                     "generate and score the held-out city at one peak hour."),
        define_asset_job("evaluation_report_job", AssetSelection.assets("evaluation_report"),
                         description="Gather the leave-one-city-out scores into the fidelity report."),
        define_asset_job("region_context_job", AssetSelection.assets("region_grid", "region_context_cube"),
                         partitions_def=region_partitions, description="Grid and real context cube of one region file."),
        define_asset_job("region_traffic_job", AssetSelection.assets("region_traffic"),
                         description="Synthetic traffic for one region x peak hour (model trained on the demo world)."),
    ]
    by_job = {job.name: job for job in jobs}
    return Definitions(assets=assets, jobs=jobs, schedules=[release_schedule(by_job["release_job"])],
                       sensors=[region_sensor(by_job["region_context_job"], regions_dir)],
                       resources={"settings": settings, "evaluation": evaluation or EvaluationSettings(),
                                  "privacy": privacy or PrivacySettings(),
                                  **io_managers(base_path)})


defs = build_definitions()
