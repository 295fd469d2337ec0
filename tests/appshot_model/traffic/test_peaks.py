"""Weekday masks and peak-hour snapshot selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_traffic_cube, read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import PEAK_HOURS
from appshot_model.traffic.peaks import hour_snapshots, peak_snapshots, weekday_mask

GRID = Grid("EPSG:32632", 500000.0, 5050000.0, 3, 4)


def _cube(times, services=("youtube", "netflix")) -> "xr.DataArray":  # noqa: F821
    times = pd.DatetimeIndex(times)
    values = np.arange(len(times) * len(services) * 12, dtype=np.float32).reshape(len(times), len(services), 3, 4)
    return make_traffic_cube(values, times, list(services), GRID, units="bit/s", label="simulated", city="t")


def test_weekday_mask_monday_to_friday():
    days = pd.date_range("2026-03-02", periods=14, freq="D")  # Monday 2 March 2026
    expected = np.array([True] * 5 + [False] * 2 + [True] * 5 + [False] * 2)
    assert weekday_mask(days).dtype == bool
    np.testing.assert_array_equal(weekday_mask(days), expected)
    np.testing.assert_array_equal(weekday_mask(days.values), expected)  # datetime64 array
    np.testing.assert_array_equal(weekday_mask([str(d.date()) for d in days]), expected)
    with pytest.raises(AppshotInputError, match="dates"):
        weekday_mask(["not a date"])


@pytest.mark.parametrize("hour", list(PEAK_HOURS))
def test_peak_snapshots_keep_weekday_window(hour):
    cube = _cube(pd.date_range("2026-03-02", periods=14 * 24, freq="h"))
    snaps = peak_snapshots(cube, hour)
    times = pd.DatetimeIndex(snaps.time.values)
    assert len(times) == 10  # ten weekdays in two weeks
    assert (times.hour == PEAK_HOURS[hour]).all() and (times.day_of_week < 5).all()
    np.testing.assert_array_equal(snaps.values, cube.sel(time=times).values)
    assert snaps.attrs["label"] == "simulated" and snaps.attrs["units"] == "bit/s" and snaps.attrs["city"] == "t"
    assert snaps.attrs["peak_hour"] == hour
    assert snaps.rio.crs == cube.rio.crs and snaps.rio.transform() == cube.rio.transform()
    assert snaps.rio.transform().e < 0
    assert "peak_hour" not in cube.attrs  # the input is left alone


def test_peak_snapshots_sub_hourly_data_keep_the_whole_hour():
    cube = _cube(pd.date_range("2026-03-02", periods=2 * 96, freq="15min"))
    snaps = peak_snapshots(cube, "evening")
    times = pd.DatetimeIndex(snaps.time.values)
    assert len(times) == 8 and set(times.minute) == {0, 15, 30, 45} and set(times.hour) == {17}


def test_peak_snapshots_survive_netcdf(tmp_path):
    cube = read_cube(write_cube(_cube(pd.date_range("2026-03-02", periods=48, freq="h")), tmp_path / "t.nc"))
    snaps = peak_snapshots(cube, "midday")
    assert snaps.sizes["time"] == 2 and snaps.rio.crs is not None


def test_unknown_hour_names_value_and_choices():
    cube = _cube(pd.date_range("2026-03-02", periods=24, freq="h"))
    with pytest.raises(AppshotInputError) as err:
        peak_snapshots(cube, "night")
    message = str(err.value)
    assert "'night'" in message and all(name in message for name in PEAK_HOURS)


def test_no_snapshot_is_a_clear_error():
    weekend = _cube(pd.date_range("2026-03-07", periods=48, freq="h"))  # Saturday + Sunday
    with pytest.raises(AppshotInputError, match="no weekday snapshot at 08:00-09:00"):
        peak_snapshots(weekend, "morning")
    short = _cube(pd.date_range("2026-03-02", periods=6, freq="h"))  # 00:00-05:00 only
    with pytest.raises(AppshotInputError, match="evening"):
        peak_snapshots(short, "evening")


def test_cube_without_time_is_rejected():
    cube = _cube(pd.date_range("2026-03-02", periods=1, freq="h")).isel(time=0)
    with pytest.raises(AppshotInputError, match="time"):
        peak_snapshots(cube, "morning")


@pytest.mark.parametrize("daytype,expected_days", [("weekday", 10), ("weekend", 4)])
def test_hour_snapshots_of_any_hour_and_day_type(daytype, expected_days):
    cube = _cube(pd.date_range("2026-03-02", periods=14 * 24, freq="h"))
    snaps = hour_snapshots(cube, 3, daytype)
    times = pd.DatetimeIndex(snaps.time.values)
    assert len(times) == expected_days and (times.hour == 3).all()
    assert ((times.day_of_week >= 5) == (daytype == "weekend")).all()
    np.testing.assert_array_equal(snaps.values, cube.sel(time=times).values)
    assert snaps.attrs["hour_of_day"] == 3 and snaps.attrs["daytype"] == daytype and snaps.rio.crs == cube.rio.crs
    # the peaks are the weekday hours of day at their start
    np.testing.assert_array_equal(peak_snapshots(cube, "evening").values, hour_snapshots(cube, 17).values)


def test_hour_snapshots_reject_bad_hours_and_day_types():
    cube = _cube(pd.date_range("2026-03-02", periods=24, freq="h"))
    for hour in (24, -1, 7.5):
        with pytest.raises(AppshotInputError, match="0-23"):
            hour_snapshots(cube, hour)
    with pytest.raises(AppshotInputError, match="day type 'holiday'"):
        hour_snapshots(cube, 3, "holiday")
    with pytest.raises(AppshotInputError, match="no weekend snapshot at 03:00-04:00"):
        hour_snapshots(cube, 3, "weekend")
