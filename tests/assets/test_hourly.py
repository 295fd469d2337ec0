"""Hourly assets in-process on two tiny simulated cities: the hour-conditioned model trains (tiny budget), a
city's stitched hourly series is written as NetCDF with figures, and its E(p) table is computed."""

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance

from appshot_model.core.cube import read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.model.hours import CONDITIONED, HOUR_ATTRIBUTES, HOURS
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from assets.partitions import hour_partitions
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions

CITIES = [small_demo_city("alpha", 12, 12), small_demo_city("beta", 12, 13, 1)]
ATTRIBUTES = ["population", "poi_shop", "landuse_continuous_urban"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_hourly_assets_materialise(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {features: 4, noise_channels: 2}\n"
                      "train: {steps: 2, batch_size: 2, tile: 10, noise_draws: 1, bn_batches: 0}\n")
    settings = AppshotSettings(seed=1, days=8, data_dir=str(tmp_path), config_file=str(config), series_days=2,
                               series_rho=0.8, privacy_holdout_fraction=0.1, held_out_cities=["beta"])
    defs = build_definitions(cities=CITIES, settings=settings)
    assets = tmp_path / "assets"
    for city in CITIES:
        context = simulate_context(city, seed=1)
        write_cube(context, assets / "context_cube" / f"{city.name}.nc")
        write_cube(simulate_traffic(city, context, seed=1, days=8), assets / "traffic_cube" / f"{city.name}.nc")
    (assets / "attribute_selection.json").write_text('{"attributes": ["population", "poi_shop", '
                                                     '"landuse_continuous_urban"]}')
    with DagsterInstance.ephemeral() as instance:
        model = defs.resolve_job_def("hourly_training_job").execute_in_process(instance=instance).output_for_node(
            "hourly_model")
        result = defs.resolve_job_def("hourly_series_job").execute_in_process(instance=instance, partition_key="beta")
        metadata = instance.get_latest_materialization_event(AssetKey("hourly_model")).asset_materialization.metadata
        shift_range = metadata["hour_level_shift_logits"].value
        cv = metadata["residual_cv_per_level_bin"].value
        series_metadata = instance.get_latest_materialization_event(
            AssetKey("hourly_series")).asset_materialization.metadata
    assert model.peak_hour == CONDITIONED and model.attributes == [*ATTRIBUTES, *HOUR_ATTRIBUTES]
    assert {k.split("@")[0] for k in model.training_cities} == {"alpha"}  # beta is held out
    assert np.shape(model.hour_level_shift) == (2, 24, 10)
    levels = np.asarray(model.hour_level_shift)
    assert shift_range == [round(float(levels.min()), 3), round(float(levels.max()), 3)]
    assert cv == (None if model.series_calibration is None else
                  np.mean(model.series_calibration["residual_cv"], axis=1).round(3).tolist())
    if model.series_calibration is not None:
        for key in ("day_share", "day_persistence"):
            assert metadata[f"{key}_per_level_bin"].value == np.mean(model.series_calibration[key],
                                                                     axis=1).round(3).tolist()
        assert metadata["series_profiles"].value == ("hour of week" if model.series_calibration["weekly"]
                                                     else "hour of day x day type")
        assert metadata["series_context_neighbours"].value == model.series_calibration["neighbours"] > 0
        assert metadata["series_reference_cells"].value == len(model.series_reference["context"]) > 0
    nemd_medians = series_metadata["nemd_per_hour_median"].value
    assert sorted(nemd_medians) == ["AppShot", "data"] and all(0 <= v < 1 for v in nemd_medians.values())
    assert (tmp_path / "figures" / "hourly" / "beta_nemd_per_hour.png").read_bytes()[:4] == b"\x89PNG"
    series = read_cube(assets / "hourly_series" / "beta.nc")
    assert series.attrs["series_calibration"].startswith("level factor" if model.series_calibration else "none")
    assert series.shape == (48, 10, 12, 13) and series.attrs["label"] == "synthetic"
    assert series.attrs["noise_rho"] == 0.8 and series.rio.crs is not None
    rows = result.output_for_node("series_slicing")
    assert len(rows) == 16 and all(0 < r["e_real"] <= 1 and np.isfinite(r["rel_error"]) for r in rows)
    for name in ("training", "beta_acf", "beta_profile", "beta_slicing"):
        assert (tmp_path / "figures" / "hourly" / f"{name}.png").stat().st_size > 0


def test_hour_partitions_take_peaks_and_hours_of_day():
    assert hour_partitions().get_partition_keys() == ["morning", "midday", "evening"]  # the default is unchanged
    assert hour_partitions(HOURS).get_partition_keys() == [f"{h:02d}" for h in range(24)]
    assert hour_partitions(["morning", "07"]).get_partition_keys() == ["morning", "07"]
    with pytest.raises(AppshotInputError, match="'7'"):
        hour_partitions(["7"])
