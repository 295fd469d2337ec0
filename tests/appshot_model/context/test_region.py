"""Region YAML files: validation errors, path resolution, boundary CRS handling, the grid."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import yaml

from appshot_model.context.region import load_region, region_from_dict, utm_crs_for
from appshot_model.core.errors import AppshotInputError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "regions"


def write(folder: Path, data: dict | str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_bbox_region_defaults(tmp_path):
    region = load_region(write(tmp_path, {"boundary": {"bbox": [9.50, 47.12, 9.54, 47.15]}}, "vaduz.yaml"))
    assert region.name == "vaduz"  # from the file name
    assert region.working_crs() == "EPSG:32632" and region.cell_size_m == 250
    grid = region.grid()
    assert grid.crs == "EPSG:32632" and grid.transform.e < 0  # north-up
    assert grid.left % 250 == 0 and grid.top % 250 == 0
    west, south, east, north = region.boundary_in(grid.crs).bounds
    left, bottom, right, top = grid.bounds
    assert left <= west and right >= east and bottom <= south and top >= north
    assert right - east < 250 and west - left < 250
    frac = region.region_fraction(grid)
    assert frac.max() == pytest.approx(1.0) and 0 < frac.mean() < 1
    assert region.file == (tmp_path / "vaduz.yaml").resolve()


def test_misspelt_fields_are_named_with_the_file(tmp_path):
    bad = write(tmp_path, "name: x\nboundary: {bbox: [9.5, 47.1, 9.6, 47.2]}\ncell_sise_m: 100\n")
    with pytest.raises(AppshotInputError) as err:
        load_region(bad)
    msg = str(err.value)
    assert str(bad) in msg and "'cell_sise_m'" in msg and "did you mean 'cell_size_m'" in msg
    nested = write(tmp_path, {"name": "x", "boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]},
                              "sources": {"population": {"raster": "p.tif", "bnad": 2}}}, "n.yaml")
    with pytest.raises(AppshotInputError, match=r"'sources\.population\.bnad'; did you mean 'band'"):
        load_region(nested)
    with pytest.raises(AppshotInputError, match=r"'boundary' is required"):
        load_region(write(tmp_path, {"name": "x"}, "m.yaml"))


def test_value_errors(tmp_path):
    cases = [
        ({"boundary": {"bbox": [368000, 6678000, 380000, 6690000]}}, "outside longitude/latitude"),
        ({"boundary": {"bbox": [9.6, 47.1, 9.5, 47.2]}}, "east > west"),
        ({"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2], "file": "b.gpkg"}}, "exactly one of"),
        ({"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}, "crs": "EPSG:4326"}, "not projected"),
        ({"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}, "crs": "EPSG:999999"}, "unknown CRS"),
        ({"name": "a b", "boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}}, "letters"),
        ({"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}, "sources": {"landuse": {"osm": True}}}, "need an OSM source"),
        ({"boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]}, "sources": {"population": {"vector": "v.gpkg"}}},
         "needs `column`"),
        ({"boundary": {"bbox": [0, 0, 60, 60]}, "cell_size_m": 50}, "cells"),
    ]
    for data, expected in cases:
        with pytest.raises(AppshotInputError, match=expected):
            load_region(write(tmp_path, data, "case.yaml"))


def test_paths_resolve_against_the_yaml_folder(tmp_path):
    folder = tmp_path / "regions"
    folder.mkdir()
    (tmp_path / "data").mkdir()
    pbf = tmp_path / "data" / "x.osm.pbf"
    pbf.write_bytes(b"")
    region = load_region(write(folder, {"name": "r", "boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]},
                                        "sources": {"osm": {"path": "../data/x.osm.pbf"}}}))
    assert region.sources.osm.path == pbf
    with pytest.raises(AppshotInputError, match=r"sources\.osm\.path: .*nope\.osm\.pbf does not exist"):
        load_region(write(folder, {"name": "r", "boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]},
                                   "sources": {"osm": {"path": "nope.osm.pbf"}}}))
    with pytest.raises(AppshotInputError, match="must end with"):
        load_region(write(folder, {"name": "r", "boundary": {"bbox": [9.5, 47.1, 9.6, 47.2]},
                                   "sources": {"osm": {"path": "../data/x.txt"}}}))


def test_polygon_boundary_in_any_crs_and_without_crs(tmp_path):
    lonlat = shapely.Polygon([(-46.70, -23.60), (-46.60, -23.58), (-46.62, -23.50), (-46.69, -23.52)])
    gpd.GeoDataFrame(geometry=[lonlat], crs="EPSG:4326").to_crs("EPSG:3857").to_file(tmp_path / "b.gpkg")
    region = load_region(write(tmp_path, {"name": "sp", "boundary": {"file": "b.gpkg"}}))
    assert region.working_crs() == "EPSG:32723"  # southern hemisphere UTM
    grid = region.grid()
    frac = region.region_fraction(grid)
    assert frac[0, 0] == 0 and frac.max() == pytest.approx(1.0)  # the corner cell is outside the polygon
    gpd.GeoDataFrame(geometry=[lonlat]).to_file(tmp_path / "nocrs.shp")
    with pytest.raises(AppshotInputError, match="has no CRS"):
        load_region(write(tmp_path, {"name": "sp", "boundary": {"file": "nocrs.shp"}}, "n.yaml"))
    with pytest.raises(AppshotInputError, match="applies to bbox only"):
        load_region(write(tmp_path, {"name": "sp", "boundary": {"file": "b.gpkg", "crs": "EPSG:4326"}}, "c.yaml"))


def test_bbox_in_a_projected_crs_and_explicit_working_crs(tmp_path):
    region = region_from_dict({"name": "espoo", "boundary": {"bbox": [368000, 6678000, 380000, 6690000],
                                                             "crs": "EPSG:3067"}, "crs": "EPSG:3067"})
    grid = region.grid()
    assert grid.crs == "EPSG:3067" and grid.shape == (48, 48)
    assert np.allclose(region.region_fraction(grid), 1.0)


def test_utm_zones():
    assert utm_crs_for(9.5, 47.1) == "EPSG:32632"
    assert utm_crs_for(-8.6, 41.1) == "EPSG:32629"
    assert utm_crs_for(-46.6, -23.5) == "EPSG:32723"
    assert utm_crs_for(179.99, 0.0) == "EPSG:32660" and utm_crs_for(-180.0, 0.0) == "EPSG:32601"


def test_every_example_region_loads(shared_data):
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        region = load_region(path)
        assert region.name == path.stem
        assert region.grid().height > 5
