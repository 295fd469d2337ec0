"""OpenStreetMap context: points of interest, road lengths, buildings and land-use polygons.

Reading: local ``.osm.pbf`` / ``.osm`` / ``.osm.gz`` files with pyosmium (``FileProcessor`` with
area assembly for multipolygon relations and a ``KeyFilter`` so only objects carrying a key of
interest reach Python); objects are kept when they intersect the region's lon/lat box. Online
download through osmnx is a separate, opt-in function (:func:`download_osm`) and is never called
unless a region asks for it.

Tag mapping: ``osm_tags.yaml`` beside this module (documented in docs/context.md) maps tags to the
14 PoI attributes of AppShot Table I (``names.POI_ATTRIBUTES``): ``points`` attributes are counts
per cell, ``lines`` attributes (the three road classes) are lengths in metres per cell measured in
the working CRS. A user YAML of the same shape replaces whole sections.

Gridding:
- a node counts at its location; a way or multipolygon counts once, at a point on its surface;
- road lengths: lines projected to the grid CRS, split into segments, cut by the cells;
- the OSM population estimate spreads a user-given total over residential floor area
  (footprint x levels);
- land-use polygons go to ``landuse.landuse_from_osm_polygons``.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyproj import CRS, Transformer

from appshot_model.context.layers import LayerResult
from appshot_model.context.regrid import (candidate_pairs, clean_geometries, coverage_from_pieces, intersect_with_grid,
                                          polygons_to_grid)
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import POI_ATTRIBUTES, ROAD_ATTRIBUTES

TAGS_FILE = Path(__file__).with_name("osm_tags.yaml")
WGS84 = "EPSG:4326"
#: Tag keys of the land-use polygons kept for the OSM land-use fallback (landuse_schemes.yaml order).
LANDUSE_KEYS = ("leisure", "aeroway", "landuse", "natural")
#: Margin (degrees) added around the region's lon/lat box when reading.
READ_MARGIN_DEG = 1e-4
#: Licence and attribution of OSM data (same strings as the release dataset card uses).
OSM_LICENCE = "ODbL-1.0"
OSM_ATTRIBUTION = "(c) OpenStreetMap contributors"


# ---------------------------------------------------------------------------------------------
# the tag mapping
# ---------------------------------------------------------------------------------------------

def _as_tag_value(v: Any) -> str:
    # YAML 1.1 reads unquoted yes/no as booleans: give them back as the OSM strings
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Levels(_Strict):
    default: float = Field(default=2.0, gt=0)
    max_levels: float = Field(default=100.0, gt=0)
    by_type: dict[str, float] = Field(default_factory=dict)

    @field_validator("by_type", mode="before")
    @classmethod
    def _keys(cls, v):
        return {_as_tag_value(k): val for k, val in (v or {}).items()}


class BuildingRules(_Strict):
    residential: list[str] = Field(default_factory=list)
    unspecified: list[str] = Field(default_factory=list)
    non_residential_keys: list[str] = Field(default_factory=list)
    non_residential_landuse: list[str] = Field(default_factory=list)
    levels: Levels = Field(default_factory=Levels)

    @field_validator("residential", "unspecified", "non_residential_keys", "non_residential_landuse",
                     mode="before")
    @classmethod
    def _strings(cls, v):
        return [_as_tag_value(x) for x in (v or [])]


Rule = dict[str, list[str] | str]


class TagMapping(_Strict):
    """``points``/``lines``: attribute -> rules; ``buildings``: population-estimate rules."""

    points: dict[str, list[Rule]] = Field(default_factory=dict)
    lines: dict[str, list[Rule]] = Field(default_factory=dict)
    buildings: BuildingRules = Field(default_factory=BuildingRules)
    source: str = "built-in osm_tags.yaml"

    @field_validator("points", "lines", mode="before")
    @classmethod
    def _rules(cls, v):
        out = {}
        for attr, rules in (v or {}).items():
            if isinstance(rules, dict):
                rules = [rules]
            if not isinstance(rules, list) or not rules:
                raise ValueError(f"{attr}: expected a list of rules {{key: [values] | '*'}}")
            clean = []
            for rule in rules:
                if not isinstance(rule, dict) or not rule:
                    raise ValueError(f"{attr}: rule {rule!r} must map tag keys to a list of values or '*'")
                clean.append({str(k): (val if val == "*" else [_as_tag_value(x) for x in
                                                               (val if isinstance(val, list) else [val])])
                              for k, val in rule.items()})
            out[attr] = clean
        return out

    def check(self) -> "TagMapping":
        """Raise unless attributes are PoI names, roads are lines, and no attribute is in both sections."""
        for section in ("points", "lines"):
            unknown = [a for a in getattr(self, section) if a not in POI_ATTRIBUTES]
            if unknown:
                raise AppshotInputError(f"OSM tag mapping {self.source}: {section} has unknown attribute(s) "
                                        f"{unknown}; expected names from {list(POI_ATTRIBUTES)}")
        wrong = [a for a in self.points if a in ROAD_ATTRIBUTES]
        if wrong:
            raise AppshotInputError(f"OSM tag mapping {self.source}: {wrong} are road lengths (metres per "
                                    f"cell); list them under `lines`, not `points`")
        both = sorted(set(self.points) & set(self.lines))
        if both:
            raise AppshotInputError(f"OSM tag mapping {self.source}: {both} appear under both points and lines")
        return self

    # -- matching -----------------------------------------------------------------------------

    def keys(self) -> set[str]:
        """Every tag key the rules look at."""
        keys = {k for rules in (*self.points.values(), *self.lines.values()) for rule in rules for k in rule}
        return keys | {"building"} | set(self.buildings.non_residential_keys)

    @staticmethod
    def _matches(rules: list[Rule], tags: Mapping[str, str]) -> bool:
        for rule in rules:
            ok = True
            for key, values in rule.items():
                value = tags.get(key)
                if value is None or (values == "*" and value == "no") or (values != "*" and value not in values):
                    ok = False
                    break
            if ok:
                return True
        return False

    def _keyset(self, section: str) -> frozenset[str]:
        cache = self.__dict__.setdefault("_keysets", {})
        if section not in cache:
            cache[section] = frozenset(k for rules in getattr(self, section).values() for rule in rules for k in rule)
        return cache[section]

    def point_attributes(self, tags: Mapping[str, str]) -> list[str]:
        if self._keyset("points").isdisjoint(tags):
            return []
        return [a for a, rules in self.points.items() if self._matches(rules, tags)]

    def line_attributes(self, tags: Mapping[str, str]) -> list[str]:
        if self._keyset("lines").isdisjoint(tags):
            return []
        return [a for a, rules in self.lines.items() if self._matches(rules, tags)]

    def mapped_attributes(self) -> list[str]:
        return [a for a in POI_ATTRIBUTES if a in self.points or a in self.lines]


@lru_cache(maxsize=1)
def _builtin_tags() -> dict:
    return yaml.safe_load(TAGS_FILE.read_text(encoding="utf-8"))


def load_tag_mapping(path: str | os.PathLike | Mapping | None = None) -> TagMapping:
    """The built-in mapping, with the top-level sections of a user YAML (or dict) replacing its own."""
    data = dict(_builtin_tags())
    source = f"built-in {TAGS_FILE.name}"
    if path is not None:
        if isinstance(path, Mapping):
            user, source = dict(path), "user OSM tag mapping"
        else:
            p = Path(path)
            if not p.is_file():
                raise AppshotInputError(f"OSM tag mapping {p} does not exist")
            try:
                user = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise AppshotInputError(f"OSM tag mapping {p} is not valid YAML: {exc}") from exc
            source = str(p)
        if not isinstance(user, dict):
            raise AppshotInputError(f"OSM tag mapping {source}: expected a mapping with points/lines/buildings")
        unknown = [k for k in user if k not in ("points", "lines", "buildings")]
        if unknown:
            raise AppshotInputError(f"OSM tag mapping {source}: unknown section(s) {unknown}; expected "
                                    f"points, lines, buildings")
        data.update(user)
    try:
        mapping = TagMapping.model_validate({**data, "source": source})
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                 for e in exc.errors()]
        raise AppshotInputError(f"OSM tag mapping {source}: " + "; ".join(parts)) from None
    return mapping.check()


# ---------------------------------------------------------------------------------------------
# extracts
# ---------------------------------------------------------------------------------------------

@dataclass
class OsmExtract:
    """What one OSM source holds for a region, geometries in EPSG:4326.

    ``points``: one row per (object, PoI attribute): ``attribute``, ``osm_type`` (n/w/r),
    ``osm_id``, point geometry. ``lines``: one row per (way, road attribute). ``buildings``:
    polygons with ``building``, ``levels`` (from ``building:levels``, NaN when absent or not a
    number), ``non_residential_tag``. ``landuse``: polygons with the LANDUSE_KEYS columns.
    ``extent``: where the source claims completeness (header bbox, user extent or data bbox).
    """

    source: str
    points: Any
    lines: Any
    buildings: Any
    landuse: Any
    extent: shapely.Geometry
    extent_source: str
    mapping: TagMapping
    info: dict = field(default_factory=dict)


def _num_levels(value: str | None) -> float:
    if not value:
        return math.nan
    m = re.search(r"\d+(?:[.,]\d+)?", value)
    return float(m.group(0).replace(",", ".")) if m else math.nan


class _Collector:
    """Accumulates features while reading; builds GeoDataFrames at the end."""

    def __init__(self, mapping: TagMapping, landuse_keys: Sequence[str]):
        self.mapping = mapping
        self.landuse_keys = tuple(landuse_keys)
        self.pts: list[tuple] = []          # (attribute, type, id, lon, lat) of nodes
        self.shapes: list[tuple] = []       # (id, polygonal geometry, tags) of multipolygon relations
        self.way_ids: list[int] = []
        self.way_tags: list[dict] = []
        self.way_lines: list = []           # WKB (hex) strings or shapely lines

    def node(self, osm_id: int, lon: float, lat: float, tags: dict) -> None:
        for attr in self.mapping.point_attributes(tags):
            self.pts.append((attr, "n", osm_id, lon, lat))

    def way(self, osm_id: int, line, tags: dict) -> None:
        """A way as a line: WKB hex string or shapely LineString, EPSG:4326."""
        self.way_ids.append(osm_id)
        self.way_tags.append(tags)
        self.way_lines.append(line)

    def relation_area(self, osm_id: int, geom, tags: dict) -> None:
        self.shapes.append((osm_id, geom, tags))

    def finish_ways(self, bbox: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray | None, int]:
        """Turn the collected ways into shapely lines, drop those whose bounds miss ``bbox``.

        Returns (bounds of all ways before dropping or None, number dropped)."""
        n = len(self.way_lines)
        lines = np.empty(n, dtype=object)
        wkb = [i for i, g in enumerate(self.way_lines) if isinstance(g, (str, bytes))]
        if wkb:
            lines[wkb] = shapely.from_wkb([self.way_lines[i] for i in wkb])
        for i, g in enumerate(self.way_lines):
            if not isinstance(g, (str, bytes)):
                lines[i] = g
        if n == 0:
            self.way_lines = lines
            return None, 0
        b = shapely.bounds(lines)
        data = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])
        dropped = 0
        if bbox is not None:
            w, s, e, nn = bbox
            keep = ~((b[:, 2] < w) | (b[:, 0] > e) | (b[:, 3] < s) | (b[:, 1] > nn))
            dropped = int((~keep).sum())
            lines = lines[keep]
            self.way_ids = [x for x, k in zip(self.way_ids, keep) if k]
            self.way_tags = [x for x, k in zip(self.way_tags, keep) if k]
        self.way_lines = lines
        return data, dropped

    def _lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(lines, polygons or None where the way is not closed)."""
        if not isinstance(self.way_lines, np.ndarray):
            self.finish_ways()
        lines = self.way_lines
        n = len(lines)
        polys = np.full(n, None, dtype=object)
        if n:
            ncoords = shapely.get_num_coordinates(lines)
            first, last = shapely.get_point(lines, 0), shapely.get_point(lines, -1)
            closed = (ncoords >= 4) & shapely.equals_exact(first, last, tolerance=0.0)
            if closed.any():
                ci = np.flatnonzero(closed)
                coords, idx = shapely.get_coordinates(lines[ci], return_index=True)
                polys[ci] = shapely.polygons(shapely.linearrings(coords, indices=idx))
        return lines, polys

    def _classify(self) -> dict[str, list]:
        """Rows and geometries of every way and relation area: PoIs found on surfaces, road lines,
        buildings and land-use polygons."""
        mapping = self.mapping
        lines, polys = self._lines()
        rows: dict[str, list] = {k: [] for k in ("line_rows", "line_geoms", "bld_rows", "bld_geoms", "lu_rows",
                                                 "lu_geoms", "surface_src", "surface_rows")}
        objects = [("w", oid, polys[i] if polys[i] is not None else lines[i], self.way_tags[i], lines[i])
                   for i, oid in enumerate(self.way_ids)]
        objects += [("r", oid, g, tags, None) for oid, g, tags in self.shapes]
        for otype, oid, geom, tags, line in objects:
            if geom is None:
                continue
            for attr in mapping.point_attributes(tags):
                rows["surface_rows"].append((attr, otype, oid))
                rows["surface_src"].append(geom)
            if line is not None:
                for attr in mapping.line_attributes(tags):
                    rows["line_rows"].append((attr, oid))
                    rows["line_geoms"].append(line)
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                continue
            b = tags.get("building")
            if b and b != "no":
                non_res = any(k in tags for k in mapping.buildings.non_residential_keys)
                rows["bld_rows"].append((otype, oid, b, _num_levels(tags.get("building:levels")), non_res))
                rows["bld_geoms"].append(geom)
            if any(tags.get(k) for k in self.landuse_keys):
                rows["lu_rows"].append((otype, oid, *[tags.get(k) for k in self.landuse_keys]))
                rows["lu_geoms"].append(geom)
        return rows

    def _surface_points(self, sources: list, rows: list[tuple]) -> list[tuple]:
        """One point on the surface of each PoI area (``rows``: attribute, OSM type, OSM id)."""
        if not sources:
            return []
        src = np.array(sources, dtype=object)
        surf = shapely.point_on_surface(clean_geometries(src))
        # a degenerate ring can repair to nothing: use the centroid of its outline instead
        empty = shapely.is_empty(surf)
        if empty.any():
            surf[empty] = shapely.centroid(shapely.boundary(src[empty]))
        xs, ys = shapely.get_x(surf), shapely.get_y(surf)
        return [(a, t, i, float(x), float(y)) for (a, t, i), x, y in zip(rows, xs, ys)]

    def frames(self):
        """GeoDataFrames (EPSG:4326) of points (PoIs), lines (roads), buildings and land-use polygons."""
        import geopandas as gpd
        import pandas as pd

        rows = self._classify()
        pts = list(self.pts) + self._surface_points(rows["surface_src"], rows["surface_rows"])
        xy = np.array([[p[3], p[4]] for p in pts], dtype=float).reshape(-1, 2)
        points = gpd.GeoDataFrame(pd.DataFrame([p[:3] for p in pts], columns=["attribute", "osm_type", "osm_id"]),
                                  geometry=shapely.points(xy), crs=WGS84)
        lines_gdf = gpd.GeoDataFrame(pd.DataFrame(rows["line_rows"], columns=["attribute", "osm_id"]),
                                     geometry=np.array(rows["line_geoms"], dtype=object), crs=WGS84)
        buildings = gpd.GeoDataFrame(
            pd.DataFrame(rows["bld_rows"], columns=["osm_type", "osm_id", "building", "levels", "non_residential_tag"]),
            geometry=np.array(rows["bld_geoms"], dtype=object), crs=WGS84)
        landuse = gpd.GeoDataFrame(pd.DataFrame(rows["lu_rows"], columns=["osm_type", "osm_id", *self.landuse_keys]),
                                   geometry=np.array(rows["lu_geoms"], dtype=object), crs=WGS84)
        # one count per object and attribute
        points = points.drop_duplicates(subset=["attribute", "osm_type", "osm_id"]).reset_index(drop=True)
        lines_gdf = lines_gdf.drop_duplicates(subset=["attribute", "osm_id"]).reset_index(drop=True)
        return points, lines_gdf, buildings, landuse


def _box_tuple(box) -> tuple[float, float, float, float] | None:
    if box is None or not box.valid():
        return None
    bl, tr = box.bottom_left, box.top_right
    return (bl.lon, bl.lat, tr.lon, tr.lat)


def _scan_objects(processor, col: _Collector, bounds: tuple[float, float, float, float], stats: dict,
                  lo: list[float], hi: list[float]) -> None:
    """Feed the nodes, ways and relation areas of ``processor`` inside ``bounds`` (west, south, east, north)
    to ``col``, counting them in ``stats`` and growing the located extent ``lo``/``hi``."""
    import osmium

    w, s, e, n = bounds
    wkb = osmium.geom.WKBFactory()
    for obj in processor:
        if obj.is_node():
            loc = obj.location
            if not loc.valid():
                continue
            lon, lat = loc.lon, loc.lat
            lo[0], lo[1] = min(lo[0], lon), min(lo[1], lat)
            hi[0], hi[1] = max(hi[0], lon), max(hi[1], lat)
            if not (w <= lon <= e and s <= lat <= n):
                stats["outside_bbox"] += 1
                continue
            stats["nodes"] += 1
            col.node(obj.id, lon, lat, {t.k: t.v for t in obj.tags})
        elif obj.is_way():
            try:
                line = wkb.create_linestring(obj)
            except Exception:  # nodes without locations (clipped extract): keep the located ones
                coords = [(nd.lon, nd.lat) for nd in obj.nodes if nd.location.valid()]
                if len(coords) < 2:
                    stats["ways_without_locations"] += 1
                    continue
                line = shapely.LineString(coords)
            stats["ways"] += 1
            col.way(obj.id, line, {t.k: t.v for t in obj.tags})
        elif obj.is_area():
            if obj.from_way():
                continue  # closed ways are handled as ways (no double count)
            try:
                geom = shapely.from_wkb(wkb.create_multipolygon(obj))
            except Exception:  # incomplete relation in a clipped extract
                stats["areas_failed"] += 1
                continue
            gw, gs, ge, gn = geom.bounds
            if ge < w or gw > e or gn < s or gs > n:
                stats["outside_bbox"] += 1
                continue
            stats["relation_areas"] += 1
            col.relation_area(obj.orig_id(), geom, {t.k: t.v for t in obj.tags})


def _extract_extent(path: Path, keys: Sequence[str], extent: Sequence[float] | None,
                    header_box: tuple[float, float, float, float] | None, lo: list[float],
                    hi: list[float]) -> tuple[tuple[float, ...], str]:
    """Where the extract is complete, and why: the region file's extent, else the file header's bbox,
    else the bbox of the objects read."""
    if extent is not None:
        return tuple(float(v) for v in extent), "region file (sources.osm.extent)"
    if header_box is not None:
        return header_box, "file header bbox"
    if lo[0] <= hi[0]:
        return (lo[0], lo[1], hi[0], hi[1]), "bbox of the objects read (no header bbox)"
    raise AppshotInputError(f"OSM file {path} holds no located objects with the keys {keys}")


def read_osm(path: str | os.PathLike, bbox: Sequence[float] | None = None,
             mapping: TagMapping | str | os.PathLike | None = None,
             landuse_keys: Sequence[str] = LANDUSE_KEYS,
             extent: Sequence[float] | None = None) -> OsmExtract:
    """Read PoIs, roads, buildings and land-use polygons from a local OSM file with pyosmium.

    ``bbox``: (west, south, east, north) in EPSG:4326; objects whose geometry does not reach it
    are dropped (``None``: keep everything). ``mapping``: a :class:`TagMapping`, a user YAML path
    or ``None`` for the built-in ``osm_tags.yaml``. ``extent``: where the extract is complete
    (default: the file header's bbox, else the bbox of the objects read). A corrupt or truncated
    file raises :class:`AppshotInputError` naming it.
    """
    import osmium

    path = Path(path)
    if not path.is_file():
        raise AppshotInputError(f"OSM file {path} does not exist")
    if not isinstance(mapping, TagMapping):
        mapping = load_tag_mapping(mapping)
    keys = sorted(mapping.keys() | set(landuse_keys) | {"landuse"})
    started = time.perf_counter()
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        w, s, e, n = w - READ_MARGIN_DEG, s - READ_MARGIN_DEG, e + READ_MARGIN_DEG, n + READ_MARGIN_DEG
    else:
        w = s = -math.inf
        e = n = math.inf
    col = _Collector(mapping, landuse_keys)
    lo = [math.inf, math.inf]
    hi = [-math.inf, -math.inf]
    stats = {"nodes": 0, "ways": 0, "relation_areas": 0, "ways_without_locations": 0, "areas_failed": 0,
             "outside_bbox": 0}
    try:
        key_filter = osmium.filter.KeyFilter(*keys)
        processor = (osmium.FileProcessor(str(path))
                     .with_areas(osmium.filter.KeyFilter(*keys))
                     .with_filter(key_filter))
        header_box = _box_tuple(processor.header.box())
        header = processor.header
        info_header = {"generator": header.get("generator", ""),
                       "timestamp": header.get("osmosis_replication_timestamp", "") or header.get("timestamp", "")}
        _scan_objects(processor, col, (w, s, e, n), stats, lo, hi)
    except RuntimeError as exc:
        raise AppshotInputError(f"cannot read OSM file {path}: {exc} (corrupt or truncated? expected a "
                                f"complete .osm.pbf / .osm / .osm.gz file)") from exc
    way_bounds, dropped = col.finish_ways(None if bbox is None else (w, s, e, n))
    stats["outside_bbox"] += dropped
    stats["ways"] -= dropped
    if way_bounds is not None:
        lo[0], lo[1] = min(lo[0], way_bounds[0]), min(lo[1], way_bounds[1])
        hi[0], hi[1] = max(hi[0], way_bounds[2]), max(hi[1], way_bounds[3])
    points, lines, buildings, landuse = col.frames()
    ext, ext_source = _extract_extent(path, keys, extent, header_box, lo, hi)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    stats.update(info_header)
    stats["data_bbox"] = (lo[0], lo[1], hi[0], hi[1]) if lo[0] <= hi[0] else None
    return OsmExtract(source=str(path), points=points, lines=lines, buildings=buildings, landuse=landuse,
                      extent=shapely.box(*ext), extent_source=ext_source, mapping=mapping, info=stats)


def extract_from_features(gdf, mapping: TagMapping | None = None, extent: Sequence[float] | None = None,
                          source: str = "osmnx features", landuse_keys: Sequence[str] = LANDUSE_KEYS) -> OsmExtract:
    """An :class:`OsmExtract` from an osmnx features GeoDataFrame (index ``element``, ``id``; tag
    columns; EPSG:4326), e.g. from ``osmnx.features_from_bbox`` or ``features_from_xml``."""
    mapping = mapping or load_tag_mapping()
    if gdf.crs is None or CRS.from_user_input(gdf.crs) != CRS.from_user_input(WGS84):
        gdf = gdf.set_crs(WGS84) if gdf.crs is None else gdf.to_crs(WGS84)
    col = _Collector(mapping, landuse_keys)
    keys = [k for k in mapping.keys() | set(landuse_keys) | {"building:levels"} if k in gdf.columns]
    elements = gdf.index.get_level_values(0) if gdf.index.nlevels > 1 else np.full(len(gdf), "node")
    ids = gdf.index.get_level_values(1) if gdf.index.nlevels > 1 else gdf.index
    values = {k: gdf[k].to_numpy(dtype=object) for k in keys}
    geoms = gdf.geometry.to_numpy()
    for i in range(len(gdf)):
        tags = {k: values[k][i] for k in keys if isinstance(values[k][i], str)}
        geom, element = geoms[i], str(elements[i])
        if geom is None or geom.is_empty:
            continue
        if element == "node" and geom.geom_type == "Point":
            col.node(int(ids[i]), geom.x, geom.y, tags)
        elif element == "way" and geom.geom_type in ("LineString", "Polygon"):
            col.way(int(ids[i]), geom.exterior if geom.geom_type == "Polygon" else geom, tags)
        elif geom.geom_type in ("Polygon", "MultiPolygon"):
            col.relation_area(int(ids[i]), geom, tags)
    points, lines, buildings, landuse = col.frames()
    if extent is None:
        extent = tuple(gdf.total_bounds)
    return OsmExtract(source=source, points=points, lines=lines, buildings=buildings, landuse=landuse,
                      extent=shapely.box(*extent), extent_source="requested bbox", mapping=mapping,
                      info={"features": int(len(gdf))})


def download_osm(bbox: Sequence[float], mapping: TagMapping | None = None,
                 landuse_keys: Sequence[str] = LANDUSE_KEYS) -> OsmExtract:  # pragma: no cover - online
    """ONLINE, opt-in (``sources.osm.download: true``): fetch the objects with the mapping's keys
    inside ``bbox`` (west, south, east, north, EPSG:4326) from the Overpass API through osmnx."""
    import osmnx as ox

    mapping = mapping or load_tag_mapping()
    tags = {k: True for k in sorted(mapping.keys() | set(landuse_keys))}
    try:
        gdf = ox.features_from_bbox(bbox=tuple(float(v) for v in bbox), tags=tags)
    except Exception as exc:
        raise AppshotInputError(f"OSM download for bbox {tuple(bbox)} failed: {exc}") from exc
    return extract_from_features(gdf, mapping, extent=bbox,
                                 source=f"Overpass API via osmnx {ox.__version__}, bbox {tuple(bbox)}",
                                 landuse_keys=landuse_keys)


# ---------------------------------------------------------------------------------------------
# onto the grid
# ---------------------------------------------------------------------------------------------

def _to_grid_crs(geoms: np.ndarray, grid: Grid, src: str = WGS84) -> np.ndarray:
    tr = Transformer.from_crs(src, grid.crs, always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def cell_index(x: np.ndarray, y: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, inside) of points in grid CRS metres; cells are closed west/north, open east/south."""
    cs = grid.cell_size_m
    col = np.floor((np.asarray(x) - grid.left) / cs).astype(np.int64)
    row = np.floor((grid.top - np.asarray(y)) / cs).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    return row, col, inside


def extent_coverage(extent: shapely.Geometry, grid: Grid, crs: str = WGS84) -> np.ndarray:
    """Share (0..1) of each cell inside ``extent`` (given in ``crs``; edges densified)."""
    xmin, ymin, xmax, ymax = extent.bounds
    dense = shapely.segmentize(extent, max(xmax - xmin, ymax - ymin) / 64.0 or 1.0)
    geom = _to_grid_crs(np.array([dense], dtype=object), grid, crs)
    _, r, c, a = intersect_with_grid(geom, grid)
    return coverage_from_pieces(r, c, a, grid)


def points_to_grid(points, grid: Grid, attributes: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Count per cell and attribute; returns (arrays, per-attribute counts by OSM type inside the grid)."""
    out = {a: np.zeros(grid.shape) for a in attributes}
    counts: dict = {}
    if len(points):
        tr = Transformer.from_crs(WGS84, grid.crs, always_xy=True)
        x, y = tr.transform(shapely.get_x(points.geometry.values), shapely.get_y(points.geometry.values))
        row, col, inside = cell_index(x, y, grid)
        attr = points["attribute"].to_numpy()
        otype = points["osm_type"].to_numpy()
    for a in attributes:
        if not len(points):
            counts[a] = {"n": 0, "w": 0, "r": 0, "outside_grid": 0}
            continue
        m = attr == a
        mi = m & inside
        np.add.at(out[a], (row[mi], col[mi]), 1.0)
        counts[a] = {t: int((mi & (otype == t)).sum()) for t in ("n", "w", "r")}
        counts[a]["outside_grid"] = int((m & ~inside).sum())
    return out, counts


def lines_to_grid(lines, grid: Grid, attributes: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Length (m) per cell and attribute, measured in the grid CRS; returns (arrays, totals)."""
    out = {a: np.zeros(grid.shape) for a in attributes}
    totals: dict = {a: {"length_in_grid_m": 0.0, "n_ways": 0} for a in attributes}
    if not len(lines):
        return out, totals
    geoms = _to_grid_crs(lines.geometry.values, grid)
    attr = lines["attribute"].to_numpy()
    box = shapely.box(*grid.bounds)
    clipped_len = shapely.length(shapely.intersection(geoms, box))
    # segments: each 2-point piece of every line, so candidate cells stay few per piece
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    same = idx[1:] == idx[:-1]
    seg_line = idx[:-1][same]
    seg = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    k, r, c = candidate_pairs(seg, grid)
    if k.size:
        cs = grid.cell_size_m
        x0 = grid.left + c * cs
        y1 = grid.top - r * cs
        length = shapely.length(shapely.intersection(seg[k], shapely.box(x0, y1 - cs, x0 + cs, y1)))
        seg_attr = attr[seg_line[k]]
    for a in attributes:
        m = attr == a
        totals[a] = {"length_in_grid_m": float(clipped_len[m].sum()), "n_ways": int((m & (clipped_len > 0)).sum())}
        if k.size:
            sel = seg_attr == a
            np.add.at(out[a], (r[sel], c[sel]), length[sel])
    return out, totals


def poi_layers(extract: OsmExtract, grid: Grid, coverage: np.ndarray | None = None) -> LayerResult:
    """The mapped PoI attributes of ``extract`` on ``grid`` (counts, and road lengths in metres).

    ``coverage`` defaults to the extract's extent on the grid. Metadata per attribute under
    ``layers``: kind, total_before (objects / metres found inside the grid), total_after (layer
    sum), counts by OSM type, units, method.
    """
    mapping = extract.mapping
    cov = extent_coverage(extract.extent, grid) if coverage is None else coverage
    count_attrs = [a for a in POI_ATTRIBUTES if a in mapping.points]
    line_attrs = [a for a in POI_ATTRIBUTES if a in mapping.lines]
    counts, by_type = points_to_grid(extract.points, grid, count_attrs)
    lengths, totals = lines_to_grid(extract.lines, grid, line_attrs)
    layers: dict[str, dict] = {}
    for a in count_attrs:
        t = by_type[a]
        layers[a] = {"kind": "count", "units": "objects per cell",
                     "method": "nodes at their location; ways and multipolygons once at a point on their surface",
                     "total_before": float(t["n"] + t["w"] + t["r"]), "total_after": float(counts[a].sum()),
                     "from_nodes": t["n"], "from_ways": t["w"], "from_relations": t["r"],
                     "outside_grid": t["outside_grid"], "rules": mapping.points[a]}
    for a in line_attrs:
        layers[a] = {"kind": "length", "units": "metres per cell",
                     "method": f"way lengths measured in the working CRS {grid.crs}, cut by the cells",
                     "total_before": totals[a]["length_in_grid_m"], "total_after": float(lengths[a].sum()),
                     "n_ways": totals[a]["n_ways"], "rules": mapping.lines[a]}
    meta = {"source": extract.source, "tag_mapping": mapping.source, "extent_source": extent_source_text(extract),
            "layers": layers, "missing": [a for a in POI_ATTRIBUTES if a not in layers]}
    return LayerResult(values={**counts, **lengths}, coverage=cov, metadata=meta)


def extent_source_text(extract: OsmExtract) -> str:
    return f"{extract.extent_source} {tuple(round(v, 6) for v in extract.extent.bounds)}"


def _residential(extract: OsmExtract, grid: Grid, polys: np.ndarray) -> np.ndarray:
    rules = extract.mapping.buildings
    b = extract.buildings
    kind = b["building"].to_numpy(dtype=object)
    res = np.isin(kind, rules.residential)
    maybe = np.isin(kind, rules.unspecified) & ~b["non_residential_tag"].to_numpy(dtype=bool)
    if maybe.any() and len(extract.landuse) and "landuse" in extract.landuse.columns:
        lu = extract.landuse
        nonres = lu["landuse"].isin(rules.non_residential_landuse).to_numpy()
        if nonres.any():
            zones = clean_geometries(_to_grid_crs(lu.geometry.values[nonres], grid))
            tree = shapely.STRtree(zones)
            pts = shapely.point_on_surface(polys[maybe])
            hit, _ = tree.query(pts, predicate="within")
            idx = np.flatnonzero(maybe)
            maybe[idx[np.unique(hit)]] = False
    return res | maybe


def population_from_osm_buildings(extract: OsmExtract, grid: Grid, total: float, boundary: shapely.Geometry,
                                  coverage: np.ndarray | None = None) -> LayerResult:
    """ESTIMATED inhabitants per cell: ``total`` spread over residential floor area.

    Residential buildings follow ``buildings`` of the tag mapping; floor area = footprint area in
    the grid CRS x levels (``building:levels`` or the documented defaults); only buildings whose
    point on surface lies inside ``boundary`` (grid CRS) count; a footprint straddling cells is
    split by area. The layer sums to ``total`` exactly.
    """
    if not total > 0:
        raise AppshotInputError(f"osm_buildings total must be positive, got {total}")
    rules = extract.mapping.buildings
    b = extract.buildings
    if not len(b):
        raise AppshotInputError(f"{extract.source}: no buildings inside the region; the OSM population "
                                f"estimate needs building footprints")
    polys = clean_geometries(_to_grid_crs(b.geometry.values, grid))
    residential = _residential(extract, grid, polys)
    inside = shapely.within(shapely.point_on_surface(polys), boundary)
    kind = b["building"].to_numpy(dtype=object)
    tag_levels = b["levels"].to_numpy(dtype=float)
    by_type = np.array([rules.levels.by_type.get(k, rules.levels.default) for k in kind], dtype=float)
    levels = np.clip(np.where(np.isfinite(tag_levels), tag_levels, by_type), 1.0, rules.levels.max_levels)
    use = residential & inside & (shapely.area(polys) > 0)
    if not use.any():
        raise AppshotInputError(f"{extract.source}: none of the {len(b)} buildings read is residential and "
                                f"inside the region boundary; cannot spread the population total")
    import geopandas as gpd

    floor = gpd.GeoDataFrame({"floor": shapely.area(polys[use]) * levels[use]}, geometry=polys[use], crs=grid.crs)
    res = polygons_to_grid(floor, ["floor"], grid, how="sum", source=f"{extract.source} buildings")
    floor_cells = res.values["floor"]
    people = total * floor_cells / floor_cells.sum()
    cov = extent_coverage(extract.extent, grid) if coverage is None else coverage
    meta = {
        "source": extract.source, "status": "estimated",
        "label": "ESTIMATED from OpenStreetMap residential floor area, scaled to a user-given total (not a census)",
        "method": "total x residential floor area of the cell / residential floor area of the region; floor "
                  f"area = footprint area in {grid.crs} x levels",
        "units": "inhabitants per cell", "total_before": float(total), "total_after": float(people.sum()),
        "n_buildings": int(len(b)), "n_residential_in_region": int(use.sum()),
        "levels_from_tag_share": float(np.isfinite(tag_levels[use]).mean()),
        "default_levels": rules.levels.default, "floor_area_m2": float(floor_cells.sum()),
        "people_per_100m2_floor": float(100.0 * total / floor_cells.sum()), "tag_mapping": extract.mapping.source,
        "warnings": [],
    }
    return LayerResult(values={"population": people}, coverage=cov, metadata=meta)


def landuse_from_osm(extract: OsmExtract, grid: Grid, mapping=None, coverage: np.ndarray | None = None) -> LayerResult:
    """The 12 land-use fractions from the extract's landuse/natural/leisure/aeroway polygons
    (``landuse.landuse_from_osm_polygons``); coverage = the extract's extent (a cell with no
    polygon inside the extent is unmapped land, not missing data)."""
    import warnings

    from appshot_model.context.landuse import landuse_from_osm_polygons
    from appshot_model.core.names import LANDUSE_ATTRIBUTES

    cov = extent_coverage(extract.extent, grid) if coverage is None else coverage
    if not len(extract.landuse):
        msg = f"{extract.source}: no landuse/natural/leisure/aeroway polygons in the region; land use is 0"
        warnings.warn(msg, UserWarning, stacklevel=2)
        return LayerResult(values={a: np.zeros(grid.shape) for a in LANDUSE_ATTRIBUTES}, coverage=cov,
                           metadata={"source": extract.source, "warnings": [msg], "mapped_area_share": 0.0,
                                     "method": "OSM land-use polygons (none found)",
                                     "units": "fraction of the cell's area (0..1)"})
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 in a branch np.where discards
        res = landuse_from_osm_polygons(extract.landuse, grid, mapping=mapping)
    meta = dict(res.metadata)
    # the polygons' own coverage is mapped land, not data extent: say so instead of "source covers"
    meta["warnings"] = [w for w in meta.get("warnings", []) if "source covers" not in w]
    meta.pop("covered_share", None)
    meta["source"] = extract.source
    meta["polygons"] = "OpenStreetMap " + "/".join(meta.get("tag_keys", LANDUSE_KEYS)) + " polygons"
    meta["mapped_area_share"] = float(res.coverage.mean())
    return LayerResult(values=res.values, coverage=cov, metadata=meta)
