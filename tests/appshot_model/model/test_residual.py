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
from appshot_model.model.residual import (GROUPS, LEVEL_BINS, NEIGHBOURS, WEEK_GROUPS, calendar_days, calibrate_series,
                                          calibrate_series_values, cell_level, cell_levels, cell_parameters, day_means,
                                          day_persistence, day_share, group_means, hour_groups, persist_days,
                                          profile_draws, real_profile, residual_scales, week_groups,
                                          weekly_variance_ratio)
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
    np.testing.assert_array_equal(week_groups(times), [4 * 24 + 23, 5 * 24, 6 * 24 + 5, 5])
    np.testing.assert_array_equal(calendar_days(times), [0, 1, 2, 3])


def test_day_share_is_the_day_means_share_of_the_sum_of_squares():
    """Two days of one cell: day effects +2 / -2 plus a within-day swing +-1 summing to 0 each day."""
    swing = np.tile([1.0, -1.0], 12)
    residual = np.concatenate([2.0 + swing, -2.0 + swing])[:, None, None]
    days = np.repeat([0, 1], 24)
    np.testing.assert_allclose(day_share(residual, days), [[4.0 / 5.0]])
    assert np.isnan(day_share(np.zeros((48, 1, 1)), days)).all()


def test_day_persistence_and_the_filter_across_days():
    """Day means 1, 2, ..., 6 (hand-computed lag-1 correlation 1), alternating ones (-1), a constant cell (NaN);
    the AR(1) filter keeps day 0, mixes the others and leaves phi = 0 alone."""
    days = np.repeat(np.arange(6), 24)
    residual = np.stack([np.arange(6.0)[days], np.where(days % 2, 1.0, -1.0), np.zeros(len(days))], axis=1)
    residual += np.tile(np.linspace(-1, 1, 24), 6)[:, None]       # within-day variation, no day-mean change
    np.testing.assert_allclose(day_persistence(day_means(residual, days))[:2], [1.0, -1.0], atol=1e-12)
    assert np.isnan(day_persistence(day_means(residual, days))[2])
    assert np.isnan(day_persistence(day_means(residual[:48], days[:48]))).all()
    per_day = np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    out = persist_days(per_day, np.array([0.6, 0.0]))
    np.testing.assert_allclose(out[:, 1], per_day[:, 1])
    np.testing.assert_allclose(out[:, 0], [1.0, 0.6, 0.6 * 0.6 + 0.8 * 2.0])
    white = np.random.default_rng(0).standard_normal((20000, 1))
    filtered = persist_days(white, np.array([0.7]))
    assert abs(np.corrcoef(filtered[:-1, 0], filtered[1:, 0])[0, 1] - 0.7) < 0.03 and abs(filtered.std() - 1) < 0.03


def test_residual_scales_split_the_target_between_day_means_and_the_rest():
    """Sum of squares 40 over 10 degrees of freedom (rms 2), 10 of it in the day means: target 4 with share 0.25
    gives day means rms 2 and the rest rms sqrt(12); with no rest (one hour a day) the day means carry it all."""
    scale, day, rest = residual_scales(np.array([40.0]), np.array([10.0]), np.array([4.0]), np.array([0.25]), 10.0)
    np.testing.assert_allclose([scale[0], day[0], rest[0]], [2.0, 2.0, np.sqrt(12.0) / np.sqrt(3.0)], rtol=1e-6)
    scale, day, rest = residual_scales(np.array([40.0]), np.array([40.0]), np.array([4.0]), np.array([0.25]), 10.0)
    np.testing.assert_allclose([day[0] * 2.0, rest[0]], [4.0, 1.0], rtol=1e-6)
    scale, day, rest = residual_scales(np.array([40.0]), np.array([0.0]), np.array([4.0]), np.array([0.25]), 10.0)
    np.testing.assert_allclose([day[0], rest[0] * 2.0], [1.0, 4.0], rtol=1e-6)


def test_real_profile_gives_group_means_and_residual_cv():
    """Two weeks: a profile per group plus residuals +r / -r alternating within each group (group means exact)."""
    hours = 24 * 14
    groups = hour_groups(pd.date_range("2026-03-02", periods=hours, freq="h"))
    profile = np.stack([np.arange(GROUPS, dtype=float), 100.0 + 2.0 * np.arange(GROUPS)], axis=1)  # [48, 2 cells]
    occurrence = np.array([np.sum(groups[:t] == groups[t]) for t in range(hours)])
    residual = np.where(occurrence % 2 == 0, 1.0, -1.0)[:, None] * np.array([3.0, 0.5])
    cube = _cube(profile[groups] + residual).astype(np.float64)
    before = cube.values.copy()
    means, cv, share, persistence = real_profile(cube)
    np.testing.assert_array_equal(cube.values, before)                      # the input is left alone
    assert means.shape == (GROUPS, 2, 1, 2) and cv.shape == share.shape == persistence.shape == (2, 1, 2)
    np.testing.assert_allclose(means[:, 0, 0], 0.75 * profile, rtol=1e-5, atol=1e-5)
    expected = np.array([3.0, 0.5]) * np.sqrt(hours / (hours - GROUPS)) / profile.mean(axis=0)
    np.testing.assert_allclose(cv[:, 0], [expected, expected], rtol=1e-5)   # services 3:1 of the total
    assert np.isnan(real_profile(_cube(np.zeros((hours, 2))))[1]).all()   # no traffic: no CV
    with pytest.raises(AppshotInputError, match="a week"):
        real_profile(_cube(profile[groups][:24 * 6] + residual[:24 * 6]))  # Monday-Saturday: one weekend day
    with pytest.raises(AppshotInputError, match="two weeks"):
        real_profile(_cube(profile[groups] + residual).isel(time=slice(0, 24 * 13)), weekly=True)
    assert real_profile(_cube(profile[groups] + residual), weekly=True)[0].shape == (WEEK_GROUPS, 2, 1, 2)


def test_weekly_variance_ratio_finds_a_repeated_week():
    """Three weeks: a week-periodic cell has a ratio near 0, one with the same profile every weekday near 1."""
    times = pd.date_range("2026-03-02", periods=24 * 21, freq="h")
    rng = np.random.default_rng(0)
    week = 10.0 + 5.0 * rng.random(WEEK_GROUPS)
    day = 10.0 + 5.0 * rng.random(GROUPS)
    noise = 0.1 * rng.standard_normal((len(times), 2))
    total = np.stack([week[week_groups(times)], day[hour_groups(times)]], axis=1) + noise
    ratio = weekly_variance_ratio(_cube(total))
    assert ratio[0] < 0.05 and 0.8 < ratio[1] < 1.25
    assert len(weekly_variance_ratio(_cube(total[:24 * 13]))) == 0


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


def _calibration(shape: np.ndarray, level_factor: float = 1.0, cv: float = 0.0, share: float = 0.5) -> dict:
    """One level bin: ``shape [G, 2]`` for both services."""
    return {"level_edges": [], "weekly": len(shape) == WEEK_GROUPS, "profile_shape": [shape.tolist()],
            "level_factor": [[level_factor] * 2], "residual_cv": [[cv] * 2], "day_share": [[share] * 2],
            "day_persistence": [[0.0] * 2]}


def test_series_values_take_the_profile_shape_and_level_of_their_bin():
    """Without residual, every hour is the cell's level x the bin's level factor x its group's shape: a shape of
    0 empties its hours exactly, shape 1 elsewhere gives one map, at twice the model's level with factor 2;
    hour-of-week shapes single out a day of the week."""
    artefact, context = conditioned_artefact(), make_context()
    maps = HourMapGenerator(artefact, context)
    times = pd.date_range("2026-03-04 05:00", periods=24 * 21, freq="h")  # from a Wednesday morning
    groups = hour_groups(times)
    values = np.stack([maps(int(g) % 24, bool(g >= 24), *draw_noise(torch.Generator().manual_seed(i),
                                                                      artefact.model_cfg, 1, 14, 17))
                       for i, g in enumerate(groups)])
    shape = np.ones((GROUPS, 2))
    shape[30] = 0.0                                                  # Saturday/Sunday 06:00
    artefact.series_calibration = _calibration(shape, level_factor=2.0)
    calibrated = values.copy()
    scale = calibrate_series_values(calibrated, times, maps, seed=1)
    assert scale.shape == (2, 14, 17) and (scale == 0).all()
    assert (calibrated[groups == 30] == 0).all()
    others = calibrated[groups != 30]
    np.testing.assert_allclose(others, np.broadcast_to(others[0], others.shape))
    assert abs(others[0].sum() / values.mean(axis=0).sum() - 2.0) < 0.2
    weekly = np.ones((WEEK_GROUPS, 2))
    weekly[:24] = 0.0                                                # Mondays
    artefact.series_calibration = _calibration(weekly)
    calibrated = values.copy()
    calibrate_series_values(calibrated, times, maps, seed=1)
    monday = times.day_of_week == 0
    assert (calibrated[monday] == 0).all() and (calibrated[~monday] > 0).any()
    np.testing.assert_allclose(calibrated[~monday], np.broadcast_to(calibrated[~monday][0],
                                                                     calibrated[~monday].shape))
    artefact.series_calibration = {"level_edges": [], "residual_ratio": [1.0], "profile_factor": [shape.tolist()]}
    with pytest.raises(AppshotInputError, match="retrain"):
        calibrate_series_values(values.copy(), times, maps, seed=1)
    artefact.series_calibration = {**_calibration(shape), "residual_cv": [0.0], "day_share": [0.5]}
    with pytest.raises(AppshotInputError, match="retrain"):                 # the first per-bin-only format
        calibrate_series_values(values.copy(), times, maps, seed=1)
    previous = _calibration(shape)
    previous["residual_ratio"] = previous.pop("residual_cv")
    artefact.series_calibration = previous
    with pytest.raises(AppshotInputError, match="retrain"):                 # targets as std / std of the profile (before)
        calibrate_series_values(values.copy(), times, maps, seed=1)
    without = _calibration(shape)
    del without["day_persistence"]
    artefact.series_calibration = without
    with pytest.raises(AppshotInputError, match="day_persistence"):          # before the day persistence
        calibrate_series_values(values.copy(), times, maps, seed=1)
    artefact.series_calibration = None
    with pytest.raises(AppshotInputError, match="series calibration"):
        calibrate_series_values(values.copy(), times, maps, seed=1)


def test_cells_take_the_mean_parameters_of_their_context_neighbours():
    """With a reference, each cell's profile shape and residual targets are the mean over its k nearest reference
    cells in standardised context; a service none of them carries keeps the level bin's values; without a
    reference (or neighbours 0) every cell takes its bin's."""
    artefact, context = conditioned_artefact(), make_context()
    maps = HourMapGenerator(artefact, context)
    n_attributes = maps.cell_context.shape[1]
    bins = _calibration(np.full((GROUPS, 2), 1.0), cv=0.5)
    calibration = {**bins, "neighbours": 2, "context_mean": [0.0] * n_attributes,
                   "context_std": [1.0] * n_attributes}
    first, last = maps.cell_context[0], maps.cell_context[-1]
    far = first + 100.0
    reference = {"context": np.stack([first, first + 1e-3, last, far]).astype(np.float32),
                 "profile_shape": np.stack([np.full((GROUPS, 2), v) for v in (1.0, 3.0, 5.0, 7.0)]).astype(np.float32),
                 "residual_cv": np.array([[0.1, np.nan], [0.3, np.nan], [0.2, 0.4], [9.0, 9.0]], np.float32),
                 "day_share": np.full((4, 2), 0.7, np.float32), "day_persistence": np.full((4, 2), 0.2, np.float32)}
    which = np.zeros(maps.shape, dtype=int)
    cells = cell_parameters(calibration, which, maps, reference)
    assert cells["profile_shape"].shape == (GROUPS, 2, *maps.shape) and cells["residual_cv"].shape == (2, *maps.shape)
    assert np.abs(first - last).max() > 0.1                                            # distinct contexts
    np.testing.assert_allclose(cells["profile_shape"][:, :, 0, 0], 2.0)                # mean of 1 and 3
    np.testing.assert_allclose(cells["residual_cv"][:, 0, 0], [0.2, 0.5])              # service 2: its bin's
    np.testing.assert_allclose(cells["day_share"], 0.7)
    assert (cells["residual_cv"] < 9.0).all()                                           # the far cell never
    for without in (cell_parameters(calibration, which, maps), cell_parameters({**calibration, "neighbours": 0},
                                                                                which, maps, reference)):
        np.testing.assert_allclose(without["profile_shape"], 1.0)
        np.testing.assert_allclose(without["residual_cv"], 0.5)
    np.testing.assert_allclose(cells["day_persistence"], 0.2)
    wider = np.concatenate([reference["context"], reference["context"][:, :1]], axis=1)
    for broken in ({**reference, "context": wider}, {**reference, "residual_cv": reference["residual_cv"][:3]},
                   {**reference, "context": np.where(reference["context"] > 0, np.nan, 0.0)}):
        with pytest.raises(AppshotInputError, match="does not fit the model"):
            cell_parameters(calibration, which, maps, broken)
    with pytest.raises(AppshotInputError, match="does not fit the model"):
        cell_parameters({**calibration, "context_std": [1.0]}, which, maps, reference)
    with pytest.raises(AppshotInputError, match="lacks"):
        cell_parameters(calibration, which, maps, {"context": reference["context"]})
    artefact.series_calibration = calibration
    times = pd.date_range("2026-03-02", periods=24 * 7, freq="h")
    with pytest.raises(AppshotInputError, match="no series reference"):
        calibrate_series_values(np.ones((len(times), 2, *maps.shape), np.float32), times, maps, seed=1)
    calibrate_series_values(np.ones((len(times), 2, *maps.shape), np.float32), times, maps, seed=1,
                            neighbours=False)                           # the level bins need no reference


def test_cell_levels_take_the_bin_factor_and_floor_cells_below_the_training_range():
    """Level = model level x its bin's factor; a cell below the lowest model level of the training cells gets their
    lowest real level; without ``lowest_level`` (models calibrated before) the factor alone."""
    calibration = {"level_factor": [[2.0, 3.0], [4.0, 5.0]], "lowest_level": {"model": [0.1, 0.2], "real": [7.0, 9.0]}}
    model_level = np.array([[[0.5, 0.05, 1.0]], [[0.25, 0.3, 0.0]]])                       # [S, 1, 3]
    which = np.array([[0, 0, 1]])
    np.testing.assert_allclose(cell_levels(model_level, calibration, which), [[[1.0, 7.0, 4.0]], [[0.75, 0.9, 9.0]]])
    del calibration["lowest_level"]
    np.testing.assert_allclose(cell_levels(model_level, calibration, which), [[[1.0, 0.1, 4.0]], [[0.75, 0.9, 0.0]]])
    with pytest.raises(AppshotInputError, match="lowest levels"):
        cell_levels(model_level, {**calibration, "lowest_level": {"model": [0.1], "real": [1.0]}}, which)


def test_every_cell_takes_its_own_nearest_reference_cells():
    """Against a brute-force search on a non-square map: each cell (row-major, its own place on the map) gets
    the mean of the parameters of its k nearest reference cells after the calibration's standardisation."""
    artefact, context = conditioned_artefact(), make_context()
    maps = HourMapGenerator(artefact, context)
    cells, n_attributes = maps.cell_context.shape
    rng = np.random.default_rng(3)
    n_reference, k = 40, 3
    mean, std = maps.cell_context.mean(axis=0), maps.cell_context.std(axis=0) + 0.5
    calibration = {**_calibration(np.ones((GROUPS, 2))), "neighbours": k, "context_mean": mean.tolist(),
                   "context_std": std.tolist()}
    reference = {"context": rng.standard_normal((n_reference, n_attributes)).astype(np.float32),
                 "profile_shape": rng.uniform(0, 2, (n_reference, GROUPS, 2)).astype(np.float32),
                 **{key: rng.uniform(0, 1, (n_reference, 2)).astype(np.float32) for key in
                    ("residual_cv", "day_share", "day_persistence")}}
    got = cell_parameters(calibration, np.zeros(maps.shape, dtype=int), maps, reference)
    standardised = (maps.cell_context - mean) / std
    distances = ((standardised[:, None, :] - reference["context"][None]) ** 2).sum(axis=2)   # [cells, reference]
    nearest = np.argsort(distances, axis=1)[:, :k]
    height, width = maps.shape
    assert height != width
    for key in ("profile_shape", "residual_cv", "day_share", "day_persistence"):
        expected = reference[key][nearest].mean(axis=1)                                   # [cells, (G,) S]
        expected = np.moveaxis(expected, 0, -1).reshape(*expected.shape[1:], height, width)
        np.testing.assert_allclose(got[key], expected, rtol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def two_week_world():
    return tiny_cities(14)


def test_training_calibrates_the_series_from_the_real_cells(two_week_world, tmp_path):
    contexts, traffic, attributes = two_week_world
    model = train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, hours=[3, 12],
                                         hour_levels=False)
    calibration = model.series_calibration
    assert calibration is not None and len(calibration["residual_cv"]) == LEVEL_BINS
    assert len(calibration["level_edges"]) == LEVEL_BINS - 1 and np.all(np.diff(calibration["level_edges"]) >= 0)
    assert not calibration["weekly"]                      # the demo world has no day-of-week effect
    shape = np.asarray(calibration["profile_shape"])
    assert shape.shape == (LEVEL_BINS, GROUPS, len(model.services)) and (shape >= 0).all()
    np.testing.assert_allclose(shape.mean(axis=1), 1.0, atol=1e-5)   # unit shapes
    assert np.shape(calibration["level_factor"]) == (LEVEL_BINS, len(model.services))
    for k, key in ((1, "residual_cv"), (2, "day_share"), (3, "day_persistence")):
        assert np.shape(calibration[key]) == (LEVEL_BINS, len(model.services))
        for s, service in enumerate(model.services):
            values = np.concatenate([real_profile(t)[k][s].ravel() for t in traffic.values()])
            values = values[np.isfinite(values)]
            targets = np.asarray(calibration[key])[:, s]
            low = max(values.min(), 0.0) if key == "day_persistence" else values.min()   # clipped at 0
            assert low <= targets.min() and targets.max() <= max(values.max(), 0.0), service
    night, noon = shape[-1, 3].mean(), shape[-1, 12].mean()        # busiest bin, weekday 03:00 and 12:00
    assert night < 0.5 < 1.0 < noon
    # the lowest model and real mean levels over the training cells, per service
    real_cells = np.concatenate([real_profile(t)[0].mean(axis=0).reshape(len(model.services), -1)  # mean of groups
                                 for t in traffic.values()], axis=1)
    np.testing.assert_allclose(calibration["lowest_level"]["real"], real_cells.min(axis=1), rtol=1e-6)
    assert len(calibration["lowest_level"]["model"]) == len(model.services)
    assert all(v >= 0 for v in calibration["lowest_level"]["model"])
    # the context neighbours' reference: every training cell (fewer than REFERENCE_CELLS), standardised context
    reference = model.series_reference
    cells = sum(t.sizes["y"] * t.sizes["x"] for t in traffic.values())
    assert calibration["neighbours"] == NEIGHBOURS and len(calibration["context_std"]) == len(attributes)
    assert reference["context"].shape == (cells, len(attributes))
    np.testing.assert_allclose(reference["context"].mean(axis=0), 0.0, atol=1e-4)
    assert reference["profile_shape"].shape == (cells, GROUPS, len(model.services))
    assert all(reference[key].shape == (cells, len(model.services)) for key in ("residual_cv", "day_share"))
    assert np.nanmin(reference["day_persistence"]) >= 0.0
    model.save(tmp_path / "m")
    loaded = ModelArtefact.load(tmp_path / "m")
    assert loaded.series_calibration == calibration and loaded.model_hash == model.model_hash
    assert all(np.array_equal(loaded.series_reference[k], v) for k, v in reference.items())
    hash_with = model.model_hash
    model.series_reference = {**reference, "residual_cv": reference["residual_cv"] * 2}
    assert model.model_hash != hash_with                        # the reference is part of the model
    model.series_reference = reference
    sampled, sampled_reference = calibrate_series(model, contexts, traffic, seed=0, reference_cells=50)
    assert len(sampled_reference["context"]) == 50 and sampled["level_edges"] == calibration["level_edges"]
    assert calibrate_series(model, contexts, traffic, seed=0, neighbours=0)[1] == {}
    with pytest.raises(AppshotInputError, match="reference_cells"):
        calibrate_series(model, contexts, traffic, seed=0, reference_cells=0)
    constant = {c: x.copy(data=np.where(np.arange(x.sizes["attribute"])[:, None, None] == 0, 0.9, x.values))
                for c, x in contexts.items()}                           # an attribute the same in every cell
    constant_calibration, constant_reference = calibrate_series(model, constant, traffic, seed=0)
    assert constant_calibration["context_std"][0] == 1.0 and np.isfinite(constant_reference["context"]).all()
    model.series_calibration = None
    assert model.model_hash != hash_with
    seen = []
    short = {c: t.isel(time=slice(0, 24 * 6)) for c, t in traffic.items()}  # one weekend day: no calibration
    assert calibrate_series(model, contexts, short, seed=0, log=seen.append) is None
    assert len(seen) == 2 and "skipped" in seen[0]
    # a week that repeats: hour-of-week profiles
    weekly = {}
    for city, cube in traffic.items():
        means = real_profile(cube, weekly=True)[0].astype(np.float32)
        weekly[city] = cube.copy(data=means[week_groups(cube.time.values)])
    calibration, _ = calibrate_series(model, contexts, weekly, seed=0)
    assert calibration["weekly"] and np.shape(calibration["profile_shape"]) == (LEVEL_BINS, WEEK_GROUPS,
                                                                                  len(model.services))
    assert np.max(calibration["residual_cv"]) < 1e-6
