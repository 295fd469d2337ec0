"""Stitched hourly AppShot series: AR(1) noise, residual autocorrelation, series generation and NetCDF output."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from appshot_model.core.cube import CF_CALENDAR, make_traffic_cube, read_cube, write_hourly_series
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.model.config import ModelConfig
from appshot_model.model.generate import generate_map, prepare_context
from appshot_model.model.hours import with_hour_context
from appshot_model.model.noise import draw_noise
from appshot_model.series.region import generate_region_series, load_hourly_models, series_file, series_times
from appshot_model.series.stitched import ar1_noise, calibrate_rho, generate_hourly_series, residual_lag1
from tests.appshot_model.model.test_generate import make_artefact, make_context
from tests.appshot_model.model.test_hours import conditioned_artefact

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _draws(rho: float, seed: int, steps: int = 400) -> tuple[np.ndarray, np.ndarray]:
    cfg = ModelConfig(features=2, noise_dim=50, noise_channels=3, noise_correlation_cells=1.0)
    pairs = list(ar1_noise(torch.Generator().manual_seed(seed), cfg, steps, 16, 16, rho))
    return (torch.cat([z for z, _ in pairs]).numpy(), torch.cat([f for _, f in pairs]).numpy())


def test_ar1_noise_keeps_the_marginal_and_has_lag1_correlation_rho():
    z, field = _draws(0.8, seed=1)
    assert z.shape == (400, 50) and field.shape == (400, 3, 16, 16)
    for values in (z.reshape(400, -1), field.reshape(400, -1)):
        assert abs(values.mean()) < 0.1 and abs(values.std() - 1.0) < 0.06     # stationary N(0, 1) marginal
        lag1 = np.mean([np.corrcoef(values[:-1, j], values[1:, j])[0, 1] for j in range(values.shape[1])])
        assert abs(lag1 - 0.8) < 0.03
    first_half, second_half = z[:200], z[200:]
    assert abs(first_half.std() - second_half.std()) < 0.06                      # no drift of the spread
    independent, _ = _draws(0.0, seed=1)
    np.testing.assert_array_equal(independent[0], z[0])                          # same start, same seed
    assert abs(np.corrcoef(independent[:-1].ravel(), independent[1:].ravel())[0, 1]) < 0.03
    np.testing.assert_array_equal(_draws(0.8, seed=1)[1], field)                 # reproducible under a seed
    assert not np.array_equal(_draws(0.8, seed=2)[0], z)
    with pytest.raises(AppshotInputError, match="rho"):
        next(ar1_noise(torch.Generator(), ModelConfig(features=2), 2, 4, 4, 1.0))


def _hourly_cube(values: np.ndarray) -> xr.DataArray:
    grid = Grid("EPSG:32632", 500000.0, 5050000.0, 1, values.shape[1])
    times = pd.date_range("2026-03-02", periods=values.shape[0], freq="h")
    return make_traffic_cube(values[:, None, None, :], times, ["youtube"], grid)


def test_residual_lag1_measures_memory_beyond_the_daily_profile():
    rng = np.random.default_rng(0)
    hours = 24 * 28
    profile = 10.0 + 5.0 * np.sin(2 * np.pi * np.arange(hours) / 24)[:, None]
    ar = np.zeros((hours, 50))
    for t in range(1, hours):
        ar[t] = 0.7 * ar[t - 1] + np.sqrt(1 - 0.7 ** 2) * rng.standard_normal(50)
    assert abs(residual_lag1(_hourly_cube(profile + ar)) - 0.7) < 0.05
    assert abs(residual_lag1(_hourly_cube(profile + rng.standard_normal((hours, 50))))) < 0.05
    with pytest.raises(AppshotInputError, match="48 hours"):
        residual_lag1(_hourly_cube(profile[:24] + ar[:24]))
    with pytest.raises(AppshotInputError, match="consecutive"):
        residual_lag1(_hourly_cube(profile + ar).isel(time=slice(None, None, 2)))


TIMES = pd.date_range("2026-03-06 20:00", periods=10, freq="h")  # Friday evening into Saturday


def test_series_shape_labels_and_reproducibility():
    artefact, context = conditioned_artefact(), make_context()
    series = generate_hourly_series(artefact, context, TIMES, seed=4, rho=0.9)
    assert series.dims == ("time", "service", "y", "x") and series.shape == (10, 2, 14, 17)
    assert series.attrs["label"] == "synthetic" and series.attrs["noise_rho"] == 0.9
    assert series.rio.crs == context.rio.crs and (series.values >= 0).all()
    np.testing.assert_array_equal(pd.DatetimeIndex(series.time.values), TIMES)
    np.testing.assert_array_equal(generate_hourly_series(artefact, context, TIMES, 4, 0.9).values, series.values)
    assert not np.array_equal(generate_hourly_series(artefact, context, TIMES, 5, 0.9).values, series.values)


def test_coherent_noise_makes_consecutive_hours_alike():
    artefact, context = conditioned_artefact(), make_context()
    times = pd.date_range("2026-03-02 12:00", periods=12, freq="h")
    steps = {rho: np.abs(np.diff(generate_hourly_series(artefact, context, times, 1, rho).values, axis=0)).mean()
             for rho in (0.0, 0.95)}
    assert steps[0.95] < 0.6 * steps[0.0]


def test_per_hour_models_and_their_checks():
    context = make_context()
    models = {h: make_artefact(noise_channels=2) for h in range(24)}
    series = generate_hourly_series(models, context, TIMES, seed=4, rho=0.5)
    assert series.shape == (10, 2, 14, 17) and series.attrs["hours_model"] == "one model per hour"
    with pytest.raises(AppshotInputError, match=r"no model for hours of day \[22, 23\]"):
        generate_hourly_series({h: models[h] for h in range(22)}, context, TIMES, 4, 0.5)
    with pytest.raises(AppshotInputError, match="hour-conditioned"):
        generate_hourly_series(models[0], context, TIMES, 4, 0.5)
    mixed = {**models, 21: make_artefact(noise_channels=3)}
    with pytest.raises(AppshotInputError, match="differ in noise shape"):
        generate_hourly_series(mixed, context, TIMES, 4, 0.5)


def test_netcdf_has_cf_time_crs_and_same_bytes_for_same_seed(tmp_path):
    artefact, context = conditioned_artefact(), make_context()
    series = generate_hourly_series(artefact, context, TIMES, seed=4, rho=0.9)
    path = write_hourly_series(series, tmp_path / "a.nc")
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw.time.attrs["units"].replace("T", " ") == "hours since 2026-03-06 20:00:00"
        assert raw.time.attrs["calendar"] == CF_CALENDAR and raw.time.attrs["standard_name"] == "time"
        np.testing.assert_array_equal(raw.time.values, np.arange(10))
        assert raw.traffic.attrs["grid_mapping"] == "spatial_ref" and "crs_wkt" in raw.spatial_ref.attrs
    back = read_cube(path)
    np.testing.assert_array_equal(back.values, series.values)
    np.testing.assert_array_equal(pd.DatetimeIndex(back.time.values), TIMES)
    assert back.rio.crs == context.rio.crs and back.attrs["label"] == "synthetic"
    again = write_hourly_series(generate_hourly_series(artefact, context, TIMES, seed=4, rho=0.9), tmp_path / "b.nc")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (path, again)]
    assert digest[0] == digest[1]


def test_calibrate_rho_picks_the_candidate_closest_to_the_real_memory():
    artefact, context = conditioned_artefact(), make_context()
    times = pd.date_range("2026-03-02", periods=48, freq="h")
    real = generate_hourly_series(artefact, context, times, seed=9, rho=0.9)
    rho, target, tried = calibrate_rho(artefact, context, real, seed=3, candidates=(0.0, 0.9))
    assert rho == 0.9 and set(tried) == {0.0, 0.9}
    assert abs(tried[0.9] - target) < abs(tried[0.0] - target)


def test_region_series_from_a_model_folder(tmp_path):
    conditioned = conditioned_artefact().save(tmp_path / "conditioned")
    per_hour = tmp_path / "hours"
    for hour in (0, 1):
        make_artefact(noise_channels=2).save(per_hour / f"{hour:02d}")
    region = tmp_path / "vaduz.yaml"
    region.write_text("name: Vaduz\n")

    def build_context(region, progress=False):
        return make_context(), {}

    out = series_file(tmp_path / "out", region)
    series = generate_region_series(conditioned, region, [0, 1], 2, "2026-03-07", 1, 0.8, out,
                                    region_loader=lambda p: type("Region", (), {"name": "Vaduz"})(),
                                    context_builder=build_context)
    assert out.name == "vaduz-hourly.nc" and read_cube(out).shape == (4, 2, 14, 17)
    assert [str(t)[:13] for t in series.time.values] == ["2026-03-07T00", "2026-03-07T01", "2026-03-08T00",
                                                         "2026-03-08T01"]
    assert isinstance(load_hourly_models(per_hour, [0, 1]), dict)
    with pytest.raises(AppshotInputError, match=r"hours \['02'\]"):
        load_hourly_models(per_hour, [0, 2])
    with pytest.raises(AppshotInputError, match="--days"):
        series_times([0], 0, "2026-03-07")
    with pytest.raises(AppshotInputError, match="--start"):
        series_times([0], 1, "someday")


@pytest.mark.parametrize("conditioned", [True, False])
def test_series_hour_equals_one_generate_map_pass_with_the_same_noise(conditioned):
    """The whole-map pass with the first convolution computed once equals the generator run tile by tile."""
    context = make_context(160, 32)  # 160 rows of 32: two row blocks of at most 128
    artefact = conditioned_artefact() if conditioned else make_artefact(noise_channels=2)
    models = artefact if conditioned else {h: artefact for h in range(24)}
    when = pd.DatetimeIndex(["2026-03-07 18:00"])  # a Saturday
    series = generate_hourly_series(models, context, when, seed=6, rho=0.7).values[0]
    z, field = draw_noise(torch.Generator().manual_seed(6), artefact.model_cfg, 1, 160, 32)
    cube = with_hour_context(context, 18, True) if conditioned else context
    expected = generate_map(artefact.generator, prepare_context(artefact, cube), z[0],
                            artefact.model_cfg.first_kernel, tile=32,
                            field_at=None if field is None else lambda r, c: field[0][:, r:r + 32, c:c + 32])
    np.testing.assert_allclose(series, artefact.normalisation.denormalise_traffic(expected), rtol=1e-4, atol=1e-4)


def test_series_calibration_gives_the_profile_shape_and_residual_targets():
    """With a series calibration (one level bin, level factor 1), the series follows the bin's profile shape;
    each cell's variation around it, measured on the generated series like on real data, is close to the target
    ratio and its calendar-day means carry about the target share; a larger target gives larger variation; the
    mean level over the groups barely moves; reproducible under a seed."""
    from appshot_model.model.residual import GROUPS, real_profile

    artefact, context = conditioned_artefact(), make_context()
    times = pd.date_range("2026-03-02", periods=24 * 14, freq="h")
    raw = generate_hourly_series(artefact, context, times, seed=2, rho=0.4)
    assert raw.attrs["series_calibration"] == "none"
    raw_level = real_profile(raw)[0].sum(axis=(1, 2, 3)).mean()
    shape = 1.0 + 0.8 * np.sin(2 * np.pi * (np.arange(GROUPS) % 24 - 9) / 24)
    measured = {}
    for target, share in ((0.3, 0.6), (0.6, 0.2)):                 # residual CV, day share
        artefact.series_calibration = {"level_edges": [], "weekly": False,
                                       "profile_shape": [np.stack([shape, shape], axis=1).tolist()],
                                       "level_factor": [[1.0, 1.0]], "residual_cv": [[target, target]],
                                       "day_share": [[share, share]], "day_persistence": [[0.0, 0.0]]}
        series = generate_hourly_series(artefact, context, times, seed=2, rho=0.4)
        assert series.attrs["series_calibration"].startswith("level factor per level bin") and (series.values >= 0).all()
        means, cv, day_share, persistence = real_profile(series)
        measured_persistence = np.nanmedian(persistence)             # independent days (14 of them)
        measured[target] = np.nanmedian(cv)
        assert abs(np.nanmedian(day_share) - share) < 0.1
        city = means.sum(axis=(1, 2, 3))
        assert np.corrcoef(city, shape)[0, 1] > 0.95
        # the mean over the 48 groups; clipping at 0 adds traffic when the variation is large
        assert abs(city.mean() / raw_level - 1.0) < (0.05 if target < 0.5 else 0.25)
    np.testing.assert_array_equal(generate_hourly_series(artefact, context, times, 2, 0.4).values, series.values)
    assert abs(measured[0.3] / 0.3 - 1.0) < 0.15 and abs(measured[0.6] / 0.6 - 1.0) < 0.15
    artefact.series_calibration["day_persistence"] = [[0.8, 0.8]]      # days that follow each other
    persisting = real_profile(generate_hourly_series(artefact, context, times, seed=2, rho=0.4))
    assert measured_persistence < 0.3 and np.nanmedian(persisting[3]) > measured_persistence + 0.3
    assert abs(np.nanmedian(persisting[2]) - 0.2) < 0.1 and abs(np.nanmedian(persisting[1]) / 0.6 - 1.0) < 0.15
    for hours in (1, 6):                                          # under a day: the profile from the extra draws
        short = generate_hourly_series(artefact, context, times[:hours], seed=2, rho=0.4)
        assert short.shape[0] == hours and np.isfinite(short.values).all() and (short.values >= 0).all()
        assert not np.array_equal(short.values, raw.values[:hours])
    np.testing.assert_array_equal(generate_hourly_series(artefact, context, times, 2, 0.4, calibrated=False).values,
                                  raw.values)
