
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import yaml

from appshot_model.context.landuse import (landuse_from_osm_polygons, landuse_from_polygons, landuse_from_raster,
                                           load_scheme, scheme_names)
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import LANDUSE_ATTRIBUTES
from tests.fixtures import make_context_fixtures as fx

CLC = "landuse/corine_lanjaron/clc.gpkg"
CLC_TIF = "landuse/corine_lanjaron/clc.tif"
NLS = "landuse/helsinki_nls_topo/m_L4132R_p.shp"


def check_fractions(res, grid):
    assert set(res.values) == set(LANDUSE_ATTRIBUTES)
    total = np.zeros(grid.shape)
    for arr in res.values.values():
        assert arr.shape == grid.shape and np.isfinite(arr).all() and (arr >= 0).all()
        total += arr
    assert (total <= 1 + 1e-6).all()
    assert (total <= res.coverage + 1e-6).all()
    assert (total[res.coverage == 0] == 0).all()
    assert np.isfinite(res.coverage).all()


def test_builtin_schemes_only_use_the_twelve_classes():
    assert {"urban_atlas", "corine", "fi_nls_topo"} <= set(scheme_names())
    for name in scheme_names():
        _, codes = load_scheme(name)
        assert set(v for v in codes.values() if v is not None) <= set(LANDUSE_ATTRIBUTES)
    _, ua = load_scheme("urban_atlas")
    assert ua["11100"] == "landuse_continuous_urban" and ua["50000"] == "landuse_sea"
    assert ua["12300"] == ua["12400"] == "landuse_air_sea_ports"


def test_overlaps_go_to_the_smaller_polygon_and_unknown_codes_warn(tmp_path):
    path = fx.landuse_polygons(tmp_path)
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 500, 2, 3)
    with pytest.warns(UserWarning, match="99999"):
        res = landuse_from_polygons(path, "code", grid, scheme="urban_atlas")
    check_fractions(res, grid)
    v = res.values
    # the 250 x 125 m unknown polygon (smaller) takes a 125 x 125 m corner of cells [1,1] and [1,2]
    assert v["landuse_continuous_urban"][1, 0] == pytest.approx(1.0)
    assert v["landuse_continuous_urban"][1, 1] == pytest.approx(0.75)
    assert v["landuse_green_urban"][1, 2] == pytest.approx(0.75)
    assert v["landuse_industrial_commercial"][0, 0] == pytest.approx(0.5)
    assert res.coverage[1, 1] == pytest.approx(1.0) and res.coverage[0, 2] == 0.0
    assert res.metadata["unknown_codes"]["99999"] == pytest.approx(250 * 125)
    assert res.metadata["overlap_removed_m2"] == pytest.approx(2 * 125 * 125)
    assert any("99999" in w for w in res.metadata["warnings"])


def test_user_mapping_and_errors(tmp_path):
    path = fx.landuse_polygons(tmp_path, codes=("A", "B", "C", "D"))
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 500, 2, 3)
    user = tmp_path / "mine.yaml"
    user.write_text(yaml.safe_dump({"name": "mine", "codes": {"A": "landuse_sea", "B": None,
                                                              "C": "landuse_sea", "D": None}}))
    res = landuse_from_polygons(path, "code", grid, scheme=user)
    check_fractions(res, grid)
    assert res.metadata["scheme"] == "mine" and res.metadata["unknown_codes"] == {}
    assert res.values["landuse_sea"][1, 0] == pytest.approx(1.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"codes": {"A": "landuse_beach"}}))
    with pytest.raises(AppshotInputError, match="'A' maps to 'landuse_beach'"):
        landuse_from_polygons(path, "code", grid, scheme=bad)
    with pytest.raises(AppshotInputError, match="available columns"):
        landuse_from_polygons(path, "CODE_18", grid)
    with pytest.raises(AppshotInputError, match="neither a built-in scheme"):
        landuse_from_polygons(path, "code", grid, scheme="nope")


def test_class_raster_fixture(tmp_path):
    grid = Grid(fx.UTM, fx.X0, fx.Y0 + 750, 3, 3)
    with pytest.warns(UserWarning, match="998"):  # 998 is not a CORINE code
        res = landuse_from_raster(fx.class_raster(tmp_path, codes=_codes_with(998)), grid, scheme="corine")
    check_fractions(res, grid)
    assert res.values["landuse_continuous_urban"][2, 0] == pytest.approx(1.0)
    assert res.values["landuse_green_urban"][1, 1] == pytest.approx(0.8)  # top row of pixels is 998


def _codes_with(unknown):
    codes = np.zeros((10, 10), dtype="uint16")
    codes[:, :5], codes[:, 5:], codes[0, :] = 111, 141, unknown
    return codes


def test_osm_polygons(tmp_path):
    x0, y0 = fx.X0, fx.Y0
    geoms = [shapely.box(x0, y0, x0 + 500, y0 + 500),          # residential, 2 x 2 cells
             shapely.box(x0 + 50, y0 + 50, x0 + 200, y0 + 200),  # park inside it
             shapely.box(x0 + 500, y0, x0 + 750, y0 + 250),      # water
             shapely.box(x0 + 500, y0 + 250, x0 + 750, y0 + 500),  # unlisted value
             shapely.Point(x0 + 10, y0 + 10),                       # a point: ignored
             shapely.box(x0, y0, x0 + 750, y0 + 500)]              # no land-use tag: ignored
    gdf = gpd.GeoDataFrame({"landuse": ["residential", "grass", None, "moon_base", "retail", None],
                            "leisure": [None, "park", None, None, None, None],
                            "natural": [None, None, "water", None, None, None],
                            "building": [None, None, None, None, None, "yes"]},
                           geometry=geoms, crs=fx.UTM).to_crs("EPSG:4326")
    grid = Grid(fx.UTM, x0, y0 + 500, 2, 3)
    with pytest.warns(UserWarning, match="landuse=moon_base"):
        res = landuse_from_osm_polygons(gdf, grid)
    check_fractions(res, grid)
    v = res.values
    park = 150 * 150 / 62_500
    assert v["landuse_green_urban"][1, 0] == pytest.approx(park, rel=1e-3)
    assert v["landuse_medium_dense_urban"][1, 0] == pytest.approx(1 - park, rel=1e-3)
    assert v["landuse_sea"][1, 2] == pytest.approx(1.0, rel=1e-3)
    assert res.coverage[0, 2] == pytest.approx(1.0, rel=1e-3)  # unmapped but covered
    with pytest.raises(AppshotInputError, match="none of the tag columns"):
        landuse_from_osm_polygons(gdf[["building", "geometry"]], grid)


# ------------------------------------------------------------------ real data

def test_corine_polygons_and_raster_agree(shared_data):
    b = pyogrio.read_info(shared_data / CLC, layer="clc")["total_bounds"]
    # a sub-region in UTM 30N that sticks out 2 km west of the clip
    grid = Grid.covering("EPSG:32630", b[0] - 2000, b[1] + 4000, b[0] + 6000, b[1] + 10_000)
    poly = landuse_from_polygons(shared_data / CLC, "CODE_18", grid, scheme="corine", layer="clc")
    rast = landuse_from_raster(shared_data / CLC_TIF, grid, scheme="corine")
    check_fractions(poly, grid)
    check_fractions(rast, grid)
    assert poly.metadata["unknown_codes"] == {} and rast.metadata["unknown_codes"] == {}
    assert poly.metadata["covered_share"] < 1 and (poly.coverage[:, 0] == 0).all()
    assert rast.metadata["covered_share"] < 1
    for attr in LANDUSE_ATTRIBUTES:
        assert abs(poly.values[attr].mean() - rast.values[attr].mean()) < 0.01, attr
    assert poly.values["landuse_barren_lands"].sum() > 1  # CLC 333 sparsely vegetated areas


def test_finnish_topographic_layer_with_user_mapping(shared_data, tmp_path):
    _, codes = load_scheme("fi_nls_topo")
    user = tmp_path / "nls.yaml"
    user.write_text(yaml.safe_dump({"name": "NLS terrain (test copy)", "codes": codes}))
    b = pyogrio.read_info(shared_data / NLS)["total_bounds"]
    grid = Grid.covering("EPSG:32635", *_utm35(b, shrink=3000))
    with pytest.warns(UserWarning, match="unknown land-use code"):
        res = landuse_from_polygons(shared_data / NLS, "LUOKKA", grid, scheme=user)
    check_fractions(res, grid)
    assert res.values["landuse_sea"].sum() > 1  # lakes
    assert set(res.metadata["unknown_codes"]) <= {"32417", "32421", "33100"}


def _utm35(b, shrink):
    from rasterio.warp import transform_bounds

    return transform_bounds("EPSG:3067", "EPSG:32635", b[0] + shrink, b[1] + shrink, b[2] - shrink, b[3] - shrink)
