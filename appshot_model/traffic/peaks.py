"""Traffic cube helpers: weekday masks, the snapshots of an hour of day, and the weekday snapshots of a peak hour.

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


#: Day types of hourly snapshots: Monday-Friday and Saturday-Sunday.
DAYTYPES = ("weekday", "weekend")


def hour_snapshots(traffic: xr.DataArray, hour_of_day: int, daytype: str = "weekday", what: str = "") -> xr.DataArray:
    """The snapshots of ``traffic`` whose time stamp falls in the hour ``hour_of_day``:00-59 (0-23) of a
    weekday or a weekend day (``daytype``). One per day for hourly data, several for sub-hourly data.
    Attributes, CRS and transform are kept; ``hour_of_day`` and ``daytype`` are added to the attributes.
    ``what`` names the hour in the error when there is no such snapshot (e.g. ``"morning peak"``)."""
    if daytype not in DAYTYPES:
        raise AppshotInputError(f"unknown day type {daytype!r}; expected one of {DAYTYPES}")
    if not (isinstance(hour_of_day, (int, np.integer)) and 0 <= hour_of_day <= 23):
        raise AppshotInputError(f"hour of day must be an integer 0-23, got {hour_of_day!r}")
    if "time" not in traffic.dims:
        raise AppshotInputError(f"traffic array has dims {traffic.dims}; a 'time' dimension is needed")
    index = pd.DatetimeIndex(traffic["time"].values)
    keep = (weekday_mask(index) == (daytype == "weekday")) & (index.hour == hour_of_day)
    if not keep.any():
        span = f"{index[0]} .. {index[-1]}" if len(index) else "no time steps"
        raise AppshotInputError(
            f"no {daytype} snapshot at {hour_of_day:02d}:00-{(hour_of_day + 1) % 24:02d}:00"
            f"{f' ({what})' if what else ''} in the traffic cube "
            f"({len(index)} time steps, {span})")
    snapshots = traffic.isel(time=np.flatnonzero(keep))
    snapshots.attrs = {**traffic.attrs, "hour_of_day": int(hour_of_day), "daytype": daytype}
    return snapshots


def peak_snapshots(traffic: xr.DataArray, hour: str) -> xr.DataArray:
    """The weekday snapshots of ``traffic`` whose time stamp lies in the named peak hour's window.

    ``hour`` is a peak-hour name (``morning``, ``midday``, ``evening``): :func:`hour_snapshots` of
    weekdays at :data:`PEAK_HOURS[hour] <appshot_model.core.names.PEAK_HOURS>`, with ``peak_hour`` and
    ``peak_window`` in the attributes instead of ``hour_of_day`` and ``daytype``.
    """
    if hour not in PEAK_HOURS:
        raise AppshotInputError(
            f"unknown peak hour {hour!r}; expected one of: {', '.join(PEAK_HOURS)}")
    start = PEAK_HOURS[hour]
    snapshots = hour_snapshots(traffic, start, "weekday", what=f"{hour} peak")
    snapshots.attrs = {**traffic.attrs, "peak_hour": hour,
                       "peak_window": f"{start:02d}:00-{(start + 1) % 24:02d}:00 weekdays"}
    return snapshots
