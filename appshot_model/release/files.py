"""Data files of a release: COGs, CF NetCDF and the GeoParquet grid with per-cell summaries.

All writers are deterministic (same array -> same bytes): no timestamps in TIFF tags, NetCDF
attributes or Parquet metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from appshot_model.core.cube import grid_of, load_netcdf
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path

CF_CONVENTIONS = "CF-1.8"
COG_BLOCK = 256


def _tag_value(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def write_cog(snapshot: xr.DataArray, path: str | os.PathLike, tags: Mapping[str, object]) -> Path:
    """One snapshot ``[service, y, x]`` as a float32, deflate-compressed Cloud-Optimised GeoTIFF.

    Band descriptions are the service names; ``tags`` become dataset-level metadata. No date/time
    tag is written, so identical input gives identical bytes.
    """
    grid = grid_of(snapshot)
    services = [str(s) for s in snapshot.service.values]
    units = str(snapshot.attrs.get("units", ""))
    data = snapshot.transpose("service", "y", "x").values.astype("float32")
    path = Path(path)
    profile = cog_profiles.get("deflate")
    profile.update(predictor=3, blockxsize=COG_BLOCK, blockysize=COG_BLOCK)
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", height=grid.height, width=grid.width, count=len(services),
                         dtype="float32", crs=grid.crs, transform=grid.transform) as dst:
            dst.write(data)
            for band, service in enumerate(services, start=1):
                dst.set_band_description(band, service)
                dst.update_tags(band, service=service, units=units)
            dst.update_tags(**{k: _tag_value(v) for k, v in tags.items()})
        with memory.open() as src, atomic_path(path) as tmp:
            cog_translate(src, str(tmp), profile, in_memory=True, quiet=True, add_mask=False,
                          overview_level=0 if max(grid.height, grid.width) <= 2 * COG_BLOCK else None)
    return path


def check_cog(path: str | os.PathLike) -> None:
    """Raise unless ``path`` is a valid Cloud-Optimised GeoTIFF (rio-cogeo's validator)."""
    valid, errors, _warnings = cog_validate(str(path), quiet=True)
    if not valid:
        raise AppshotInputError(f"{path} is not a valid Cloud-Optimised GeoTIFF: {'; '.join(errors)}")


def read_cog_bands(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Band descriptions and values ``[band, y, x]`` of a release COG (an unreadable, truncated or damaged
    file is an AppshotInputError naming it)."""
    try:
        with rasterio.open(path) as src:
            return [d or "" for d in src.descriptions], src.read()
    except (RasterioError, OSError) as exc:
        raise AppshotInputError(f"cannot read GeoTIFF {path} (truncated or damaged?): {exc}") from exc


def _netcdf_attr(value: object) -> object:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return ""
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    return str(value)


def release_dataset(snapshots: xr.DataArray, attrs: Mapping[str, object]) -> xr.Dataset:
    """CF-conventions dataset of all samples: variable ``traffic`` [sample, service, y, x] with
    units and long_name, projected x/y coordinates and a ``spatial_ref`` grid mapping."""
    grid = grid_of(snapshots)
    units = str(snapshots.attrs.get("units", ""))
    services = [str(s) for s in snapshots.service.values]
    values = snapshots.transpose("sample", "service", "y", "x").values.astype("float32")
    traffic = xr.DataArray(
        values, dims=("sample", "service", "y", "x"),
        attrs={"units": units, "long_name": "synthetic mobile traffic per service and cell",
               "coverage_content_type": "modelResult", "label": "synthetic"})
    ds = xr.Dataset(
        {"traffic": traffic},
        coords={"sample": ("sample", np.arange(values.shape[0], dtype="int32"),
                           {"long_name": "index of the generated snapshot"}),
                "service": ("service", np.array(services, dtype=object),
                            {"long_name": "mobile service (application)"}),
                "y": ("y", grid.y_centres(), {"standard_name": "projection_y_coordinate",
                                              "long_name": "northing of cell centre", "units": "m", "axis": "Y"}),
                "x": ("x", grid.x_centres(), {"standard_name": "projection_x_coordinate",
                                              "long_name": "easting of cell centre", "units": "m", "axis": "X"})})
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    ds["traffic"].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs = {"Conventions": CF_CONVENTIONS, "label": "synthetic",
                **{k: _netcdf_attr(v) for k, v in attrs.items()}}
    return ds


def write_netcdf(snapshots: xr.DataArray, path: str | os.PathLike, attrs: Mapping[str, object]) -> Path:
    """Write :func:`release_dataset` as NetCDF-4 (zlib-compressed), atomically."""
    ds = release_dataset(snapshots, attrs)
    path = Path(path)
    encoding = {"traffic": {"zlib": True, "complevel": 4, "dtype": "float32"}}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path


def read_netcdf(path: str | os.PathLike) -> xr.DataArray:
    """The ``traffic`` variable of a release NetCDF, loaded, with CRS and attributes."""
    return load_netcdf(path, "release NetCDF", "traffic")


def write_grid_summary(snapshots: xr.DataArray, path: str | os.PathLike) -> Path:
    """The grid as GeoParquet: ``row``, ``col``, geometry and ``<service>_mean``/``<service>_std``
    over the samples (population std, ddof=0), in the snapshots' units."""
    grid = grid_of(snapshots)
    table = grid.to_geodataframe()
    cube = snapshots.transpose("sample", "service", "y", "x").values.astype("float64")
    for index, service in enumerate(str(s) for s in snapshots.service.values):
        table[f"{service}_mean"] = cube[:, index].mean(axis=0).ravel().astype("float32")
        table[f"{service}_std"] = cube[:, index].std(axis=0).ravel().astype("float32")
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path
