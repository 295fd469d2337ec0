"""Land use: fraction of each cell's area in each of the 12 AppShot land-use classes.

Sources: polygon layers with a class code (Urban Atlas, CORINE, national schemes), rasters of
class codes, or OpenStreetMap landuse/natural/leisure polygons. Codes are mapped to
``names.LANDUSE_ATTRIBUTES`` by a scheme from ``landuse_schemes.yaml`` or a user YAML.

Overlaps: a spot of land counts once. Where polygons overlap, the SMALLER polygon (by its whole
area) keeps the overlap and the larger one loses it (a park mapped inside a residential area
stays a park); equal areas: the earlier row wins. So each cell's fractions sum to at most 1.
Every polygon takes part, including those of classes outside the 12, so an unmapped polygon
still removes the overlap from a larger mapped one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
import yaml

from appshot_model.context.layers import LayerResult
from appshot_model.context.regrid import clean_geometries, gdf_in_grid_crs, intersect_with_grid, raster_classes_to_grid
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import LANDUSE_ATTRIBUTES

SCHEMES_FILE = Path(__file__).with_name("landuse_schemes.yaml")
#: Tag keys read from OSM polygons, in priority order (the YAML's order).
OSM_KEYS_DEFAULT = ("leisure", "aeroway", "landuse", "natural")
_MIN_OVERLAP_M2 = 1e-3


# ---------------------------------------------------------------------------------------------
# schemes
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _builtin() -> dict:
    with open(SCHEMES_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def normalise_code(code) -> str:
    """Class code as a string: ints and integer-valued floats without decimals, strings stripped."""
    if isinstance(code, (int, np.integer)):
        return str(int(code))
    if isinstance(code, (float, np.floating)):
        return str(int(code)) if float(code).is_integer() else str(code)
    s = str(code).strip()
    try:
        f = float(s)
        return str(int(f)) if f.is_integer() and "." in s else s
    except ValueError:
        return s


def _check_mapping(codes: Mapping, where: str) -> dict[str, str | None]:
    out = {}
    for code, attr in (codes or {}).items():
        if attr is not None and attr not in LANDUSE_ATTRIBUTES:
            raise AppshotInputError(f"{where}: code {code!r} maps to {attr!r}; expected one of "
                                    f"{list(LANDUSE_ATTRIBUTES)} or null (known, not retained)")
        out[normalise_code(code)] = attr
    return out


def scheme_names() -> list[str]:
    """Names of the built-in code schemes."""
    return list(_builtin()["schemes"])


def load_scheme(scheme: str | os.PathLike | Mapping) -> tuple[str, dict[str, str | None]]:
    """(name, code -> attribute | None) for a built-in scheme name, a user YAML path or a dict.

    A user YAML holds ``name`` (optional) and ``codes: {code: attribute | null}``.
    """
    if isinstance(scheme, Mapping):
        codes = scheme.get("codes", scheme)
        return str(scheme.get("name", "user mapping")), _check_mapping(codes, "user mapping")
    builtin = _builtin()["schemes"]
    if isinstance(scheme, str) and scheme in builtin:
        return scheme, _check_mapping(builtin[scheme]["codes"], f"{SCHEMES_FILE} scheme {scheme!r}")
    path = Path(scheme)
    if not path.exists():
        raise AppshotInputError(f"land-use scheme {scheme!r} is neither a built-in scheme "
                                f"{list(builtin)} nor an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AppshotInputError(f"land-use mapping {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("codes"), dict):
        raise AppshotInputError(f"land-use mapping {path}: expected a mapping with a 'codes' "
                                f"dictionary {{code: attribute | null}}")
    return str(data.get("name", path.stem)), _check_mapping(data["codes"], str(path))


def osm_mapping(mapping: str | os.PathLike | Mapping | None = None) -> dict[str, dict[str, str | None]]:
    """OSM tag key -> value -> attribute | None (built-in, or a user YAML / dict with the same shape)."""
    if mapping is None:
        data = _builtin()["osm"]
        where = f"{SCHEMES_FILE} osm"
    elif isinstance(mapping, Mapping):
        data, where = mapping, "user OSM mapping"
    else:
        path = Path(mapping)
        if not path.exists():
            raise AppshotInputError(f"OSM land-use mapping {path} does not exist")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data, where = loaded.get("osm", loaded), str(path)
    out = {}
    for key, values in data.items():
        if not isinstance(values, Mapping):
            raise AppshotInputError(f"{where}: tag key {key!r} must map tag values to attributes")
        out[str(key)] = _check_mapping(values, f"{where} {key}")
    return out


# ---------------------------------------------------------------------------------------------
# core: exact, overlap-free class fractions from polygons
# ---------------------------------------------------------------------------------------------

def _resolve_overlaps(pieces: np.ndarray, rank: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, float]:
    """Remove from each piece the parts covered by pieces of lower ``rank`` (smaller polygons).

    Only pieces of the same ``cell`` can overlap. Returns the new pieces and the removed area (m2).
    """
    tree = shapely.STRtree(pieces)
    a, b = tree.query(pieces, predicate="intersects")
    sel = (a != b) & (cell[a] == cell[b])
    a, b = a[sel], b[sel]
    loser_is_a = rank[a] > rank[b]
    loser, winner = a[loser_is_a], b[loser_is_a]
    if loser.size == 0:
        return pieces, 0.0
    inter = shapely.area(shapely.intersection(pieces[loser], pieces[winner]))
    keep = inter > _MIN_OVERLAP_M2
    loser, winner = loser[keep], winner[keep]
    if loser.size == 0:
        return pieces, 0.0
    out = pieces.copy()
    order = np.argsort(loser, kind="stable")
    loser, winner = loser[order], winner[order]
    bounds = np.flatnonzero(np.diff(loser)) + 1
    removed = 0.0
    for group_l, group_w in zip(np.split(loser, bounds), np.split(winner, bounds)):
        j = group_l[0]
        cover = shapely.union_all(pieces[group_w])
        new = shapely.difference(pieces[j], cover)
        removed += shapely.area(pieces[j]) - shapely.area(new)
        out[j] = new
    return out, float(removed)


def class_fractions_from_polygons(geoms: np.ndarray, classes: np.ndarray, grid: Grid) -> tuple[
        dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Overlap-free area of each polygon in each cell.

    ``geoms`` in the grid CRS; ``classes`` an object array (attribute name or None). Returns
    ``(fractions per attribute, coverage, piece polygon index, piece area m2, piece cell flat
    index, overlap area removed m2)``.
    """
    geoms = clean_geometries(geoms)
    poly_area = shapely.area(geoms)
    i, r, c, _, pieces = intersect_with_grid(geoms, grid, return_pieces=True)
    cs = grid.cell_size_m
    # rank: smaller whole polygon first, ties by row order
    order = np.lexsort((np.arange(len(geoms)), poly_area))
    poly_rank = np.empty(len(geoms), dtype=np.int64)
    poly_rank[order] = np.arange(len(geoms))
    removed = 0.0
    if pieces.size:
        pieces, removed = _resolve_overlaps(pieces, poly_rank[i], r * grid.width + c)
    area = shapely.area(pieces)
    cell_area = cs ** 2
    coverage = np.zeros(grid.shape)
    np.add.at(coverage, (r, c), area / cell_area)
    fractions = {}
    cls = classes[i]
    for attr in LANDUSE_ATTRIBUTES:
        m = cls == attr
        arr = np.zeros(grid.shape)
        np.add.at(arr, (r[m], c[m]), area[m] / cell_area)
        fractions[attr] = arr
    return fractions, np.clip(coverage, 0.0, 1.0), i, area, r * grid.width + c, removed


def _finish(fractions, coverage, meta, grid: Grid, unknown: dict[str, float], where: str) -> LayerResult:
    total = sum(fractions.values())
    over = total > 1.0
    if over.any():  # only float round-off can get here; keep the invariant exactly
        for attr in fractions:
            fractions[attr] = np.where(over, fractions[attr] / total, fractions[attr])
    meta.setdefault("warnings", [])
    if unknown:
        listed = ", ".join(f"{k} ({v / 1e4:.3g} ha)" for k, v in sorted(unknown.items(), key=lambda kv: -kv[1]))
        msg = f"{where}: unknown land-use code(s) counted as unmapped: {listed}"
        meta["warnings"].append(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    meta["unknown_codes"] = {k: float(v) for k, v in unknown.items()}
    meta["covered_share"] = float((coverage > 0).mean())
    meta["class_share_of_region"] = {a: float(v.mean()) for a, v in fractions.items()}
    meta["units"] = "fraction of the cell's area (0..1)"
    if meta["covered_share"] < 1.0:
        meta["warnings"].append(f"source covers {meta['covered_share']:.1%} of the region's cells; "
                                f"uncovered cells hold 0 with coverage 0")
    return LayerResult(values=fractions, coverage=coverage, metadata=meta)


def _map_codes(codes: np.ndarray, mapping: dict[str, str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(attribute or None per code, known flag per code)."""
    norm = np.array([normalise_code(c) for c in codes], dtype=object)
    known = np.array([c in mapping for c in norm], dtype=bool)
    classes = np.array([mapping.get(c) for c in norm], dtype=object)
    return classes, known, norm


# ---------------------------------------------------------------------------------------------
# public sources
# ---------------------------------------------------------------------------------------------

def landuse_from_polygons(source, code_column: str, grid: Grid, scheme: str | os.PathLike | Mapping = "urban_atlas",
                          layer: str | None = None) -> LayerResult:
    """Fractions of the 12 land-use classes from polygons with a class code.

    ``source``: a GeoDataFrame or a vector file path (``layer`` for multi-layer files);
    ``code_column``: the class code column (e.g. ``CODE_18`` for CORINE, ``code_2018`` for Urban
    Atlas, ``LUOKKA`` for the Finnish topographic database); ``scheme``: built-in name
    ("urban_atlas", "corine", "fi_nls_topo"), a user YAML path, or a dict {code: attribute|None}.
    Values: 12 arrays [H, W] of area fractions; coverage: share of the cell under any polygon.
    Unknown codes warn (Python + metadata) and count as unmapped.
    """
    import geopandas as gpd

    name, mapping = load_scheme(scheme)
    where = str(source) if not isinstance(source, gpd.GeoDataFrame) else "land-use polygons"
    if isinstance(source, gpd.GeoDataFrame):
        gdf = source
    else:
        from appshot_model.context.population import read_vector

        gdf, _ = read_vector(source, grid, layer)
    if code_column not in gdf.columns:
        raise AppshotInputError(f"{where}: class code column {code_column!r} not found; available columns: "
                                f"{[c for c in gdf.columns if c != gdf.geometry.name]}")
    gdf = gdf_in_grid_crs(gdf, grid, where)
    gdf = gdf[gdf.geometry.notna() & gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    classes, known, norm = _map_codes(gdf[code_column].to_numpy(), mapping)
    fractions, coverage, pidx, area, _, removed = class_fractions_from_polygons(gdf.geometry.values, classes, grid)
    unknown: dict[str, float] = {}
    for code, a in zip(norm[pidx][~known[pidx]], area[~known[pidx]]):
        unknown[code] = unknown.get(code, 0.0) + float(a)
    mapped_area = float(area[np.array([c is not None for c in classes[pidx]], dtype=bool)].sum()) if area.size else 0.0
    meta = {"source": where, "scheme": name, "code_column": code_column,
            "method": "exact polygon overlay; overlaps go to the smaller polygon",
            "n_polygons": int(len(gdf)), "overlap_removed_m2": removed,
            "mapped_area_m2": mapped_area, "unmapped_area_m2": float(area.sum()) - mapped_area}
    return _finish(fractions, coverage, meta, grid, unknown, where)


def landuse_from_raster(path: str | os.PathLike, grid: Grid, scheme: str | os.PathLike | Mapping = "corine",
                        band: int = 1) -> LayerResult:
    """Fractions of the 12 land-use classes from a raster of class codes (any CRS).

    Class fractions per code come from ``regrid.raster_classes_to_grid`` (nearest-neighbour
    sub-cells) and are summed per attribute through ``scheme``. Unknown codes warn.
    """
    name, mapping = load_scheme(scheme)
    res = raster_classes_to_grid(path, grid, codes=None, band=band)
    fractions = {a: np.zeros(grid.shape) for a in LANDUSE_ATTRIBUTES}
    unknown: dict[str, float] = {}
    cell_area = grid.cell_size_m ** 2
    for code, frac in res.values.items():
        c = normalise_code(code)
        if c not in mapping:
            unknown[c] = float(frac.sum() * cell_area)
        elif mapping[c] is not None:
            fractions[mapping[c]] += frac
    meta = dict(res.metadata)
    meta.update(scheme=name, method=meta["method"] + ", codes mapped to the 12 classes")
    return _finish(fractions, res.coverage, meta, grid, unknown, str(path))


def osm_classes(gdf, mapping: Mapping[str, Mapping[str, str | None]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Class per OSM polygon: (attribute or None, tag 'key=value' that decided it or '', unknown tags).

    The first key of the mapping's order whose value is listed decides; a polygon whose tags are
    all unlisted is unmapped and its first present tag is reported as unknown. ``mapping`` is
    the resolved table from :func:`osm_mapping`.
    """
    keys = [k for k in mapping if k in gdf.columns]
    n = len(gdf)
    classes = np.full(n, None, dtype=object)
    decided = np.full(n, "", dtype=object)
    first_tag = np.full(n, "", dtype=object)
    for key in keys:
        vals = gdf[key].to_numpy(dtype=object)
        has = np.array([isinstance(v, str) and v != "" for v in vals], dtype=bool)
        undecided = decided == ""
        listed = np.array([isinstance(v, str) and v in mapping[key] for v in vals], dtype=bool)
        take = undecided & listed
        classes[take] = [mapping[key][v] for v in vals[take]]
        decided[take] = [f"{key}={v}" for v in vals[take]]
        unseen = (first_tag == "") & has
        first_tag[unseen] = [f"{key}={v}" for v in vals[unseen]]
    unknown_tags = (decided == "") & (first_tag != "")
    return classes, np.where(decided != "", decided, first_tag), list(np.flatnonzero(unknown_tags))


def landuse_from_osm_polygons(gdf, grid: Grid, mapping: str | os.PathLike | Mapping | None = None) -> LayerResult:
    """Fractions of the 12 land-use classes from OSM polygons with tag columns.

    ``gdf``: polygons (any CRS, typically EPSG:4326) with some of the columns ``leisure``,
    ``aeroway``, ``landuse``, ``natural`` (tag values as strings, missing as None/NaN). Rows with
    none of these tags, and non-polygon geometries, are ignored. ``mapping``: None for the
    built-in table in ``landuse_schemes.yaml`` (key ``osm``), or a user YAML / dict of the same
    shape. Unlisted tag values count as unmapped and are reported in one warning.
    """
    tags = osm_mapping(mapping)
    if gdf.crs is None:
        raise AppshotInputError("OSM land-use polygons have no CRS; expected EPSG:4326 (or any declared CRS)")
    present = [k for k in tags if k in gdf.columns]
    meta: dict = {"source": "OpenStreetMap landuse/natural/leisure polygons", "tag_keys": present,
                  "method": "exact polygon overlay; overlaps go to the smaller polygon"}
    if not present:
        raise AppshotInputError(f"OSM land-use polygons have none of the tag columns {list(tags)}; "
                                f"columns given: {[c for c in gdf.columns if c != gdf.geometry.name]}")
    gdf = gdf_in_grid_crs(gdf, grid, "OSM land-use polygons")
    polys = gdf.geometry.notna() & gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    gdf = gdf[polys]
    classes, tag, unknown_rows = osm_classes(gdf, tags)
    tagged = tag != ""
    gdf, classes, tag = gdf[tagged], classes[tagged], tag[tagged]
    unknown_mask = np.zeros(len(tagged), dtype=bool)
    unknown_mask[unknown_rows] = True
    unknown_mask = unknown_mask[tagged]
    meta["n_polygons"] = int(len(gdf))
    fractions, coverage, pidx, area, _, removed = class_fractions_from_polygons(gdf.geometry.values, classes, grid)
    unknown: dict[str, float] = {}
    for t, a in zip(tag[pidx][unknown_mask[pidx]], area[unknown_mask[pidx]]):
        unknown[t] = unknown.get(t, 0.0) + float(a)
    meta["overlap_removed_m2"] = removed
    return _finish(fractions, coverage, meta, grid, unknown, "OSM land-use polygons")
