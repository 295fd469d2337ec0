"""Series calibration of the hour-conditioned model: group means, the real residual ratio, the calibration on
training cities and its application to generated series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from appshot_model.core.cube import make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.hourmap import HourMapGenerator
from appshot_model.model.hours import train_hour_conditioned_model
from appshot_model.model.noise import draw_noise
from appshot_model.model.residual import (GROUPS, LEVEL_BINS, calibrate_series, calibrate_series_values, cell_level,
                                          group_means, hour_groups, profile_draws, real_profile)
from tests.appshot_model.model.test_generate import make_context
from tests.appshot_model.model.test_hours import TINY_MODEL, TINY_TRAINING, conditioned_artefact, tiny_cities

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cube(total: np.ndarray, start: str = "2026-03-02") -> "xr.DataArray":  # noqa: F821
    """A two-service cube ``[time, 2, 1, cells]`` whose services split ``total [time, cells]`` 3:1."""
    grid = Grid("EPSG:32632", 500000.0, 5050000.0, 1, total.shape[1])
    times = pd.date_range(start, periods=total.shape[0], freq="h")
    values = np.stack([0.75 * total, 0.25 * total], axis=1)[:, :, None, :]
    return make_traffic_cube(values.astype(np.float32), times, ["youtube", "whatsapp"], grid)


def test_hour_groups_split_hour_of_day_and_day_type():
    times = pd.DatetimeIndex(["2026-03-06 23:00", "2026-03-07 00:00", "2026-03-08 05:00", "2026-03-09 05:00"])
    np.testing.assert_array_equal(hour_groups(times), [23, 24, 29, 5])  # Friday, Saturday, Sunday, Monday


def test_real_profile_gives_group_means_and_residual_ratio():
    """Two weeks: a profile per group plus residuals +r / -r alternating within each group (group means exact)."""
    hours = 24 * 14
    groups = hour_groups(pd.date_range("2026-03-02", periods=hours, freq="h"))
    profile = np.stack([np.arange(GROUPS, dtype=float), 100.0 + 2.0 * np.arange(GROUPS)], axis=1)  # [48, 2 cells]
    occurrence = np.array([np.sum(groups[:t] == groups[t]) for t in range(hours)])
    residual = np.where(occurrence % 2 == 0, 1.0, -1.0)[:, None] * np.array([3.0, 0.5])
    means, ratio = real_profile(_cube(profile[groups] + residual))
    assert means.shape == (GROUPS, 2, 1, 2)
    np.testing.assert_allclose(means[:, 0, 0], 0.75 * profile, rtol=1e-5, atol=1e-5)
    expected = np.array([3.0, 0.5]) * np.sqrt(hours / (hours - GROUPS)) / (np.array([1.0, 2.0]) * np.arange(48).std())
    np.testing.assert_allclose(ratio[0], expected, rtol=1e-5)
    assert np.isnan(real_profile(_cube(np.ones((hours, 2))))[1]).all()
    with pytest.raises(AppshotInputError, match="group"):
        real_profile(_cube(profile[groups][:24 * 6] + residual[:24 * 6]))  # Monday-Saturday: one weekend day


def test_group_means_and_cell_level():
    values = np.arange(2 * GROUPS * 2, dtype=float).reshape(2 * GROUPS, 2, 1, 1)
    groups = np.tile(np.arange(GROUPS), 2)
    means = group_means(values, groups)
    np.testing.assert_allclose(means[5], (values[5] + values[GROUPS + 5]) / 2)
    np.testing.assert_allclose(cell_level(np.full((GROUPS, 2, 1, 1), 5.0), [50.0, 50.0]), [[-1.0]])
    with pytest.raises(AppshotInputError, match="group 47"):
        group_means(values[:GROUPS - 1], groups[:GROUPS - 1])


def test_profile_draws_are_seeded():
    maps = HourMapGenerator(conditioned_artefact(), make_context())
    first, groups = profile_draws(maps, 1, draws=2)
    assert first.shape == (2 * GROUPS, 2, 14, 17) and list(groups[:4]) == [0, 0, 1, 1]
    np.testing.assert_array_equal(profile_draws(maps, 1, draws=2)[0], first)
    assert not np.array_equal(profile_draws(maps, 2, draws=2)[0], first)


def test_series_values_take_the_profile_factor_of_their_group():
    """A factor 0 for one group empties its hours exactly; a factor 2 elsewhere doubles the level."""
    artefact, context = conditioned_artefact(), make_context()
    maps = HourMapGenerator(artefact, context)
    groups = np.tile(np.arange(GROUPS), 3)
    values = np.stack([maps(int(g) % 24, bool(g >= 24), *draw_noise(torch.Generator().manual_seed(i),
                                                                      artefact.model_cfg, 1, 14, 17))
                       for i, g in enumerate(groups)])
    factor = np.full((1, GROUPS, 2), 2.0)
    factor[0, 30] = 0.0                                              # Saturday/Sunday 06:00
    artefact.series_calibration = {"level_edges": [], "residual_ratio": [1.0], "profile_factor": factor.tolist()}
    calibrated = values.copy()
    scale = calibrate_series_values(calibrated, groups, maps, seed=1)
    assert scale.shape == (14, 17) and (calibrated >= 0).all()
    assert (calibrated[groups == 30] == 0).all()
    others = groups != 30
    assert abs(calibrated[others].sum() / values[others].sum() - 2.0) < 0.1
    artefact.series_calibration = None
    with pytest.raises(AppshotInputError, match="series calibration"):
        calibrate_series_values(values.copy(), groups, maps, seed=1)


@pytest.fixture(scope="module")
def two_week_world():
    return tiny_cities(14)


def test_training_calibrates_the_series_from_the_real_cells(two_week_world, tmp_path):
    contexts, traffic, attributes = two_week_world
    model = train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, hours=[3, 12],
                                         hour_levels=False)
    calibration = model.series_calibration
    assert calibration is not None and len(calibration["residual_ratio"]) == LEVEL_BINS
    assert len(calibration["level_edges"]) == LEVEL_BINS - 1 and np.all(np.diff(calibration["level_edges"]) >= 0)
    assert np.shape(calibration["profile_factor"]) == (LEVEL_BINS, GROUPS, len(model.services))
    assert (np.asarray(calibration["profile_factor"]) >= 0).all()
    real = np.concatenate([real_profile(t)[1].ravel() for t in traffic.values()])
    real = real[np.isfinite(real)]
    assert real.min() <= min(calibration["residual_ratio"]) and max(calibration["residual_ratio"]) <= real.max()
    model.save(tmp_path / "m")
    loaded = ModelArtefact.load(tmp_path / "m")
    assert loaded.series_calibration == calibration and loaded.model_hash == model.model_hash
    hash_with = model.model_hash
    model.series_calibration = None
    assert model.model_hash != hash_with
    seen = []
    short = {c: t.isel(time=slice(0, 24 * 6)) for c, t in traffic.items()}  # one weekend day: no calibration
    assert calibrate_series(model, contexts, short, seed=0, log=seen.append) is None
    assert len(seen) == 2 and "skipped" in seen[0]
