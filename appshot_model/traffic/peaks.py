"""Traffic cube helpers: weekday masks and the weekday snapshots of a peak hour.

A peak-hour dataset (AppShot, Xu et al., IEEE TNSM 2022, section IV) is the set of weekday
snapshots in the one-hour window that starts at the peak hour (morning 08-09, midday 12-13,
evening 17-18; :data:`appshot_model.core.names.PEAK_HOURS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import PEAK_HOURS


def weekday_mask(times: Sequence | np.ndarray | pd.DatetimeIndex) -> np.ndarray:
    """Boolean array, True where a time stamp falls on Monday-Friday (local calendar of the stamps)."""
    try:
        index = pd.DatetimeIndex(np.asarray(times).ravel() if not isinstance(times, pd.DatetimeIndex) else times)
    except (TypeError, ValueError) as exc:
        raise AppshotInputError(f"time stamps cannot be read as dates: {exc}") from exc
    return np.asarray(index.day_of_week < 5, dtype=bool)


def peak_snapshots(traffic: xr.DataArray, hour: str) -> xr.DataArray:
    """The weekday snapshots of ``traffic`` whose time stamp lies in the named peak hour's window.

    ``hour`` is a peak-hour name (``morning``, ``midday``, ``evening``). Every weekday time step
    whose hour of day equals :data:`PEAK_HOURS[hour] <appshot_model.core.names.PEAK_HOURS>` is kept
    (one per day for hourly data, several for sub-hourly data). Attributes, CRS and transform are
    kept; ``peak_hour`` and ``peak_window`` are added to the attributes of the (new) result.
    """
    if hour not in PEAK_HOURS:
        raise AppshotInputError(
            f"unknown peak hour {hour!r}; expected one of: {', '.join(PEAK_HOURS)}")
    if "time" not in traffic.dims:
        raise AppshotInputError(f"traffic array has dims {traffic.dims}; a 'time' dimension is needed")
    start = PEAK_HOURS[hour]
    index = pd.DatetimeIndex(traffic["time"].values)
    keep = weekday_mask(index) & (index.hour == start)
    if not keep.any():
        span = f"{index[0]} .. {index[-1]}" if len(index) else "no time steps"
        raise AppshotInputError(
            f"no weekday snapshot at {start:02d}:00-{(start + 1) % 24:02d}:00 ({hour} peak) in the "
            f"traffic cube ({len(index)} time steps, {span})")
    snapshots = traffic.isel(time=np.flatnonzero(keep))
    snapshots.attrs = {**traffic.attrs, "peak_hour": hour,
                       "peak_window": f"{start:02d}:00-{(start + 1) % 24:02d}:00 weekdays"}
    return snapshots
