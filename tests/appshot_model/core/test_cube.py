import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import (check_context, check_traffic, grid_of, make_context_cube, make_traffic_cube,
                                     read_cube, write_cube)
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid

GRID = Grid("EPSG:32632", 500_000.0, 5_605_000.0, 3, 4)
TIMES = pd.date_range("2026-03-02", periods=2, freq="h")


def test_traffic_cube_round_trip_keeps_crs_transform_and_units(tmp_path):
    values = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    cube = make_traffic_cube(values, TIMES, ["youtube", "netflix"], GRID, label="simulated")
    path = write_cube(cube, tmp_path / "traffic.nc")
    back = read_cube(path)
    np.testing.assert_array_equal(back.values, values)
    assert back.dtype == np.float32
    assert back.attrs["units"] == "bit/s" and back.attrs["label"] == "simulated"
    assert back.rio.crs.to_epsg() == 32632
    assert back.rio.transform() == GRID.transform
    assert grid_of(back) == GRID
    assert list(back.service.values) == ["youtube", "netflix"]


def test_context_cube_shape_is_checked():
    with pytest.raises(AppshotInputError, match="expected"):
        make_context_cube(np.zeros((2, 3, 3)), ["population", "poi_cafe"], GRID)


def test_traffic_checks_name_the_problem():
    values = np.ones((2, 1, 3, 4), dtype=np.float32)
    values[1, 0, 2, 3] = -1.0
    with pytest.raises(AppshotInputError, match="negative"):
        check_traffic(make_traffic_cube(values, TIMES, ["youtube"], GRID))
    values[1, 0, 2, 3] = np.nan
    with pytest.raises(AppshotInputError, match="NaN"):
        check_traffic(make_traffic_cube(values, TIMES, ["youtube"], GRID))
    context = make_context_cube(np.full((1, 3, 4), np.inf), ["population"], GRID)
    with pytest.raises(AppshotInputError, match="population"):
        check_context(context)


def test_failed_write_leaves_previous_file(tmp_path, monkeypatch):
    cube = make_traffic_cube(np.ones((2, 1, 3, 4)), TIMES, ["youtube"], GRID)
    path = write_cube(cube, tmp_path / "t.nc")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(cube), "to_netcdf", broken)
    with pytest.raises(OSError):
        write_cube(cube * 2, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.nc"]


def test_read_missing_or_corrupt_cube(tmp_path):
    with pytest.raises(AppshotInputError, match="does not exist"):
        read_cube(tmp_path / "missing.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(AppshotInputError, match="cannot read"):
        read_cube(bad)
