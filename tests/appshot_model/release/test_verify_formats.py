"""Verification failures and the formats of release files."""

from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

from appshot_model.core.errors import AppshotInputError
from appshot_model.release import publish_release, verify_release
from appshot_model.release.stac import OfflineStacValidator, validate_catalog


@pytest.fixture
def release(fakes, tmp_path):
    part = fakes.make_part(tmp_path, "aurora", "morning", samples=2)
    return publish_release([part], tmp_path / "r", release_date=dt.date(2025, 1, 2)).path


def _verify(fakes, path):
    return verify_release(path, load_model=fakes.FakeArtefact, generate=fakes.fake_generate)


def test_verify_names_changed_byte(fakes, release):
    target = release / "aurora/morning/cog/sample_001.tif"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    report = _verify(fakes, release)
    assert not report.ok
    assert report.problems == [report.problems[0]] and "changed: aurora/morning/cog/sample_001.tif" in report.problems[0]


def test_verify_names_missing_and_extra_files(fakes, release):
    (release / "aurora/morning/grid.parquet").unlink()
    (release / "notes.txt").write_text("hello")
    problems = _verify(fakes, release).problems
    assert any("missing: aurora/morning/grid.parquet" in p for p in problems)
    assert any("extra: notes.txt" in p for p in problems)


def test_verify_detects_model_that_no_longer_reproduces(fakes, release):
    def other_generate(artefact, context, n_samples, seed, progress=False):
        return fakes.fake_generate(artefact, context, n_samples, seed + 1)

    report = verify_release(release, load_model=fakes.FakeArtefact, generate=other_generate)
    assert not report.ok and "regenerated sample 0 differs" in report.problems[0]


def test_verify_not_a_release(tmp_path):
    with pytest.raises(AppshotInputError, match="manifest.json does not exist"):
        verify_release(tmp_path)


def test_cogs_are_valid_with_service_band_names(release):
    tif = release / "aurora/morning/cog/sample_000.tif"
    valid, errors, _ = cog_validate(str(tif), quiet=True)
    assert valid, errors
    with rasterio.open(tif) as src:
        assert src.descriptions == ("youtube", "instagram", "whatsapp")
        assert src.crs.to_epsg() == 32632 and src.dtypes[0] == "float32"
        tags = src.tags()
        assert tags["label"] == "synthetic" and "TIFFTAG_DATETIME" not in tags


def test_netcdf_cf_crs_units(release):
    with xr.open_dataset(release / "aurora/morning/snapshots.nc", engine="netcdf4", decode_coords="all") as ds:
        assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["label"] == "synthetic"
        traffic = ds["traffic"]
        assert traffic.dims == ("sample", "service", "y", "x")
        assert traffic.attrs["units"] == "bit/s" and traffic.attrs["long_name"]
        assert traffic.encoding["grid_mapping"] == "spatial_ref" or traffic.attrs.get("grid_mapping") == "spatial_ref"
        assert "crs_wkt" in ds["spatial_ref"].attrs and "spatial_ref" in ds["spatial_ref"].attrs
        assert traffic.rio.crs.to_epsg() == 32632
        assert ds.x.attrs["standard_name"] == "projection_x_coordinate" and ds.y.attrs["units"] == "m"
        assert list(ds.service.values) == ["youtube", "instagram", "whatsapp"]


def test_grid_parquet_summary(release):
    with xr.open_dataset(release / "aurora/morning/snapshots.nc", engine="netcdf4") as ds:
        values = ds["traffic"].values
    grid = gpd.read_parquet(release / "aurora/morning/grid.parquet")
    assert grid.crs.to_epsg() == 32632 and len(grid) == 48
    assert np.allclose(grid["youtube_mean"].values, values[:, 0].mean(axis=0).ravel(), rtol=1e-5)
    assert np.allclose(grid["whatsapp_std"].values, values[:, 2].std(axis=0).ravel(), rtol=1e-4)


def test_stac_validates_offline(release, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("validation tried to read a remote schema")

    monkeypatch.setattr(pystac.StacIO, "read_text", no_network, raising=False)
    assert validate_catalog(release / "catalog.json") == 2
    item = json.loads((release / "aurora/morning/item.json").read_text())
    assert item["properties"]["proj:code"] == "EPSG:32632" and item["properties"]["proj:shape"] == [6, 8]
    asset = item["assets"]["sample_000"]
    assert asset["type"].startswith("image/tiff; application=geotiff; profile=cloud-optimized")
    assert asset["roles"] == ["data"] and len(asset["raster:bands"]) == 3
    assert [b["name"] for b in asset["bands"]] == ["youtube", "instagram", "whatsapp"]


def test_stac_validator_rejects_bad_extension_fields(release):
    item = pystac.Item.from_file(str(release / "aurora/morning/item.json"))
    item.properties["proj:shape"] = [6]
    with pytest.raises(pystac.STACValidationError):
        item.validate(validator=OfflineStacValidator())
    item.properties["proj:shape"] = [6, 8]
    item.properties.pop("start_datetime")
    with pytest.raises(pystac.STACValidationError):
        item.validate(validator=OfflineStacValidator())
