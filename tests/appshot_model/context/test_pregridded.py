import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from appshot_model.context.pregridded import (SPECTRAGAN_DEFAULT_COLUMNS, milan_context, parse_columns, regrid_cells,
                                              spectragan_context, spectragan_table)
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import ATTRIBUTES
from appshot_model.traffic.spectragan import spectragan_grid

SG = "spectragan/context"
MILAN_GRID = "milan/milano-grid.geojson"
MILAN_CSV = "milan/crawled_feature.csv"
LANDUSE_COLS = {f"landuse_{k}": (f"sg_landuse_{k}", "mean") for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)}


def pop_shapefile(shared_data, city):
    return gpd.read_file(next((shared_data / SG / city / f"{city}-grid-pop").glob("*.shp")))


def check(res, grid):
    for arr in res.values.values():
        assert arr.shape == grid.shape and np.isfinite(arr).all()
    assert np.isfinite(res.coverage).all() and ((res.coverage >= 0) & (res.coverage <= 1)).all()
    for arr in res.values.values():
        assert (arr[res.coverage == 0] == 0).all()


def clipped_reference(gdf, column, region):
    """Source total inside ``region`` by clipping the source cells (independent of regrid)."""
    part = gpd.clip(gdf, region)
    return float((part[column].clip(lower=0) * part.area / gdf.loc[part.index].area).sum())


def test_default_mapping_covers_all_27_attributes():
    mapped = parse_columns(SPECTRAGAN_DEFAULT_COLUMNS)
    assert sorted(a for a, _ in mapped.values()) == sorted(ATTRIBUTES)
    assert mapped["population"] == ("population", "sum") and mapped["poi_5+poi_6"] == ("poi_post_police", "sum")
    assert all(how == "mean" for attr, how in mapped.values() if attr.startswith("landuse_"))
    assert parse_columns({"a": "population", "b": {"attribute": "poi_cafe", "how": "sum"}}) == {
        "a": ("population", "sum"), "b": ("poi_cafe", "sum")}
    with pytest.raises(AppshotInputError, match="not an AppShot attribute"):
        parse_columns({"landuse_1": ("landuse_1", "mean")})
    with pytest.raises(AppshotInputError, match="'sum' or 'mean'"):
        parse_columns({"a": ("population", "avg")})
    with pytest.raises(AppshotInputError, match="several source columns"):
        parse_columns({"a": "population", "b": "population"})


@pytest.mark.parametrize("city", ["aachen", "bonn", "dresden"])
def test_spectragan_population_conserved(shared_data, city):
    src = pop_shapefile(shared_data, city)
    grid = Grid.covering("EPSG:32632", *src.total_bounds)
    with warnings.catch_warnings(record=True) as record:  # bonn and dresden carry small negatives
        warnings.simplefilter("always")
        res = spectragan_context(shared_data / SG / city, grid)
    assert bool(record) == bool((src.population < 0).any())
    check(res, grid)
    assert set(res.values) == set(ATTRIBUTES)
    expected = float(src.population.clip(lower=0).sum())
    assert res.metadata["total_after"] == pytest.approx(expected, rel=5e-3)
    assert res.metadata["total_before"] == pytest.approx(float(src.population.sum()), rel=5e-3)
    if (src.population < 0).any():
        assert any("clipped" in w for w in res.metadata["warnings"])
    # north-up: the population-weighted mean northing is the same before and after
    pop = res.values["population"]
    north_after = (pop.sum(axis=1) * grid.y_centres()).sum() / pop.sum()
    w = src.population.clip(lower=0)
    north_before = (w * src.geometry.centroid.y).sum() / w.sum()
    assert north_after == pytest.approx(north_before, abs=60)


def test_spectragan_npy_row_zero_is_south(shared_data):
    """The .npy quirk: its row 0 is the southernmost shapefile row (the shapefile path ignores it)."""
    src = pop_shapefile(shared_data, "aachen")
    src = src.iloc[np.argsort(src["id"].astype(int).to_numpy())]  # ids are strings
    npy = np.load(next((shared_data / SG / "aachen" / "aachen-grid-pop").glob("*.npy")))
    h, w = npy.shape
    ys = src.geometry.centroid.y.to_numpy().reshape(h, w)
    assert ys[0].mean() < ys[-1].mean()
    np.testing.assert_allclose(npy.ravel(), src.population.to_numpy())


def test_spectragan_landuse_fractions_and_partial_region(shared_data):
    src_lu = gpd.read_file(next((shared_data / SG / "bonn" / "bonn-grid-pop-landuse").glob("*.shp")))
    l, b, r, t = src_lu.total_bounds
    grid = Grid.covering("EPSG:32632", l - 2000, b + 3000, l + 5000, b + 9000)  # sticks out west
    cols = {**LANDUSE_COLS, "population": ("population", "sum"), "poi_3": ("sg_poi_3", "sum")}
    with pytest.warns(UserWarning, match="negative"):
        res = spectragan_context(shared_data / SG / "bonn", grid, cols, strict=False)
    check(res, grid)
    total = sum(res.values[a] for a, _ in LANDUSE_COLS.values())
    assert (total <= 1 + 1e-6).all()
    assert res.metadata["covered_share"] < 1 and (res.coverage[:, 0] == 0).all()
    # area integral of a fraction is conserved: mean x covered area == source fraction x area
    region = shapely.box(*grid.bounds)
    part = gpd.clip(src_lu, region)
    ref = float((part["landuse_12"] * part.area).sum())
    got = float((res.values["sg_landuse_12"] * res.coverage).sum() * 250.0 ** 2)
    assert got == pytest.approx(ref, rel=5e-3)
    pop_ref = clipped_reference(pop_shapefile(shared_data, "bonn"), "population", region)
    assert res.metadata["total_after"] == pytest.approx(pop_ref, rel=5e-3)


def test_milan_grid_features(shared_data):
    gm = gpd.read_file(shared_data / MILAN_GRID)
    feats = pd.read_csv(shared_data / MILAN_CSV)
    utm = gm.to_crs("EPSG:32632")
    l, b, r, t = utm.total_bounds
    cols = {"BSs": ("milan_base_stations", "sum"), "POI_Other": ("milan_poi_other", "sum")}
    grid = Grid.covering("EPSG:32632", l, b, r, t)
    res = milan_context(shared_data / MILAN_GRID, shared_data / MILAN_CSV, grid, cols, strict=False)
    check(res, grid)
    assert res.values["milan_base_stations"].sum() == pytest.approx(feats.BSs.sum(), rel=5e-3)
    # a region across the eastern edge
    sub = Grid.covering("EPSG:32632", r - 6000, b + 8000, r + 3000, b + 16_000)
    res = milan_context(shared_data / MILAN_GRID, shared_data / MILAN_CSV, sub, cols, strict=False)
    check(res, sub)
    utm["BSs"] = feats.BSs.to_numpy()
    assert res.metadata["totals"]["milan_base_stations"]["total_after"] == pytest.approx(
        clipped_reference(utm, "BSs", shapely.box(*sub.bounds)), rel=5e-3)
    assert res.metadata["covered_share"] < 1
    with pytest.raises(AppshotInputError, match="not an AppShot attribute"):
        milan_context(shared_data / MILAN_GRID, shared_data / MILAN_CSV, sub, cols)


def test_errors(tmp_path, shared_data):
    src = pop_shapefile(shared_data, "aachen")
    grid = Grid.covering("EPSG:32632", *src.total_bounds)
    with pytest.raises(AppshotInputError, match=r"\['pop'\] not found; available columns: \['id', 'population'\]"):
        regrid_cells(src, {"pop": "population"}, grid, source="aachen")
    far = Grid("EPSG:32632", 100_000.0, 5_000_000.0, 4, 4)
    with pytest.raises(AppshotInputError, match="no source cell intersects"):
        regrid_cells(src, {"population": "population"}, far, source="aachen")
    # a city folder whose shapefile lost its .prj
    city = tmp_path / "nocrs"
    (city / "nocrs-grid-pop").mkdir(parents=True)
    src.set_crs(None, allow_override=True).to_file(city / "nocrs-grid-pop" / "nocrs-grid-pop-22x28.shp")
    with pytest.raises(AppshotInputError, match="no CRS"):
        spectragan_context(city, grid)
    short = tmp_path / "short.csv"
    pd.read_csv(shared_data / MILAN_CSV).head(10).to_csv(short, index=False)
    with pytest.raises(AppshotInputError, match="10 rows but"):
        milan_context(shared_data / MILAN_GRID, short, grid, {"BSs": ("x", "sum")}, strict=False)


def test_missing_city_folder(tmp_path):
    with pytest.raises(AppshotInputError, match="no SpectraGAN shapefiles"):
        spectragan_context(Path(tmp_path) / "nowhere", Grid("EPSG:32632", 0.0, 1000.0, 2, 2))


def test_spectragan_default_columns_on_native_cells(shared_data):
    """The default mapping, re-gridded onto the release's own cells, reproduces the source table
    (post + police summed, the sea mask joined in id order) and sums land use to at most 1."""
    city = shared_data / SG / "bonn"
    table = spectragan_table(city)
    grid = spectragan_grid(city)
    res = spectragan_context(city, grid)
    assert len(res.values) == 27
    south_first = {a: np.flipud(v).ravel() for a, v in res.values.items()}
    np.testing.assert_allclose(south_first["poi_post_police"], table["poi_5"] + table["poi_6"], atol=1e-9)
    np.testing.assert_allclose(south_first["landuse_barren_lands"], table["landuse_12"], atol=1e-9)
    np.testing.assert_allclose(south_first["population"], table["population"].clip(lower=0), atol=1e-6)
    assert (south_first["landuse_sea"] == 0).all()  # an inland city
    total = sum(v for a, v in res.values.items() if a.startswith("landuse_"))
    assert (total <= 1 + 1e-6).all() and (res.coverage > 0.999).all()
