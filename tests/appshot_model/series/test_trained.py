"""The trained series models: pooling cities' cells, the model folder, and series cubes for a context cube."""

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_context_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.series.trained import (generate_series_cube, is_series_model_folder, load_series_models, pool_cells,
                                          save_series_models, train_series_models)
from tests.appshot_model.series.test_series import TIMES, small, toy_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GRID = Grid("EPSG:32632", 500_000.0, 5_000_000.0, 3, 4)


def context_cube(scale: float = 1.0):
    values = np.random.default_rng(7).uniform(0, 5, size=(3, 3, 4)) * scale
    return make_context_cube(values, ["a", "b", "c"], GRID)


def test_pool_cells_joins_cities_and_checks_their_calendar():
    a, b = toy_cells(10, seed=1), toy_cells(14, seed=2)
    pooled = pool_cells({"b": b, "a": a}, 100, seed=0)
    assert pooled.n_cells == 24 and np.array_equal(pooled.values[:10], a.values)  # sorted by city name
    assert pool_cells({"a": a, "b": b}, 5, seed=0).n_cells == 5
    np.testing.assert_array_equal(pool_cells({"a": a, "b": b}, 5, seed=0).values,
                                  pool_cells({"a": a, "b": b}, 5, seed=0).values)
    late = toy_cells(10, seed=3)
    late.times = late.times + pd.Timedelta(hours=1)
    with pytest.raises(AppshotInputError, match="city b's series starts 2026-03-02 01:00"):
        pool_cells({"a": a, "b": late}, 100, seed=0)
    with pytest.raises(AppshotInputError, match="no training city"):
        pool_cells({}, 10, seed=0)


def test_series_models_folder_and_cubes(tmp_path):
    models = train_series_models(toy_cells(), small(), seed=2, info={"units": "bit/s", "training_cities": ["a"]})
    folder = save_series_models(models, tmp_path / "dg_model")
    assert is_series_model_folder(folder) and not is_series_model_folder(tmp_path)
    loaded = load_series_models(folder)
    assert loaded.info["training_cities"] == ["a"] and loaded.services == ["s1", "s2"]
    ctx = context_cube()
    cube = generate_series_cube(models, ctx, TIMES, seed=5)
    assert cube.dims == ("time", "service", "y", "x") and cube.shape == (48, 2, 3, 4)
    assert cube.attrs["label"] == "synthetic" and cube.attrs["method"] == "doppelganger"
    assert cube.rio.crs.to_epsg() == 32632 and (cube.values >= 0).all()
    np.testing.assert_array_equal(generate_series_cube(loaded, ctx, TIMES, seed=5).values, cube.values)
    assert not np.array_equal(generate_series_cube(models, ctx, TIMES, seed=6).values, cube.values)
    assert np.abs(generate_series_cube(models, context_cube(3.0), TIMES, seed=5).values - cube.values).max() > 1e-4
    naive = generate_series_cube(loaded, ctx, TIMES, seed=5, method="naive")
    assert naive.attrs["method"] == "naive weekly profile" and naive.shape == cube.shape
    np.testing.assert_array_equal(naive.values, generate_series_cube(models, ctx, TIMES, seed=5, method="naive").values)
    with pytest.raises(AppshotInputError, match="consecutive hours"):
        generate_series_cube(models, ctx, TIMES[::2], seed=5)
    with pytest.raises(AppshotInputError, match="lacks attributes"):
        generate_series_cube(models, ctx.sel(attribute=["a", "b"]), TIMES, seed=5)
    (folder / "naive.npz").unlink()
    with pytest.raises(AppshotInputError, match="lacks \\['naive.npz'\\]"):
        load_series_models(folder)
