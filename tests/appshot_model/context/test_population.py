
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.warp import transform_bounds

from appshot_model.context.population import population_from_raster, population_from_vector
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from tests.fixtures import make_context_fixtures as fx

HSY = "population/helsinki_hsy_2015/Vaestotietoruudukko_2015.shp"
SAO = "population/sao_paulo/spo_hexgrid_EPSG32723.gpkg.zip"
KTM = "population/kathmandu_NPL_ppp_v2c_2020.tif"
BRS = "population/bristol_GHS_POP_GPW42015_GLOBE_R2015A_54009_250_v1_0.tif"


def check_layer(res, grid):
    pop = res.values["population"]
    assert pop.shape == grid.shape and res.coverage.shape == grid.shape
    assert np.isfinite(pop).all() and (pop >= 0).all()
    assert ((res.coverage >= 0) & (res.coverage <= 1)).all()
    assert (pop[res.coverage == 0] == 0).all()
    for key in ("source", "method", "total_before", "total_after", "covered_share", "warnings"):
        assert key in res.metadata
    assert res.metadata["total_after"] == pytest.approx(pop.sum())


def area_share_reference(gdf, column, region_poly):
    """People inside ``region_poly`` by clipping the source polygons (independent of regrid)."""
    clipped = gpd.clip(gdf, region_poly)
    share = clipped.area / gdf.loc[clipped.index].area
    return float((clipped[column] * share).sum())


# ------------------------------------------------------------------ fixtures (synthetic, tiny)

def test_negative_pixels_clipped_with_warning(tmp_path):
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 1250, 5, 5)
    with pytest.warns(UserWarning, match="negative"):
        res = population_from_raster(fx.count_raster(tmp_path), grid)
    check_layer(res, grid)
    assert res.metadata["negative_clipped"] == pytest.approx(0.08, rel=1e-4)
    assert res.metadata["total_after"] == pytest.approx(res.metadata["total_before"] + 0.08, rel=1e-9)
    assert any("clipped" in w for w in res.metadata["warnings"])


def test_vector_negative_and_mask_values(tmp_path):
    path = fx.polygons(tmp_path, people=[900.0, -5.0, 99.0])
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 1250, 5, 5)
    with pytest.warns(UserWarning):
        res = population_from_vector(path, "people", grid, mask_values=[99])
    check_layer(res, grid)
    assert res.metadata["masked"] == 1
    assert res.metadata["total_before"] == pytest.approx(895.0)
    assert res.metadata["total_after"] == pytest.approx(900.0)


def test_error_cases(tmp_path):
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 1250, 5, 5)
    with pytest.raises(AppshotInputError, match="no CRS"):
        population_from_raster(fx.count_raster(tmp_path, crs=None, name="nocrs.tif"), grid)
    with pytest.raises(AppshotInputError, match="no CRS"):
        population_from_vector(fx.polygons(tmp_path, crs=None, name="nocrs.shp"), "people", grid)
    with pytest.raises(AppshotInputError, match=r"'POP'.*available columns.*people"):
        population_from_vector(fx.polygons(tmp_path), "POP", grid)
    far = Grid(fx.UTM, fx.X0 + 50_000, fx.Y0 + 1250, 5, 5)
    with pytest.raises(AppshotInputError, match="does not intersect"):
        population_from_vector(fx.polygons(tmp_path), "people", far)
    with pytest.raises(AppshotInputError, match="does not intersect"):
        population_from_raster(fx.count_raster(tmp_path), far)


# ------------------------------------------------------------------ real data

def test_helsinki_census_grid_aligned_cells_are_copied(shared_data):
    """A grid in the source CRS aligned with the HSY cells reproduces every cell's count."""
    gdf = gpd.read_file(shared_data / HSY)
    sub = gdf.cx[25_490_000:25_496_000, 6_670_000:6_676_000]
    grid = Grid("EPSG:3879", 25_490_000.0, 6_675_999.0, 20, 20)  # HSY lattice: x % 250 = 0, y = 6659999 + k*250
    res = population_from_vector(shared_data / HSY, "ASUKKAITA", grid)
    check_layer(res, grid)
    cx, cy = sub.geometry.centroid.x.to_numpy(), sub.geometry.centroid.y.to_numpy()
    col = np.floor((cx - grid.left) / 250).astype(int)
    row = np.floor((grid.top - cy) / 250).astype(int)
    ok = (col >= 0) & (col < 20) & (row >= 0) & (row < 20)
    np.testing.assert_allclose(res.values["population"][row[ok], col[ok]], sub.ASUKKAITA.to_numpy()[ok], rtol=1e-3, atol=0.05)  # HSY corners are ~1 mm off the lattice


def test_helsinki_whole_and_partly_outside_utm(shared_data):
    crs = "EPSG:32635"
    info = pyogrio.read_info(shared_data / HSY)
    b = transform_bounds(info["crs"], crs, *info["total_bounds"], densify_pts=21)
    grid = Grid.covering(crs, b[0] - 1000, b[1] - 1000, b[2] + 1000, b[3] + 1000)
    res = population_from_vector(shared_data / HSY, "ASUKKAITA", grid)
    check_layer(res, grid)
    assert res.metadata["total_after"] == pytest.approx(1_117_552, rel=5e-3)
    assert res.metadata["covered_share"] < 1 and res.covered_share() < 1
    # a sub-region across the western edge of the data: reference by clipping the source
    l, bt, r, t = grid.bounds
    sub = Grid.covering(crs, l, bt + 15_000, l + 12_000, bt + 27_000)
    res = population_from_vector(shared_data / HSY, "ASUKKAITA", sub)
    check_layer(res, sub)
    gdf = gpd.read_file(shared_data / HSY).to_crs(crs)
    ref = area_share_reference(gdf, "ASUKKAITA", shapely.box(*sub.bounds))
    assert ref > 1000
    assert res.metadata["total_after"] == pytest.approx(ref, rel=5e-3)
    assert res.metadata["covered_share"] < 1 and (res.coverage == 0).any()


def test_sao_paulo_hexagons(shared_data):
    crs = "EPSG:32723"
    info = pyogrio.read_info(shared_data / SAO)
    l, b, r, t = info["total_bounds"]
    grid = Grid.covering(crs, l - 300, b - 300, r + 300, t + 300)
    res = population_from_vector(shared_data / SAO, "population", grid)
    check_layer(res, grid)
    assert res.metadata["total_after"] == pytest.approx(517_570, rel=5e-3)
    half = Grid.covering(crs, l - 300, b - 300, (l + r) / 2, t + 300)
    res = population_from_vector(shared_data / SAO, "population", half)
    ref = area_share_reference(gpd.read_file(shared_data / SAO), "population", shapely.box(*half.bounds))
    assert res.metadata["total_after"] == pytest.approx(ref, rel=5e-3)
    assert 0.3 * 517_570 < ref < 0.7 * 517_570


def _raster_grid(path, crs, margin=0.0):
    with rasterio.open(path) as src:
        b = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
        total = float(src.read(1, masked=True).astype(float).sum())
    return Grid.covering(crs, b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin), total


@pytest.mark.parametrize("name, crs, expected", [(KTM, "EPSG:32645", 2.06e6), (BRS, "EPSG:32630", 915e3)])
def test_population_rasters(shared_data, name, crs, expected):
    grid, total = _raster_grid(shared_data / name, crs, margin=500)
    assert total == pytest.approx(expected, rel=0.01)
    res = population_from_raster(shared_data / name, grid)
    check_layer(res, grid)
    assert res.metadata["total_after"] == pytest.approx(total, rel=5e-3)
    assert res.metadata["covered_share"] < 1  # margin cells and the rotated lon/lat frame
    # a sub-region: the exact pixel-footprint method and the fast warp agree within 0.5 %
    l, b, r, t = grid.bounds
    sub = Grid.covering(crs, l + 4000, b + 4000, l + 12_000, b + 11_000)
    exact = population_from_raster(shared_data / name, sub, method="polygons")
    fast = population_from_raster(shared_data / name, sub, method="warp")
    check_layer(exact, sub)
    assert fast.metadata["total_after"] == pytest.approx(exact.metadata["total_after"], rel=5e-3)
