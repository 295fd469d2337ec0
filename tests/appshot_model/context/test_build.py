"""Context cubes of real regions: format, coverage flags, errors, and generating traffic from them."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from appshot_model.context.build import (_Layers, build_context_cube, check_model_attributes, cube_layer_status,
                                         layer_pngs, layers_table)
from appshot_model.context.region import load_region
from appshot_model.core.cube import grid_of, read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import ATTRIBUTES, LANDUSE_ATTRIBUTES, POI_ATTRIBUTES

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "regions"
_spec = importlib.util.spec_from_file_location(
    "make_context_fixtures", Path(__file__).resolve().parents[2] / "fixtures" / "make_context_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

FIXTURE_BOX = {"bbox": [fx.X0, fx.Y0, fx.X0 + 1000, fx.Y0 + 1000], "crs": fx.UTM}


def region_file(folder: Path, data: dict, name: str = "r") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **data}))
    return path


def vaduz(folder: Path, shared: Path) -> Path:
    return region_file(folder, {
        "boundary": {"bbox": [9.50, 47.12, 9.54, 47.15]},
        "sources": {"osm": {"path": str(shared / "osm" / "liechtenstein-latest.osm.pbf")},
                    "population": {"osm_buildings": {"total": 5500}}, "landuse": {"osm": True}}}, "vaduz")


@pytest.fixture(scope="module")
def liechtenstein(request):
    from tests.conftest import shared_data_dir

    if not shared_data_dir().is_dir():
        pytest.skip(f"real test data folder {shared_data_dir()} is absent")
    steps = []
    cube, meta = build_context_cube(EXAMPLES / "liechtenstein.yaml", progress=lambda s, i, n: steps.append((s, i, n)))
    return cube, meta, steps


def test_liechtenstein_cube(liechtenstein, tmp_path):
    cube, meta, steps = liechtenstein
    region = load_region(EXAMPLES / "liechtenstein.yaml")
    assert cube.dims == ("attribute", "y", "x") and list(cube.attribute.values) == list(ATTRIBUTES)
    assert cube.dtype == np.float32 and np.isfinite(cube.values).all() and (cube.values >= 0).all()
    assert grid_of(cube) == region.grid() and cube.rio.crs.to_string() == "EPSG:32632"
    assert (np.diff(cube.y.values) < 0).all() and cube.rio.transform().e < 0  # north-up
    assert cube.attrs["label"] == "real context" and cube.attrs["estimated_layers"] == "population"
    assert meta["missing_layers"] == [] and meta["layers"]["population"]["status"] == "estimated"
    assert cube.sel(attribute="population").sum() == pytest.approx(39000, rel=1e-5)
    lu_total = sum(cube.sel(attribute=a).values for a in LANDUSE_ATTRIBUTES)
    assert lu_total.max() <= 1 + 1e-5
    for attr in POI_ATTRIBUTES:
        layer = meta["layers"][attr]
        assert layer["total_after"] == pytest.approx(layer["total_before"], rel=1e-9, abs=1e-6), attr
        assert layer["units"] in ("objects per cell", "metres per cell") and layer["source"].endswith(".osm.pbf")
    assert "working CRS EPSG:32632" in meta["layers"]["poi_secondary_roads"]["method"]
    assert 0.9 < meta["layers"]["poi_shop"]["covered_share"] <= 1.0
    assert cube.coverage.dims == ("attribute", "y", "x") and cube.region_fraction.dims == ("y", "x")
    assert [s for s, _, _ in steps] == ["osm_read", "osm_pois", "population", "landuse", "assemble"]
    assert set(meta["timings_s"]) == {"osm_read", "osm_pois", "population", "landuse", "assemble"}
    assert json.loads(cube.attrs["sources"])[0]["licence"].startswith("ODbL")
    assert "| population | estimated |" in layers_table(meta)
    json.dumps(meta)  # JSON-able as a whole
    path = write_cube(cube, tmp_path / "li.nc")
    back = read_cube(path)
    np.testing.assert_array_equal(back.coverage.values, cube.coverage.values)
    assert cube_layer_status(back)["population"] == "estimated"
    pngs = layer_pngs(cube.isel(attribute=slice(0, 2)))
    assert list(pngs) == ["population", "landuse_continuous_urban"] and pngs["population"][:4] == b"\x89PNG"


def test_region_partly_outside_a_raster(shared_data, tmp_path):
    # the WorldPop raster ends at 85.386 E; the region goes on to 85.45 E
    path = region_file(tmp_path, {"boundary": {"bbox": [85.30, 27.68, 85.45, 27.74]},
                                  "sources": {"population": {"raster": str(
                                      shared_data / "population" / "kathmandu_NPL_ppp_v2c_2020.tif")}}})
    cube, meta = build_context_cube(path)
    pop, cov = cube.sel(attribute="population").values, cube.coverage.sel(attribute="population").values
    layer = meta["layers"]["population"]
    assert 0.4 < layer["covered_share"] < 0.8 and any("covers" in w for w in layer["warnings"])
    assert (pop[cov == 0] == 0).all() and pop[cov == 1].min() >= 0 and pop.sum() > 100_000
    assert layer["total_after"] == pytest.approx(layer["total_before"], rel=1e-6)
    assert set(meta["missing_layers"]) == set(ATTRIBUTES) - {"population"}
    assert (cube.coverage.sel(attribute="poi_shop").values == 0).all()
    assert np.isfinite(cube.values).all()


def test_region_partly_outside_an_osm_extract(shared_data, tmp_path):
    # Porto's header bbox ends at -8.5937 E; the region goes on 1.5 km further east
    path = region_file(tmp_path, {"boundary": {"bbox": [-8.605, 41.140, -8.575, 41.152]},
                                  "sources": {"osm": {"path": str(shared_data / "osm" / "porto.osm.pbf")}}})
    cube, meta = build_context_cube(path)
    share = meta["layers"]["poi_shop"]["covered_share"]
    assert 0.3 < share < 0.7
    cov = cube.coverage.sel(attribute="poi_shop").values
    assert cov[:, 0].min() == 1 and cov[:, -1].max() == 0  # west inside the extract, east outside
    assert meta["layers"]["population"]["status"] == "missing"
    assert meta["layers"]["landuse_sea"]["method"].startswith("OSM fallback")
    assert meta["layers"]["landuse_sea"]["covered_share"] == share  # land use from OSM: the same extent


def test_sources_without_crs_are_errors(tmp_path):
    raster = fx.count_raster(tmp_path, crs=None, name="nocrs.tif")
    with pytest.raises(AppshotInputError, match="nocrs.tif has no CRS"):
        build_context_cube(region_file(tmp_path, {"boundary": FIXTURE_BOX, "crs": fx.UTM,
                                                  "sources": {"population": {"raster": "nocrs.tif"}}}))
    vector = fx.polygons(tmp_path, crs=None, name="units_nocrs.shp")
    assert vector.exists() and raster.exists()
    with pytest.raises(AppshotInputError, match="units_nocrs.shp has no CRS"):
        build_context_cube(region_file(tmp_path, {"boundary": FIXTURE_BOX, "crs": fx.UTM, "sources": {
            "population": {"vector": "units_nocrs.shp", "column": "people"}}}))


def test_region_not_intersecting_its_sources(shared_data, tmp_path):
    porto_box = {"bbox": [-8.62, 41.13, -8.60, 41.15]}
    with pytest.raises(AppshotInputError, match=r"liechtenstein-latest\.osm\.pbf .*does not intersect the region"):
        build_context_cube(region_file(tmp_path, {"boundary": porto_box, "sources": {
            "osm": {"path": str(shared_data / "osm" / "liechtenstein-latest.osm.pbf")}}}))
    with pytest.raises(AppshotInputError, match="kathmandu.* does not intersect the region grid"):
        build_context_cube(region_file(tmp_path, {"boundary": porto_box, "sources": {
            "population": {"raster": str(shared_data / "population" / "kathmandu_NPL_ppp_v2c_2020.tif")}}}))
    with pytest.raises(AppshotInputError, match="does not intersect the region grid"):
        build_context_cube(region_file(tmp_path, {"boundary": porto_box, "sources": {"population": {
            "vector": str(shared_data / "population" / "helsinki_hsy_2015" / "Vaestotietoruudukko_2015.shp"),
            "column": "ASUKKAITA"}}}))


def test_unknown_land_use_code_warns(tmp_path):
    fx.landuse_polygons(tmp_path)
    fx.count_raster(tmp_path)
    path = region_file(tmp_path, {"boundary": FIXTURE_BOX, "crs": fx.UTM, "sources": {
        "landuse": {"polygons": "landuse.gpkg", "code_column": "code", "scheme": "urban_atlas"},
        "population": {"raster": "people.tif"}}})
    with pytest.warns(UserWarning, match="99999"):
        cube, meta = build_context_cube(path)
    assert any("99999" in w for w in meta["layers"]["landuse_sea"]["warnings"])
    assert any("99999" in w for w in meta["python_warnings"])
    assert meta["layers"]["landuse_continuous_urban"]["total_after"] > 0
    assert meta["layers"]["population"]["negative_clipped"] > 0  # the fixture's -0.08 pixel, clipped with a warning
    assert grid_of(cube).shape == (4, 4)


def test_pregridded_spectragan_and_duplicate_attributes(shared_data, tmp_path):
    aachen = shared_data / "spectragan" / "context" / "aachen"
    path = region_file(tmp_path, {"boundary": {"bbox": [6.05, 50.75, 6.12, 50.79]}, "sources": {
        "pregridded": {"spectragan": str(aachen)}}}, "aachen")
    cube, meta = build_context_cube(path)
    layer = meta["layers"]["population"]
    assert 0.9 < layer["covered_share"] <= 1.0 and layer["total_after"] == pytest.approx(layer["total_before"], rel=1e-6)
    assert cube.sel(attribute="population").sum() > 10_000
    layers = _Layers(Grid(fx.UTM, fx.X0, fx.Y0, 2, 2))
    layers.put("population", np.ones((2, 2)), np.ones((2, 2)), {"source": "a.tif"})
    with pytest.raises(AppshotInputError, match="'population' is given by two sources: a.tif and b.gpkg"):
        layers.put("population", np.ones((2, 2)), np.ones((2, 2)), {"source": "b.gpkg"})


def test_region_without_sources(tmp_path):
    with pytest.raises(AppshotInputError, match="no context sources"):
        build_context_cube(region_file(tmp_path, {"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}}))


def test_model_attribute_checks_and_generation(shared_data, tmp_path):
    from appshot_model.model.generate import generate_snapshots
    from appshot_model.release import verify_release
    from appshot_model.release.build import generate_for_region
    from tests.appshot_model.model.test_generate import make_artefact

    path = vaduz(tmp_path, shared_data)
    cube, meta = build_context_cube(path)
    assert cube.shape[1:] == (14, 13)
    artefact = make_artefact()  # attributes population, landuse_sea, poi_cafe
    selected = check_model_attributes(cube, artefact.attributes)
    assert list(selected.attribute.values) == list(artefact.attributes)
    snapshots = generate_snapshots(artefact, selected, n_samples=2, seed=4)
    assert snapshots.shape == (2, len(artefact.services), 14, 13) and np.isfinite(snapshots.values).all()
    with pytest.raises(AppshotInputError, match=r"needs attributes \['poi_bars'\]"):
        check_model_attributes(cube, ["population", "poi_bars"])
    no_pop = cube.copy()
    no_pop.attrs["missing_layers"] = "population"
    with pytest.raises(AppshotInputError, match=r"needs layers \['population'\] but region vaduz has no source"):
        check_model_attributes(no_pop, artefact.attributes)
    assert check_model_attributes(no_pop, artefact.attributes, allow_missing_layers=True).shape[0] == 3
    # the CLI path: generate_for_region with the real region loader and context builder
    artefact.training_label = "the simulated demo world"
    model_dir = artefact.save(tmp_path / "model")
    result = generate_for_region(model_dir, path, "morning", 2, 3, tmp_path / "out")
    card = json.loads((result.path / "card.json").read_text())
    assert card["parts"][0]["statement"] == \
        "synthetic: model trained on the simulated demo world applied to real context of vaduz"
    sources = card["parts"][0]["context_sources"]
    assert [s["name"] for s in sources] == ["OpenStreetMap"] and sources[0]["licence"].startswith("ODbL")
    assert verify_release(result.path).ok
    # a region without a population source: refused unless missing layers are allowed explicitly
    osm_only = region_file(tmp_path, {
        "boundary": {"bbox": [9.50, 47.12, 9.54, 47.15]},
        "sources": {"osm": {"path": str(shared_data / "osm" / "liechtenstein-latest.osm.pbf")}}}, "vaduz_osm")
    with pytest.raises(AppshotInputError, match=r"needs layers \['population'\]"):
        generate_for_region(model_dir, osm_only, "morning", 2, 3, tmp_path / "out_refused")
    assert not (tmp_path / "out_refused").exists()
    allowed = generate_for_region(model_dir, osm_only, "morning", 2, 3, tmp_path / "out_allowed",
                                  allow_missing_layers=True)
    assert verify_release(allowed.path).ok
