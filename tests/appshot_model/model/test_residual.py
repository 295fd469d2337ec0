"""Residual amplitude of hourly series: profile estimates, the real residual ratio, its calibration and the
per-cell scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.hourmap import HourMapGenerator
from appshot_model.model.hours import train_hour_conditioned_model
from appshot_model.model.residual import (GROUPS, ModelProfile, ProfileEstimate, calibrate_residual_ratio, hour_groups,
                                          model_profile, real_ratio, residual_scale)
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


def test_real_ratio_is_residual_std_over_profile_std():
    """Two weeks: a profile per group plus residuals +r / -r alternating within each group (group means exact)."""
    hours = 24 * 14
    groups = hour_groups(pd.date_range("2026-03-02", periods=hours, freq="h"))
    profile = np.stack([np.arange(GROUPS, dtype=float), 100.0 + 2.0 * np.arange(GROUPS)], axis=1)  # [48, 2 cells]
    occurrence = np.array([np.sum(groups[:t] == groups[t]) for t in range(hours)])
    residual = np.where(occurrence % 2 == 0, 1.0, -1.0)[:, None] * np.array([3.0, 0.5])
    ratio = real_ratio(_cube(profile[groups] + residual))
    expected = np.array([3.0, 0.5]) * np.sqrt(hours / (hours - GROUPS)) / (np.array([1.0, 2.0]) * np.arange(48).std())
    np.testing.assert_allclose(ratio[0], expected, rtol=1e-5)
    flat = real_ratio(_cube(np.ones((hours, 2))))
    assert np.isnan(flat).all()
    with pytest.raises(AppshotInputError, match="group"):
        real_ratio(_cube(profile[groups][:24 * 6] + residual[:24 * 6]))  # Monday-Saturday: one weekend day


def test_profile_estimate_pools_the_spread_within_groups():
    rng = np.random.default_rng(0)
    estimate = ProfileEstimate(2, 3, 4)
    maps = {g: rng.gamma(2.0, 1.0, size=(2 + g % 3, 2, 3, 4)) for g in range(GROUPS)}
    for g, samples in maps.items():
        for sample in samples:
            estimate.add(g, sample)
    profile = estimate.profile()
    np.testing.assert_allclose(profile.mean[7], maps[7].mean(axis=0), rtol=1e-6)
    within = sum(((m.sum(axis=1) - m.sum(axis=1).mean(axis=0)) ** 2).sum(axis=0) for m in maps.values())
    freedom = sum(len(m) - 1 for m in maps.values())
    np.testing.assert_allclose(profile.residual_std, np.sqrt(within / freedom), rtol=1e-6)
    with pytest.raises(AppshotInputError, match="group 0"):
        ProfileEstimate(2, 3, 4).profile()


def test_residual_scale_gives_each_cell_the_target_ratio_of_its_level_bin():
    artefact = conditioned_artefact()
    mean = np.zeros((GROUPS, 2, 1, 2), np.float32)
    mean[:, 0, 0, 0] = 1.0 + np.arange(GROUPS) % 2          # small cell: group means 1, 2, 1, 2 ...
    mean[:, 0, 0, 1] = 100.0 + 10.0 * (np.arange(GROUPS) % 2)
    profile = ModelProfile(mean, np.array([[1.0, 1.0]]))
    levels = profile.level(artefact.normalisation.traffic_max)[0]
    artefact.residual_ratio = {"level_edges": [float(levels.mean())], "ratio": [2.0, 0.5]}
    scale = residual_scale(artefact, profile)
    np.testing.assert_allclose(scale * profile.ratio(), [[2.0, 0.5]], rtol=1e-6)
    flat = ModelProfile(np.ones((GROUPS, 2, 1, 2), np.float32), np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(residual_scale(artefact, flat), 1.0)
    artefact.residual_ratio = None
    with pytest.raises(AppshotInputError, match="residual ratio"):
        residual_scale(artefact, profile)


def test_model_profile_is_seeded():
    maps = HourMapGenerator(conditioned_artefact(), make_context())
    first, again, other = (model_profile(maps, seed, draws=2) for seed in (1, 1, 2))
    assert first.mean.shape == (GROUPS, 2, 14, 17) and (first.residual_std > 0).all()
    np.testing.assert_array_equal(first.mean, again.mean)
    assert not np.array_equal(first.mean, other.mean)
    with pytest.raises(AppshotInputError, match="2 noise draws"):
        model_profile(maps, 1, draws=1)


@pytest.fixture(scope="module")
def two_week_world():
    return tiny_cities(14)


def test_training_calibrates_the_residual_ratio_from_the_real_cells(two_week_world, tmp_path):
    contexts, traffic, attributes = two_week_world
    model = train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, hours=[3, 12],
                                         hour_levels=False)
    calibration = model.residual_ratio
    assert calibration is not None and len(calibration["ratio"]) == len(calibration["level_edges"]) + 1
    real = np.concatenate([real_ratio(t).ravel() for t in traffic.values()])
    real = real[np.isfinite(real)]
    assert min(calibration["ratio"]) >= real.min() and max(calibration["ratio"]) <= real.max()
    assert np.all(np.diff(calibration["level_edges"]) >= 0)
    model.save(tmp_path / "m")
    loaded = ModelArtefact.load(tmp_path / "m")
    assert loaded.residual_ratio == calibration and loaded.model_hash == model.model_hash
    hash_with = model.model_hash
    model.residual_ratio = None
    assert model.model_hash != hash_with
    model.residual_ratio = calibration
    seen = []
    short = {c: t.isel(time=slice(0, 24 * 6)) for c, t in traffic.items()}  # one weekend day: no ratio
    assert calibrate_residual_ratio(model, contexts, short, seed=0, log=seen.append) is None
    assert len(seen) == 2 and "skipped" in seen[0]
