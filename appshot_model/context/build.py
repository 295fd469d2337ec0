"""The context cube of a real region: every source of a region file on its working grid.

``build_context_cube(region)`` returns a float32 cube ``[attribute, y, x]`` over the 27
``names.ATTRIBUTES`` in that order (the same format as the demo world's context cube) plus a
metadata dict. Besides the values the cube carries:

- coordinate ``coverage`` ``[attribute, y, x]``: share (0..1) of each cell inside the extent of
  the source that produced the layer (0 everywhere for a layer without any source);
- coordinate ``region_fraction`` ``[y, x]``: share of each cell inside the region boundary;
- attributes ``label``, ``region``, ``missing_layers`` / ``estimated_layers`` (comma-separated),
  ``covered_share`` (per attribute, share of cells with any coverage) and ``sources`` (JSON).

Cells a source does not reach hold 0 (never NaN). Layers without a source are all 0, have
coverage 0 and are listed as missing; the OSM building estimate of population is listed as
estimated. The metadata dict has, per attribute, ``source``, ``method``, ``status``
(measured / estimated / missing), ``units``, ``total_before`` / ``total_after``,
``covered_share``, ``covered_area_share`` and ``warnings``; plus ``sources`` (for release cards),
``timings_s`` per step and the grid.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from appshot_model.context.layers import LayerResult
from appshot_model.context.region import Region, load_region
from appshot_model.core.cube import check_context, make_context_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import ATTRIBUTES, LANDUSE_ATTRIBUTES, POI_ATTRIBUTES, ROAD_ATTRIBUTES

ProgressArg = bool | Callable[[str, int, int], None] | None

#: Units of each attribute in a real-context cube.
UNITS: dict[str, str] = {
    "population": "inhabitants per cell",
    **{a: "fraction of the cell's area (0..1)" for a in LANDUSE_ATTRIBUTES},
    **{a: "objects per cell" for a in POI_ATTRIBUTES if a not in ROAD_ATTRIBUTES},
    **{a: "metres per cell" for a in ROAD_ATTRIBUTES},
}
CUBE_LABEL = "real context"


class _Steps:
    """Progress reporting and per-step timing."""

    def __init__(self, names: Sequence[str], progress: ProgressArg):
        self.names = list(names)
        self.timings: dict[str, float] = {}
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(self.names), desc="context", unit="step")

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        index = self.names.index(name) if name in self.names else len(self.timings)
        if self.callback:
            self.callback(name, index, len(self.names))
        if self.bar is not None:
            self.bar.set_description(f"context: {name}")
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = round(time.perf_counter() - started, 3)
            if self.bar is not None:
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def grid_lonlat_bounds(grid: Grid) -> tuple[float, float, float, float]:
    """(west, south, east, north) in EPSG:4326 of the whole grid (edges densified)."""
    from pyproj import Transformer

    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    return tuple(float(v) for v in tr.transform_bounds(*grid.bounds, densify_pts=41))


def _plan(region: Region) -> list[str]:
    s = region.sources
    steps = []
    if s.osm is not None:
        steps += ["osm_read", "osm_pois"]
    if s.population is not None:
        steps.append("population")
    if s.landuse is not None or s.osm is not None:
        steps.append("landuse")
    if s.pregridded is not None:
        steps.append("pregridded")
    return steps + ["assemble"]


def _licence(cfg, default: str) -> str:
    return getattr(cfg, "licence", None) or default


class _Layers:
    """attribute -> (values, coverage, metadata); each attribute from one source only."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.items: dict[str, tuple[np.ndarray, np.ndarray, dict]] = {}

    def put(self, attr: str, values: np.ndarray, coverage: np.ndarray, meta: dict) -> None:
        if attr in self.items:
            raise AppshotInputError(f"attribute {attr!r} is given by two sources: "
                                    f"{self.items[attr][2].get('source')} and {meta.get('source')}; "
                                    f"keep one of them in the region file")
        values = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        coverage = np.clip(np.nan_to_num(np.asarray(coverage, dtype=float)), 0.0, 1.0)
        meta = dict(meta)
        meta.setdefault("units", UNITS[attr])
        meta.setdefault("status", "measured")
        meta.setdefault("warnings", [])
        meta["total_after"] = float(values.sum())
        meta["covered_share"] = float((coverage > 0).mean())
        meta["covered_area_share"] = float(coverage.mean())
        if meta["covered_share"] < 1.0 and not any("covers" in w for w in meta["warnings"]):
            meta["warnings"] = [*meta["warnings"],
                                f"source covers {meta['covered_share']:.1%} of the cells; cells outside its "
                                f"extent hold 0 and have coverage 0"]
        self.items[attr] = (values, coverage, meta)

    def put_result(self, res: LayerResult, meta: dict, per_attribute: dict[str, dict] | None = None) -> None:
        for attr, values in res.values.items():
            extra = (per_attribute or {}).get(attr, {})
            self.put(attr, values, res.coverage, {**meta, **extra})


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------

def _osm(region: Region, grid: Grid, steps: _Steps, layers: _Layers, sources: list[dict]):
    from appshot_model.context.osm import (OSM_ATTRIBUTION, OSM_LICENCE, download_osm, extent_coverage,
                                           extent_source_text, load_tag_mapping, poi_layers, read_osm)

    cfg = region.sources.osm
    mapping = load_tag_mapping(cfg.tags)
    bbox = grid_lonlat_bounds(grid)
    if cfg.download:
        extract = steps.run("osm_read", lambda: download_osm(bbox, mapping))
    else:
        extract = steps.run("osm_read", lambda: read_osm(cfg.path, bbox=bbox, mapping=mapping, extent=cfg.extent))
    coverage = extent_coverage(extract.extent, grid)
    if not (coverage > 0).any():
        raise AppshotInputError(
            f"OSM source {extract.source} ({extent_source_text(extract)}) does not intersect the region "
            f"{region.name} (grid bounds {tuple(round(v, 5) for v in bbox)} in EPSG:4326)")
    res = steps.run("osm_pois", lambda: poi_layers(extract, grid, coverage))
    base = {"source": extract.source, "tag_mapping": mapping.source, "extent": extent_source_text(extract)}
    for attr, meta in res.metadata["layers"].items():
        layers.put(attr, res.values[attr], coverage, {**base, **meta})
    sources.append({"name": "OpenStreetMap", "path": extract.source, "licence": _licence(cfg, OSM_LICENCE),
                    "attribution": OSM_ATTRIBUTION,
                    "layers": "PoI counts and road lengths"
                              + (", land use" if region.sources.landuse is None or region.sources.landuse.osm else "")
                              + (", population estimate" if region.sources.population is not None
                                 and region.sources.population.osm_buildings is not None else ""),
                    "timestamp": str(extract.info.get("timestamp", ""))})
    return extract, coverage


def _population(region: Region, grid: Grid, steps: _Steps, layers: _Layers, sources: list[dict], extract, osm_cov):
    from appshot_model.context.osm import population_from_osm_buildings
    from appshot_model.context.population import population_from_raster, population_from_vector

    cfg = region.sources.population
    if cfg.raster is not None:
        res = steps.run("population", lambda: population_from_raster(cfg.raster, grid, band=cfg.band, method=cfg.method))
        path = cfg.raster
    elif cfg.vector is not None:
        res = steps.run("population", lambda: population_from_vector(cfg.vector, cfg.column, grid, layer=cfg.layer,
                                                                     mask_values=cfg.mask_values))
        path = cfg.vector
    else:
        boundary = region.boundary_in(grid.crs)
        cov = np.minimum(osm_cov, region.region_fraction(grid))
        res = steps.run("population", lambda: population_from_osm_buildings(
            extract, grid, cfg.osm_buildings.total, boundary, coverage=cov))
        res.metadata["total_reference"] = cfg.osm_buildings.reference or "not given"
        path = extract.source
    meta = {k: v for k, v in res.metadata.items() if k not in ("covered_share", "covered_area_share")}
    meta.setdefault("status", "measured")
    layers.put("population", res.values["population"], res.coverage, meta)
    if cfg.osm_buildings is None:
        sources.append({"name": "population", "path": str(path), "licence": _licence(cfg, "see the source's terms")})


def _landuse(region: Region, grid: Grid, steps: _Steps, layers: _Layers, sources: list[dict], extract, osm_cov):
    from appshot_model.context.landuse import landuse_from_polygons, landuse_from_raster
    from appshot_model.context.osm import landuse_from_osm

    cfg = region.sources.landuse
    if cfg is None or cfg.osm:
        mapping = cfg.mapping if cfg is not None else None
        res = steps.run("landuse", lambda: landuse_from_osm(extract, grid, mapping=mapping, coverage=osm_cov))
        fallback = cfg is None
        meta = dict(res.metadata)
        meta["method"] = ("OSM fallback (no land-use source in the region file): " if fallback else "") + \
            meta.get("method", "")
    else:
        scheme = cfg.resolved_scheme(region.base_dir)
        if cfg.polygons is not None:
            res = steps.run("landuse", lambda: landuse_from_polygons(cfg.polygons, cfg.code_column, grid, scheme=scheme,
                                                                     layer=cfg.layer))
            path = cfg.polygons
        else:
            res = steps.run("landuse", lambda: landuse_from_raster(cfg.raster, grid, scheme=scheme, band=cfg.band))
            path = cfg.raster
        if not (res.coverage > 0).any():
            raise AppshotInputError(f"land-use source {path} has no data inside the region {region.name}")
        meta = dict(res.metadata)
        sources.append({"name": "land use", "path": str(path), "licence": _licence(cfg, "see the source's terms")})
    meta.pop("covered_share", None)
    meta["total_before"] = None  # area fractions: overlaps are resolved, nothing is conserved as such
    shares = meta.pop("class_share_of_region", {})
    per = {a: {"region_share": shares.get(a)} for a in LANDUSE_ATTRIBUTES}
    layers.put_result(res, meta, per)


def _pregridded(region: Region, grid: Grid, steps: _Steps, layers: _Layers, sources: list[dict]):
    from appshot_model.context.pregridded import milan_context, spectragan_context

    cfg = region.sources.pregridded
    if cfg.spectragan is not None:
        res = steps.run("pregridded", lambda: spectragan_context(cfg.spectragan, grid, columns=cfg.columns, strict=True))
        path = cfg.spectragan
    else:
        res = steps.run("pregridded", lambda: milan_context(cfg.milan.grid, cfg.milan.features, grid,
                                                            columns=cfg.columns, strict=True))
        path = cfg.milan.features
    meta = {k: v for k, v in res.metadata.items() if k not in ("totals", "covered_share", "covered_area_share",
                                                                "total_before", "total_after")}
    per = {a: {"total_before": t.get("total_before"), "total_source": t.get("total_source")}
           for a, t in res.metadata.get("totals", {}).items()}
    layers.put_result(res, meta, per)
    sources.append({"name": "pre-gridded context", "path": str(path), "licence": _licence(cfg, "see the source's terms")})


# ---------------------------------------------------------------------------------------------
# the cube
# ---------------------------------------------------------------------------------------------

def build_context_cube(region: Region | str | os.PathLike, progress: ProgressArg = None) -> tuple[xr.DataArray, dict]:
    """Context cube ``[attribute, y, x]`` (27 attributes, names order) and metadata of a region.

    ``region``: a :class:`Region` or the path of a region YAML. ``progress``: ``True`` for a
    progress bar, or a callable ``(step, index, total)``.
    """
    if not isinstance(region, Region):
        region = load_region(region)
    s = region.sources
    if s.osm is None and s.population is None and s.landuse is None and s.pregridded is None:
        raise AppshotInputError(f"region {region.name}: no context sources (sources.osm / population / landuse / "
                                f"pregridded); at least one is needed")
    grid = region.grid()
    steps = _Steps(_plan(region), progress)
    layers = _Layers(grid)
    sources: list[dict] = []
    extract, osm_cov = None, None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if s.osm is not None:
                extract, osm_cov = _osm(region, grid, steps, layers, sources)
            if s.population is not None:
                _population(region, grid, steps, layers, sources, extract, osm_cov)
            if s.landuse is not None or s.osm is not None:
                _landuse(region, grid, steps, layers, sources, extract, osm_cov)
            if s.pregridded is not None:
                _pregridded(region, grid, steps, layers, sources)
        cube, metadata = steps.run("assemble", lambda: _assemble(region, grid, layers, sources))
    finally:
        steps.close()
    # re-emit the sources' warnings (unknown codes, clipped negatives, ...) for the caller
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    metadata["python_warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    metadata["timings_s"] = dict(steps.timings)
    return cube, metadata


def _assemble(region: Region, grid: Grid, layers: _Layers, sources: list[dict]) -> tuple[xr.DataArray, dict]:
    values = np.zeros((len(ATTRIBUTES), grid.height, grid.width), dtype=np.float32)
    coverage = np.zeros_like(values)
    per_layer: dict[str, dict] = {}
    for k, attr in enumerate(ATTRIBUTES):
        if attr in layers.items:
            v, c, meta = layers.items[attr]
            values[k], coverage[k] = v, c
            per_layer[attr] = meta
        else:
            per_layer[attr] = {"source": None, "status": "missing", "method": "no source in the region file",
                               "units": UNITS[attr], "total_before": None, "total_after": 0.0,
                               "covered_share": 0.0, "covered_area_share": 0.0,
                               "warnings": ["no source for this layer: all cells hold 0 with coverage 0"]}
    missing = [a for a in ATTRIBUTES if per_layer[a]["status"] == "missing"]
    estimated = [a for a in ATTRIBUTES if per_layer[a]["status"] == "estimated"]
    fraction = region.region_fraction(grid)
    clean_sources = [{k: str(v) for k, v in src.items() if v not in (None, "")} for src in sources]
    cube = make_context_cube(
        values, ATTRIBUTES, grid, label=CUBE_LABEL, region=str(region.name),
        description=region.description or f"real context of {region.name}",
        missing_layers=",".join(missing), estimated_layers=",".join(estimated),
        covered_share=[float(per_layer[a]["covered_share"]) for a in ATTRIBUTES],
        sources=json.dumps(clean_sources, sort_keys=True),
        region_file=str(region.file or ""))
    cube = cube.assign_coords(coverage=(("attribute", "y", "x"), coverage),
                              region_fraction=(("y", "x"), fraction.astype(np.float32)))
    cube.coverage.attrs.update(long_name="share of the cell inside the extent of the layer's source", units="1")
    cube.region_fraction.attrs.update(long_name="share of the cell inside the region boundary", units="1")
    check_context(cube, f"context of region {region.name}")
    metadata = {"region": region.name, "label": CUBE_LABEL, "grid": grid.to_dict(),
                "boundary": region.describe()["boundary"], "region_file": str(region.file or ""),
                "layers": _jsonable(per_layer), "sources": clean_sources,
                "missing_layers": missing, "estimated_layers": estimated,
                "region_fraction_mean": float(fraction.mean())}
    return cube, metadata


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


# ---------------------------------------------------------------------------------------------
# using the cube
# ---------------------------------------------------------------------------------------------

def cube_layer_status(cube: xr.DataArray) -> dict[str, str]:
    """attribute -> measured / estimated / missing, from the cube's attributes."""
    missing = set(filter(None, str(cube.attrs.get("missing_layers", "")).split(",")))
    estimated = set(filter(None, str(cube.attrs.get("estimated_layers", "")).split(",")))
    return {str(a): "missing" if a in missing else "estimated" if a in estimated else "measured"
            for a in cube.attribute.values}


def check_model_attributes(cube: xr.DataArray, attributes: Sequence[str], model: str = "the model",
                           allow_missing_layers: bool = False) -> xr.DataArray:
    """The cube restricted to ``attributes`` in that order.

    Errors list every attribute the model needs that the cube lacks, and (unless
    ``allow_missing_layers``) every needed layer the region has no source for (all zeros).
    """
    have = [str(a) for a in cube.attribute.values]
    absent = [a for a in attributes if a not in have]
    if absent:
        raise AppshotInputError(f"{model} needs attributes {absent} that the context cube lacks (it has {have})")
    status = cube_layer_status(cube)
    empty = [a for a in attributes if status.get(a) == "missing"]
    if empty and not allow_missing_layers:
        raise AppshotInputError(
            f"{model} needs layers {empty} but region {cube.attrs.get('region', '?')} has no source for them "
            f"(they are all zeros); add sources to the region file or allow missing layers explicitly")
    return cube.sel(attribute=list(attributes))


def layer_pngs(cube: xr.DataArray) -> dict[str, bytes]:
    """One north-up PNG per attribute (title: attribute, status and covered share)."""
    from appshot_model.core.plots import single_map_png

    status = cube_layer_status(cube)
    shares = list(cube.attrs.get("covered_share", [])) or [None] * cube.sizes["attribute"]
    region = cube.attrs.get("region", "")
    out = {}
    for attr, share in zip(cube.attribute.values, shares):
        attr = str(attr)
        cov = "" if share is None else f", covered {float(share):.0%}"
        out[attr] = single_map_png(cube.sel(attribute=attr).values, f"{region}: {attr}\n({status[attr]}{cov})",
                                   UNITS.get(attr, ""))
    return out


def overview_png(cube: xr.DataArray, shown: Sequence[str] = ("population", "landuse_medium_dense_urban",
                                                             "landuse_green_urban", "poi_shop",
                                                             "poi_public_transport", "poi_secondary_roads")) -> bytes:
    """A row of a few layers (each with its own colour scale)."""
    from appshot_model.core.plots import map_grid_png

    shown = [a for a in shown if a in cube.attribute.values]
    return map_grid_png({"real context": [cube.sel(attribute=a).values for a in shown]}, shown,
                        title=f"{cube.attrs.get('region', '')}: {CUBE_LABEL}", shared_scale_per_column=False)


def write_layer_pngs(cube: xr.DataArray, folder: str | os.PathLike) -> dict[str, Path]:
    """Write :func:`layer_pngs` as ``<folder>/<attribute>.png`` (atomically); returns the paths."""
    from appshot_model.core.io import atomic_path

    folder = Path(folder)
    paths = {}
    for attr, png in layer_pngs(cube).items():
        path = folder / f"{attr}.png"
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
        paths[attr] = path
    return paths


def layers_table(metadata: dict) -> str:
    """Markdown table of the per-layer metadata (status, source, totals, coverage)."""
    lines = ["| attribute | status | units | total before | total after | covered share | source |",
             "|---|---|---|---|---|---|---|"]
    for attr, m in metadata["layers"].items():
        before = m.get("total_before")
        lines.append(f"| {attr} | {m['status']} | {m['units']} | "
                     f"{'' if before is None else f'{before:.6g}'} | {m['total_after']:.6g} | "
                     f"{m['covered_share']:.3f} | {Path(str(m.get('source') or '-')).name} |")
    return "\n".join(lines)
