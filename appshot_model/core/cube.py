"""Context and traffic cubes: georeferenced xarray arrays, stored as NetCDF.

- context cube: float32 ``[attribute, y, x]``;
- traffic cube: float32 ``[time, service, y, x]`` in a declared unit (attribute ``units``).

Both carry CRS and affine transform (rioxarray's CF ``spatial_ref``), cell-centre ``x``/``y``
coordinates in metres, and are north-up (``y`` decreasing, row 0 northernmost).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.io import atomic_path

TRAFFIC_UNITS = ("bit/s", "bytes", "normalised")


def _georeference(da: xr.DataArray, grid: Grid) -> xr.DataArray:
    da = da.assign_coords(x=("x", grid.x_centres()), y=("y", grid.y_centres()))
    da = da.rio.write_crs(grid.crs)
    da = da.rio.write_transform(grid.transform)
    da.x.attrs.update(units="m", standard_name="projection_x_coordinate")
    da.y.attrs.update(units="m", standard_name="projection_y_coordinate")
    return da


def make_context_cube(values: np.ndarray, attributes: Sequence[str], grid: Grid, **attrs) -> xr.DataArray:
    """Wrap ``values [attribute, y, x]`` as a georeferenced context cube."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(attributes), grid.height, grid.width):
        raise AppshotInputError(
            f"context values have shape {values.shape}, expected {(len(attributes), grid.height, grid.width)}")
    da = xr.DataArray(values, dims=("attribute", "y", "x"), coords={"attribute": list(attributes)},
                      name="context", attrs=dict(attrs))
    return _georeference(da, grid)


def make_traffic_cube(values: np.ndarray, times: Sequence, services: Sequence[str], grid: Grid,
                      units: str = "bit/s", **attrs) -> xr.DataArray:
    """Wrap ``values [time, service, y, x]`` as a georeferenced traffic cube."""
    if units not in TRAFFIC_UNITS:
        raise AppshotInputError(f"unknown traffic unit {units!r}; expected one of {TRAFFIC_UNITS}")
    values = np.asarray(values, dtype=np.float32)
    expected = (len(times), len(services), grid.height, grid.width)
    if values.shape != expected:
        raise AppshotInputError(f"traffic values have shape {values.shape}, expected {expected}")
    da = xr.DataArray(values, dims=("time", "service", "y", "x"),
                      coords={"time": pd.DatetimeIndex(times), "service": list(services)},
                      name="traffic", attrs={"units": units, **attrs})
    return _georeference(da, grid)


def grid_of(da: xr.DataArray) -> Grid:
    """The grid a cube lives on."""
    crs = da.rio.crs
    if crs is None:
        raise AppshotInputError(f"array {da.name!r} has no CRS")
    return Grid.from_coords(crs.to_string(), da.x.values, da.y.values)


def check_traffic(da: xr.DataArray, source: str = "traffic cube") -> None:
    """Raise unless every traffic value is finite and non-negative."""
    values = da.values
    bad = ~np.isfinite(values)
    if bad.any():
        idx = tuple(int(i[0]) for i in np.nonzero(bad))
        raise AppshotInputError(f"{source}: {int(bad.sum())} NaN/inf traffic values (first at index {idx} of dims {da.dims})")
    if (values < 0).any():
        idx = tuple(int(i[0]) for i in np.nonzero(values < 0))
        raise AppshotInputError(f"{source}: {int((values < 0).sum())} negative traffic values (first at index {idx} of dims {da.dims}); traffic must be >= 0")


def check_context(da: xr.DataArray, source: str = "context cube") -> None:
    """Raise unless every context value is finite."""
    bad = ~np.isfinite(da.values)
    if bad.any():
        names = sorted({str(a) for a in da.attribute.values[np.nonzero(bad)[0]]})
        raise AppshotInputError(f"{source}: NaN/inf values in attributes {names}")


def write_cube(da: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write a cube as NetCDF atomically (temp file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        da.to_netcdf(tmp, engine="netcdf4")
    return path


#: Calendar of the CF time axis written by :func:`write_hourly_series`.
CF_CALENDAR = "proleptic_gregorian"


def write_hourly_series(series: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write an hourly series as NetCDF (atomic) with a CF time axis: ``hours since`` its first hour,
    calendar :data:`CF_CALENDAR`; CRS as rioxarray's ``spatial_ref`` grid mapping."""
    if "time" not in series.dims or series.sizes["time"] < 1:
        raise AppshotInputError(f"hourly series needs a 'time' dimension, got dims {series.dims}")
    first = pd.Timestamp(series.time.values[0])
    out = series.copy()
    out.time.encoding = {"units": f"hours since {first:%Y-%m-%d %H:%M:%S}", "calendar": CF_CALENDAR,
                         "dtype": "int64"}
    out.time.attrs = {"standard_name": "time", "long_name": "start of the hour (naive local time)", "axis": "T"}
    return write_cube(out, path)


def load_netcdf(path: str | os.PathLike, what: str, variable: str | None = None) -> xr.DataArray:
    """One variable of a NetCDF file (the only data variable when ``variable`` is None), fully loaded,
    with its CRS; clear errors naming ``what`` and the file when it is absent, unreadable or has no CRS.
    File-level attributes are merged under the variable's own."""
    path = Path(path)
    if not path.is_file():
        raise AppshotInputError(f"{what} {path} does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4", decode_coords="all") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise AppshotInputError(f"cannot read {what} {path}: {exc}") from exc
    names = list(ds.data_vars)
    if variable is None and len(names) != 1:
        raise AppshotInputError(f"{what} {path} holds variables {names}; expected exactly one")
    name = variable or names[0]
    if name not in ds.data_vars:
        raise AppshotInputError(f"{what} {path} has no variable {name!r} (it has {names})")
    da = ds[name]
    da.attrs = {**ds.attrs, **da.attrs}
    if name == "__xarray_dataarray_variable__":  # xarray's stand-in for an unnamed array
        da.name = None
    if da.rio.crs is None:
        raise AppshotInputError(f"{what} {path} has no CRS (no spatial_ref grid mapping)")
    return da


def read_cube(path: str | os.PathLike) -> xr.DataArray:
    """Read a cube written by :func:`write_cube` fully into memory, with its CRS."""
    return load_netcdf(path, "cube")
