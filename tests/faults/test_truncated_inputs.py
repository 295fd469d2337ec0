"""A truncated model artefact, NetCDF cube or GeoTIFF (a copy cut short, a disk that filled up) is refused
with an AppshotInputError naming the file, not a traceback from inside torch, netCDF4 or GDAL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from appshot_model.context.regrid import raster_sum_to_grid
from appshot_model.core.cube import make_traffic_cube, read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.export import write_snapshot_geotiff
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import WEIGHTS_FILE, ModelArtefact
from appshot_model.release.files import read_cog_bands, read_netcdf, write_cog, write_netcdf
from tests.appshot_model.model.test_generate import make_artefact

GRID = Grid("EPSG:32632", 500_000.0, 5_050_000.0, 40, 48)


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture(scope="module")
def snapshots():
    values = np.random.default_rng(0).gamma(2.0, 100.0, (3, 4, GRID.height, GRID.width))
    cube = make_traffic_cube(values, np.arange(3).astype("datetime64[D]"), ["youtube", "netflix", "instagram",
                                                                           "facebook"], GRID)
    cube = cube.rename(time="sample").assign_coords(sample=np.arange(3))
    cube.attrs.update(label="synthetic", seed=1, model_hash="0" * 64)
    return cube


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_weights_are_refused_naming_the_file(tmp_path, keep):
    path = make_artefact().save(tmp_path / "model")
    _truncate(path / WEIGHTS_FILE, keep)
    with pytest.raises(AppshotInputError, match=f"{path / WEIGHTS_FILE} is corrupt, truncated"):
        ModelArtefact.load(path)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_netcdf_is_refused_naming_the_file(tmp_path, snapshots, keep):
    cube = _truncate(write_cube(snapshots.isel(sample=0).rename(service="attribute"), tmp_path / "cube.nc"), keep)
    with pytest.raises(AppshotInputError, match=f"cannot read cube {cube}"):
        read_cube(cube)
    release = _truncate(write_netcdf(snapshots, tmp_path / "snapshots.nc", {"title": "t"}), keep)
    with pytest.raises(AppshotInputError, match=f"cannot read release NetCDF {release}"):
        read_netcdf(release)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_geotiff_is_refused_naming_the_file(tmp_path, snapshots, keep):
    cog = _truncate(write_cog(snapshots.isel(sample=0), tmp_path / "sample_000.tif", {"label": "synthetic"}), keep)
    with pytest.raises(AppshotInputError, match=f"cannot read GeoTIFF {cog}"):
        read_cog_bands(cog)
    raster = tmp_path / "population.tif"
    with rasterio.open(raster, "w", driver="GTiff", height=GRID.height, width=GRID.width, count=1, dtype="float32",
                       crs=GRID.crs, transform=GRID.transform, tiled=True, blockxsize=16, blockysize=16,
                       compress="deflate") as dst:
        dst.write(np.random.default_rng(1).random((1, GRID.height, GRID.width)).astype("float32"))
    _truncate(raster, keep)
    with pytest.raises(AppshotInputError, match=f"raster {raster}"):
        raster_sum_to_grid(raster, GRID)
    tiff = _truncate(write_snapshot_geotiff(snapshots.isel(sample=0), tmp_path / "g.tif", {}), keep)
    with pytest.raises(AppshotInputError, match=f"cannot read GeoTIFF {tiff}"):
        read_cog_bands(tiff)
