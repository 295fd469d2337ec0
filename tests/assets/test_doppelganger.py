"""DG assets in-process on two tiny simulated cities: dg_model trains (tiny budget) on the training city and is
stored as a series model folder; a held-out city's DG series is written with AC-L1 of DG, naive and Data."""

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance

from appshot_model.core.cube import read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.series.trained import is_series_model_folder, load_series_models
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions

CITIES = [small_demo_city("alpha", 12, 12), small_demo_city("beta", 12, 13, 1)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def world(tmp_path, days: int = 8, **settings):
    settings = AppshotSettings(seed=1, days=days, data_dir=str(tmp_path), series_days=4, dg_days=7,
                               dg_train_cells=60, dg_steps=3, held_out_cities=["beta"], **settings)
    assets = tmp_path / "assets"
    for city in CITIES:
        context = simulate_context(city, seed=1)
        write_cube(context, assets / "context_cube" / f"{city.name}.nc")
        write_cube(simulate_traffic(city, context, seed=1, days=days), assets / "traffic_cube" / f"{city.name}.nc")
    (assets / "attribute_selection.json").write_text('{"attributes": ["population", "poi_shop"]}')
    return build_definitions(cities=CITIES, settings=settings), assets


def test_dg_assets_materialise(tmp_path):
    defs, assets = world(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        defs.resolve_job_def("dg_training_job").execute_in_process(instance=instance)
        defs.resolve_job_def("dg_series_job").execute_in_process(instance=instance, partition_key="beta")
        trained = instance.get_latest_materialization_event(AssetKey("dg_model")).asset_materialization.metadata
        scored = instance.get_latest_materialization_event(AssetKey("dg_series")).asset_materialization.metadata
    assert is_series_model_folder(assets / "dg_model")
    models = load_series_models(assets / "dg_model")
    assert models.info["training_cities"] == ["alpha"] and models.info["cells"] == 60 and models.info["hours"] == 168
    assert models.attributes == ["population", "poi_shop"] and len(models.services) == 10
    assert trained["steps"].value == 3 and len(trained["validation_acl1"].value) == 1
    series = read_cube(assets / "dg_series" / "beta.nc")
    assert series.shape == (96, 10, 12, 13) and series.attrs["label"] == "synthetic"
    assert series.attrs["method"] == "doppelganger" and series.rio.crs is not None
    scores = scored["acl1_total"].value
    assert sorted(scores) == ["DG", "data", "naive"] and all(np.isfinite(v) and v >= 0 for v in scores.values())
    assert scored["max_lag_h"].value == 47 and scored["training_city"].value is False
    for name in ("dg_training", "beta_dg_acf"):
        assert (tmp_path / "figures" / "hourly" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_dg_model_refuses_too_few_days(tmp_path):
    defs, _ = world(tmp_path, days=6)
    with DagsterInstance.ephemeral() as instance, pytest.raises(AppshotInputError, match="dg_days = 7 needs 168 hours"):
        defs.resolve_job_def("dg_training_job").execute_in_process(instance=instance)
