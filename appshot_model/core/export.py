"""Export generated snapshots as GeoTIFFs (one band per service, traffic units)."""

from __future__ import annotations

import os
from pathlib import Path

import rasterio
import xarray as xr

from appshot_model.core.cube import grid_of
from appshot_model.core.io import atomic_path


def write_snapshot_geotiff(snapshot: xr.DataArray, path: str | os.PathLike, tags: dict[str, str]) -> Path:
    """Write one snapshot ``[service, y, x]`` as a float32 GeoTIFF, band descriptions = services.

    ``tags`` become dataset-level GDAL metadata (e.g. label, seed, model hash, units).
    """
    grid = grid_of(snapshot)
    services = [str(s) for s in snapshot.service.values]
    path = Path(path)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", height=grid.height, width=grid.width,
                           count=len(services), dtype="float32", crs=grid.crs, transform=grid.transform,
                           compress="deflate", predictor=3) as dst:
            dst.write(snapshot.transpose("service", "y", "x").values.astype("float32"))
            for band, service in enumerate(services, start=1):
                dst.set_band_description(band, service)
                dst.update_tags(band, service=service, units=str(snapshot.attrs.get("units", "")))
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path


def write_sample_geotiffs(generated: xr.DataArray, folder: str | os.PathLike, tags: dict[str, str]) -> list[Path]:
    """``folder/sample_NNN.tif`` for every sample of ``generated [sample, service, y, x]``, each with
    ``tags`` plus its sample index."""
    folder = Path(folder)
    return [write_snapshot_geotiff(generated.isel(sample=i), folder / f"sample_{i:03d}.tif", {**tags, "sample": str(i)})
            for i in range(generated.sizes["sample"])]
