"""OSM reading and gridding: exact PoI counts against independent counts, road lengths, buildings,
bad files and the tag mapping."""

import gzip
import warnings
from pathlib import Path

import numpy as np
import osmium
import pytest
import shapely
import yaml
from pyproj import Transformer

from appshot_model.context.build import grid_lonlat_bounds
from appshot_model.context.osm import (TAGS_FILE, extract_from_features, load_tag_mapping, poi_layers,
                                       population_from_osm_buildings, read_osm)
from appshot_model.context.region import region_from_dict
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import POI_ATTRIBUTES, ROAD_ATTRIBUTES

#: file -> crop (west, south, east, north) inside the extract, to keep the tests quick
REAL = {
    "liechtenstein-latest.osm.pbf": (9.471078, 47.04774, 9.636217, 47.27128),
    "porto.osm.pbf": (-8.618, 41.138, -8.598, 41.154),
    "baltimore.osm.pbf": (-76.62, 39.28, -76.59, 39.30),
    "north-bayreuth.osm.gz": (11.4807, 49.9721, 11.6053, 50.0470),  # sparse file: its header bbox
}


# ---------------------------------------------------------------------------------------------
# an independent count: plain pyosmium handler + a straightforward reading of osm_tags.yaml
# ---------------------------------------------------------------------------------------------

def _rules() -> dict:
    return yaml.safe_load(TAGS_FILE.read_text())["points"]


def _matching(tags: dict, rules: dict) -> set[str]:
    found = set()
    for attr, alternatives in rules.items():
        for rule in alternatives:
            if all(k in tags and ((v == "*" and tags[k] != "no") or (v != "*" and tags[k] in v))
                   for k, v in rule.items()):
                found.add(attr)
    return found


def independent_node_counts(path: Path, grid: Grid) -> dict[str, int]:
    """Nodes matching each point attribute whose location falls in the grid (half-open cells)."""
    rules = _rules()
    hits: list[tuple[str, float, float]] = []

    class Handler(osmium.SimpleHandler):
        def node(self, n):
            if not n.tags or not n.location.valid():
                return
            tags = {t.k: t.v for t in n.tags}
            for attr in _matching(tags, rules):
                hits.append((attr, n.location.lon, n.location.lat))

    Handler().apply_file(str(path))
    counts = dict.fromkeys(rules, 0)
    if hits:
        tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
        x, y = tr.transform([h[1] for h in hits], [h[2] for h in hits])
        left, bottom, right, top = grid.bounds
        inside = (np.asarray(x) >= left) & (np.asarray(x) < right) & (np.asarray(y) > bottom) & (np.asarray(y) <= top)
        for (attr, _, _), ok in zip(hits, inside):
            counts[attr] += int(ok)
    return counts


def crop_grid(name: str, box) -> Grid:
    return region_from_dict({"name": "crop", "boundary": {"bbox": list(box)}}).grid()


@pytest.mark.parametrize("name", list(REAL))
def test_point_counts_are_exact_on_real_extracts(shared_data, name):
    path = shared_data / "osm" / name
    grid = crop_grid(name, REAL[name])
    extract = read_osm(path, bbox=grid_lonlat_bounds(grid))
    res = poi_layers(extract, grid)
    expected = independent_node_counts(path, grid)
    assert sum(expected.values()) > 10, "crop without PoIs: pick another box"
    layers = res.metadata["layers"]
    for attr, n in expected.items():
        assert layers[attr]["from_nodes"] == n, attr
        total = layers[attr]["from_nodes"] + layers[attr]["from_ways"] + layers[attr]["from_relations"]
        assert res.values[attr].sum() == total == layers[attr]["total_before"], attr
    for attr in ROAD_ATTRIBUTES:
        assert res.values[attr].sum() == pytest.approx(layers[attr]["total_before"], rel=1e-9, abs=1e-6)
    assert set(res.values) == set(POI_ATTRIBUTES)
    for arr in res.values.values():
        assert arr.shape == grid.shape and np.isfinite(arr).all() and (arr >= 0).all()


def test_osm_xml_read_by_osmnx_gives_the_same_node_counts_and_road_lengths(shared_data):
    import osmnx as ox

    path = shared_data / "osm" / "north-bayreuth.osm.gz"
    grid = crop_grid("bayreuth", REAL["north-bayreuth.osm.gz"])
    mapping = load_tag_mapping()
    ours = poi_layers(read_osm(path, bbox=grid_lonlat_bounds(grid), mapping=mapping), grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = ox.features_from_xml(path, tags={k: True for k in sorted(mapping.keys())})
    theirs = poi_layers(extract_from_features(features, mapping), grid)
    for attr in mapping.points:
        assert theirs.metadata["layers"][attr]["from_nodes"] == ours.metadata["layers"][attr]["from_nodes"], attr
    for attr in ROAD_ATTRIBUTES:
        assert theirs.values[attr].sum() == pytest.approx(ours.values[attr].sum(), rel=1e-9), attr
    assert ours.values["poi_secondary_roads"].sum() > 1000


# ---------------------------------------------------------------------------------------------
# a hand-written extract with known answers
# ---------------------------------------------------------------------------------------------

GRID = Grid("EPSG:32632", 535_000.0, 5_220_000.0, 4, 4)
TO_LONLAT = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)


def _node(i: int, x: float, y: float, tags: dict | None = None) -> str:
    lon, lat = TO_LONLAT.transform(x, y)
    body = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in (tags or {}).items())
    return f'<node id="{i}" version="1" lat="{lat:.9f}" lon="{lon:.9f}">{body}</node>'


def _way(i: int, refs: list[int], tags: dict) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    body = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{i}" version="1">{nds}{body}</way>'


def small_osm(folder: Path) -> Path:
    """Cells are 250 m from (535000, 5220000) going south/east. Features:
    - node shop in cell (0, 0), node cafe + shop in cell (1, 1), an untagged node;
    - a closed way shop=supermarket + building=retail in cell (2, 2) (counted once as shop);
    - a multipolygon relation amenity=parking (a square in cell (3, 0));
    - a primary road from x=535050 to x=535650 along y=5219875 (600 m, 3 cells of row 0);
    - two residential buildings: 20 x 10 m with 3 levels in cell (1, 2); 10 x 10 m default levels in cell (3, 3);
    - landuse=commercial polygon covering cell (0, 3) holding a building=yes (not residential).
    """
    x0, y0 = GRID.left, GRID.top
    parts = [_node(1, x0 + 100, y0 - 100, {"shop": "bakery"}),
             _node(2, x0 + 300, y0 - 300, {"amenity": "cafe", "shop": "coffee"}),
             _node(3, x0 + 10, y0 - 10)]
    nid = 10

    def square(cx, cy, half):
        nonlocal nid
        ids = []
        for dx, dy in [(-half, -half), (half, -half), (half, half), (-half, half)]:
            parts.append(_node(nid, cx + dx, cy + dy))
            ids.append(nid)
            nid += 1
        return ids + ids[:1]

    parts.append(_way(100, square(x0 + 625, y0 - 625, 20), {"shop": "supermarket", "building": "retail"}))
    outer = square(x0 + 125, y0 - 875, 30)
    parts.append(_way(101, outer, {}))
    road = []
    for x in (x0 + 50, x0 + 350, x0 + 650):
        parts.append(_node(nid, x, y0 - 125))
        road.append(nid)
        nid += 1
    parts.append(_way(102, road, {"highway": "primary"}))
    ids = []
    for dx, dy in [(0, 0), (20, 0), (20, 10), (0, 10)]:
        parts.append(_node(nid, x0 + 600 + dx, y0 - 400 + dy))
        ids.append(nid)
        nid += 1
    parts.append(_way(103, ids + ids[:1], {"building": "house", "building:levels": "3"}))
    parts.append(_way(104, square(x0 + 875, y0 - 875, 5), {"building": "yes"}))
    parts.append(_way(105, square(x0 + 875, y0 - 125, 120), {"landuse": "commercial"}))
    parts.append(_way(106, square(x0 + 875, y0 - 125, 5), {"building": "yes"}))
    parts.append('<relation id="200" version="1"><member type="way" ref="101" role="outer"/>'
                 '<tag k="type" v="multipolygon"/><tag k="amenity" v="parking"/></relation>')
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">' + "".join(parts) + "</osm>"
    path = folder / "small.osm"
    path.write_text(xml)
    return path


def test_hand_written_extract(tmp_path):
    path = small_osm(tmp_path)
    extract = read_osm(path)
    assert extract.extent_source.startswith("bbox of the objects read")
    res = poi_layers(extract, GRID, coverage=np.ones(GRID.shape))
    shop, cafe, parking = res.values["poi_shop"], res.values["poi_cafe"], res.values["poi_parking"]
    assert shop[0, 0] == 1 and shop[1, 1] == 1 and shop[2, 2] == 1 and shop.sum() == 3
    assert cafe[1, 1] == 1 and cafe.sum() == 1
    assert parking[3, 0] == 1 and parking.sum() == 1
    meta = res.metadata["layers"]
    assert (meta["poi_shop"]["from_nodes"], meta["poi_shop"]["from_ways"]) == (2, 1)
    assert meta["poi_parking"]["from_relations"] == 1
    road = res.values["poi_primary_roads"]
    assert road.sum() == pytest.approx(600.0, abs=0.05)  # UTM metres: only coordinate rounding remains
    assert road[0, 0] == pytest.approx(200.0, abs=0.05) and road[0, 1] == pytest.approx(250.0, abs=0.05)
    assert road[0, 2] == pytest.approx(150.0, abs=0.05) and road[1:].sum() == 0
    assert "working CRS EPSG:32632" in meta["poi_primary_roads"]["method"]
    # population: only the two residential buildings (the building=yes in commercial land does not count)
    boundary = shapely.box(*GRID.bounds)
    pop = population_from_osm_buildings(extract, GRID, 100.0, boundary, coverage=np.ones(GRID.shape))
    people = pop.values["population"]
    floor_house, floor_yes = 20 * 10 * 3, 10 * 10 * 2
    assert people.sum() == pytest.approx(100.0)
    assert people[1, 2] == pytest.approx(100 * floor_house / (floor_house + floor_yes), rel=1e-3)
    assert people[3, 3] == pytest.approx(100 * floor_yes / (floor_house + floor_yes), rel=1e-3)
    assert people[0, 3] == 0 and pop.metadata["status"] == "estimated"
    assert pop.metadata["n_residential_in_region"] == 2
    with pytest.raises(AppshotInputError, match="inside the region boundary"):
        population_from_osm_buildings(extract, GRID, 100.0, shapely.box(0, 0, 1, 1))


def test_corrupt_and_truncated_files_name_the_file(shared_data, tmp_path):
    data = (shared_data / "osm" / "porto.osm.pbf").read_bytes()
    truncated = tmp_path / "truncated.osm.pbf"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(AppshotInputError, match=r"truncated\.osm\.pbf.*(corrupt or truncated)"):
        read_osm(truncated)
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(b"this is not a pbf file at all" * 10)
    with pytest.raises(AppshotInputError, match="garbage.osm.pbf"):
        read_osm(garbage)
    xml = gzip.decompress((shared_data / "osm" / "north-bayreuth.osm.gz").read_bytes())
    cut = tmp_path / "cut.osm.gz"
    cut.write_bytes(gzip.compress(xml[: len(xml) // 3]))
    with pytest.raises(AppshotInputError, match="cut.osm.gz"):
        read_osm(cut)
    with pytest.raises(AppshotInputError, match="does not exist"):
        read_osm(tmp_path / "none.osm.pbf")


def test_tag_mapping_override_and_errors(tmp_path):
    user = tmp_path / "tags.yaml"
    user.write_text("points:\n  poi_shop:\n    - shop: [bakery]\n")
    mapping = load_tag_mapping(user)
    assert list(mapping.points) == ["poi_shop"] and set(mapping.lines) == set(ROAD_ATTRIBUTES)
    assert mapping.buildings.unspecified == ["yes"]
    assert mapping.point_attributes({"shop": "bakery"}) == ["poi_shop"]
    assert mapping.point_attributes({"shop": "coffee"}) == []
    extract = read_osm(small_osm(tmp_path), mapping=mapping)
    res = poi_layers(extract, GRID)
    assert res.values["poi_shop"].sum() == 1 and "poi_cafe" in res.metadata["missing"]
    bools = tmp_path / "bools.yaml"
    bools.write_text("buildings:\n  residential: [house]\n  unspecified: [yes]\n")
    assert load_tag_mapping(bools).buildings.unspecified == ["yes"]
    for text, expected in [("points:\n  poi_shops:\n    - shop: '*'\n", "unknown attribute"),
                           ("points:\n  poi_motorways:\n    - highway: [motorway]\n", "road lengths"),
                           ("poinst: {}\n", "unknown section"),
                           ("points:\n  poi_shop: []\n", "list of rules")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(AppshotInputError, match=expected):
            load_tag_mapping(bad)


def test_default_mapping_covers_the_fourteen_categories():
    mapping = load_tag_mapping()
    assert mapping.mapped_attributes() == list(POI_ATTRIBUTES)
    assert set(mapping.lines) == set(ROAD_ATTRIBUTES)
    assert mapping.point_attributes({"railway": "tram_stop"}) == ["poi_tram_stops"]
    assert mapping.point_attributes({"office": "no"}) == []
    assert mapping.line_attributes({"highway": "motorway_link"}) == ["poi_motorways"]
