"""A small code location for the PostgreSQL instance tests: the project's demo-world assets for
three tiny simulated cities (no torch import, and every step in the run's own process, so a run
takes a few seconds). Outputs go to ``$APPSHOT_DATA_DIR/assets``."""

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from appshot_model.traffic.demo import small_demo_city
from assets.demo_world import build_demo_world_assets
from assets.partitions import city_partitions
from assets.resources import AppshotSettings
from pipelines.io_managers import io_managers

CITIES = {city.name: city for city in (small_demo_city("alpha", 12, 12), small_demo_city("beta", 12, 14, 1),
                                       small_demo_city("gamma", 14, 12, 2))}
settings = AppshotSettings(days=7)
cities_def = city_partitions(list(CITIES))
defs = Definitions(
    assets=build_demo_world_assets(CITIES, cities_def),
    jobs=[define_asset_job("demo_world_job", AssetSelection.groups("demo_world"), partitions_def=cities_def,
                           executor_def=in_process_executor)],
    resources={"settings": settings, **io_managers(f"{settings.data_dir}/assets")})
