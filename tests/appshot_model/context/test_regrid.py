import importlib.util
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from appshot_model.context.regrid import polygons_to_grid, raster_classes_to_grid, raster_sum_to_grid
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid

_spec = importlib.util.spec_from_file_location(
    "make_context_fixtures", Path(__file__).resolve().parents[2] / "fixtures" / "make_context_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


def utm_grid(cols=5, rows=5, dx=0.0, dy=0.0):
    """Grid whose south-west corner is (X0 + dx, Y0 + dy)."""
    return Grid(fx.UTM, fx.X0 + dx, fx.Y0 + dy + rows * 250.0, rows, cols)


def test_polygon_sums_conserve_totals_and_split_by_area(tmp_path):
    gdf = gpd.read_file(fx.polygons(tmp_path))
    grid = utm_grid()
    res = polygons_to_grid(gdf, ["people", "share"], grid, how={"people": "sum", "share": "mean"})
    assert res.values["people"].sum() == pytest.approx(1700.0)
    assert res.metadata["total_inside"]["people"] == pytest.approx(1700.0)
    # the 300 m square from (100, 100): 150 x 150 m of it (25 %) falls in the south-west cell
    assert res.values["people"][-1, 0] == pytest.approx(900 * 0.25, rel=1e-9)
    # the strip (x 400..900, y 600..800; 100,000 m2) meets cell [2, 2] (x 500..750, y 500..750)
    assert res.values["people"][2, 2] == pytest.approx(500 * 250 * 150 / 100_000)
    assert res.coverage.max() <= 1.0 and res.coverage[0, 4] == 0.0
    # mean of a single polygon's fraction is that fraction wherever it is the only source
    assert res.values["share"][-1, 0] == pytest.approx(0.2)
    assert np.isfinite(res.values["people"]).all()


def test_polygons_partly_outside_grid_keep_inside_share(tmp_path):
    gdf = gpd.read_file(fx.polygons(tmp_path))
    grid = utm_grid(cols=1, rows=1)  # only the south-west cell
    res = polygons_to_grid(gdf, ["people"], grid)
    assert res.metadata["total_source"]["people"] == pytest.approx(900.0)
    assert res.metadata["total_inside"]["people"] == pytest.approx(225.0)


def test_polygons_reprojected_from_other_crs(tmp_path):
    gdf = gpd.read_file(fx.polygons(tmp_path)).to_crs("EPSG:4326")
    res = polygons_to_grid(gdf, ["people"], utm_grid())
    assert res.values["people"].sum() == pytest.approx(1700.0, rel=1e-6)


def test_polygon_errors(tmp_path):
    gdf = gpd.read_file(fx.polygons(tmp_path))
    with pytest.raises(AppshotInputError, match="available columns.*people"):
        polygons_to_grid(gdf, ["POP"], utm_grid())
    nocrs = gpd.read_file(fx.polygons(tmp_path, crs=None, name="nocrs.shp"))
    assert nocrs.crs is None
    with pytest.raises(AppshotInputError, match="no CRS"):
        polygons_to_grid(nocrs, ["people"], utm_grid())
    with pytest.raises(AppshotInputError, match="'sum' or 'mean'"):
        polygons_to_grid(gdf, ["people"], utm_grid(), how="max")


def test_polygons_to_grid_is_fast_for_10k_by_10k():
    rng = np.random.default_rng(0)
    grid = utm_grid(cols=100, rows=100)
    x = fx.X0 + rng.uniform(0, 25_000, 10_000)
    y = fx.Y0 + rng.uniform(0, 25_000, 10_000)
    size = rng.uniform(50, 600, 10_000)
    gdf = gpd.GeoDataFrame({"n": np.ones(10_000)}, geometry=shapely.box(x, y, x + size, y + size), crs=fx.UTM)
    inside = shapely.area(shapely.intersection(gdf.geometry.values, shapely.box(*grid.bounds))) / gdf.area
    t0 = time.perf_counter()
    res = polygons_to_grid(gdf, ["n"], grid)
    elapsed = time.perf_counter() - t0
    assert res.values["n"].sum() == pytest.approx(float(inside.sum()), rel=1e-9)
    assert elapsed < 10.0, f"10k polygons x 10k cells took {elapsed:.1f} s"


@pytest.mark.parametrize("method", ["polygons", "warp"])
def test_raster_sum_conserves_totals(tmp_path, method):
    path = fx.count_raster(tmp_path)
    grid = utm_grid(cols=6, rows=6)  # raster spans x 30..830, y 400..1000
    res = raster_sum_to_grid(path, grid, method=method)
    expected = np.arange(1, 49).sum() - 1 - 48 - 0.08  # nodata pixel out, -0.08 pixel in
    assert res.values["value"].sum() == pytest.approx(expected, rel=5e-3)
    assert res.metadata["total_source"] == pytest.approx(expected, rel=1e-6)
    assert res.metadata["negative_sum"] == pytest.approx(-0.08, rel=1e-5)
    assert res.coverage[-1, 0] == 0.0 and res.values["value"][-1, 0] == 0.0  # south of the raster
    # cell [2, 0] (x 0..250, y 750..1000): raster from x = 30, minus the 100 x 100 m nodata pixel
    assert res.coverage[2, 0] == pytest.approx((220 * 250 - 100 * 100) / 62_500, abs=0.03)  # warp: 25 m sub-cells
    assert res.coverage[1, 0] == 0.0


@pytest.mark.parametrize("method", ["polygons", "warp"])
def test_geographic_raster_onto_utm(tmp_path, method):
    path = fx.geographic_count_raster(tmp_path)
    grid = Grid.covering("EPSG:32632", 499_000, 5_370_000, 502_000, 5_373_000)
    res = raster_sum_to_grid(path, grid, method=method)
    assert res.values["value"].sum() == pytest.approx(1200.0, rel=5e-3)
    assert np.isfinite(res.values["value"]).all()


def test_raster_errors(tmp_path):
    with pytest.raises(AppshotInputError, match="no CRS"):
        raster_sum_to_grid(fx.count_raster(tmp_path, crs=None, name="x.tif"), utm_grid())
    far = Grid(fx.UTM, fx.X0 + 100_000, fx.Y0, 3, 3)
    with pytest.raises(AppshotInputError, match="does not intersect"):
        raster_sum_to_grid(fx.count_raster(tmp_path), far)
    with pytest.raises(AppshotInputError, match="does not exist"):
        raster_sum_to_grid(tmp_path / "missing.tif", utm_grid())
    with pytest.raises(AppshotInputError, match="band 2"):
        raster_sum_to_grid(fx.count_raster(tmp_path), utm_grid(), band=2)


def test_raster_classes_fractions(tmp_path):
    path = fx.class_raster(tmp_path)  # 500 x 500 m from (X0, Y0) : 2 x 2 cells
    grid = utm_grid(cols=3, rows=3)
    res = raster_classes_to_grid(path, grid, codes=[111, 141])
    total = res.values["111"] + res.values["141"]
    assert (total <= res.coverage + 1e-9).all()
    # south-west cell: west half of the raster -> all 111
    assert res.values["111"][2, 0] == pytest.approx(1.0)
    # south-east raster cell: 141 except one nodata pixel (1/25 of the cell)
    assert res.values["141"][2, 1] == pytest.approx(24 / 25)
    assert res.coverage[2, 1] == pytest.approx(24 / 25)
    assert res.coverage[0, 2] == 0.0
    assert res.metadata["unrequested_codes"] == ["999"]
