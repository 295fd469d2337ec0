"""Population (inhabitants per cell) from gridded rasters or census polygons.

Rasters (WorldPop, GHS-POP, ...) in any CRS: people per pixel are summed into cells, pixels that
straddle cells split by area (``regrid.raster_sum_to_grid``). Vectors (census grids, hexagons,
arbitrary census units) with a population column: area-weighted interpolation
(``regrid.polygons_to_grid``, how="sum"). Both conserve the number of people inside the region.

Negative population values (interpolation artefacts such as the -0.08 seen in real products)
are clipped to 0 **with a warning** recorded in ``metadata["warnings"]`` and raised as a Python
``UserWarning``; the clipped amount is in ``metadata["negative_clipped"]``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appshot_model.context.layers import LayerResult
from appshot_model.context.regrid import polygons_to_grid, raster_sum_to_grid
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid

ATTRIBUTE = "population"


def _warn(meta: dict, message: str) -> None:
    meta.setdefault("warnings", []).append(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def _finish(values: np.ndarray, coverage: np.ndarray, meta: dict, path, grid: Grid) -> LayerResult:
    if not (coverage > 0).any():
        raise AppshotInputError(f"population source {path} has no valid data inside the region grid "
                                f"(bounds {tuple(round(v, 1) for v in grid.bounds)} in {grid.crs})")
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    meta["total_after"] = float(values.sum())
    meta["covered_share"] = float((coverage > 0).mean())
    meta["covered_area_share"] = float(coverage.mean())
    meta.setdefault("warnings", [])
    if meta["covered_share"] < 1.0:
        meta["warnings"].append(f"source covers {meta['covered_share']:.1%} of the region's cells; "
                                f"uncovered cells hold 0 people with coverage 0")
    meta["units"] = "inhabitants per cell"
    return LayerResult(values={ATTRIBUTE: values}, coverage=coverage, metadata=meta)


def population_from_raster(path: str | os.PathLike, grid: Grid, band: int = 1, method: str = "auto") -> LayerResult:
    """Inhabitants per cell from a people-per-pixel raster in any CRS and resolution.

    ``method``: see ``regrid.raster_sum_to_grid`` ("auto", "polygons" exact, "warp" fast).
    Metadata: ``source``, ``method``, ``total_before`` (people inside the region as read, negatives
    included), ``total_after`` (sum of the layer), ``negative_clipped``, ``covered_share`` (share
    of cells with data), ``warnings``.
    """
    res = raster_sum_to_grid(path, grid, band=band, method=method, clip_negative=True)
    meta = dict(res.metadata)
    meta["total_before"] = meta["total_inside"] + meta["negative_inside"]
    meta["negative_clipped"] = -meta["negative_inside"]
    meta["warnings"] = []
    if meta["negative_inside"] < 0:
        _warn(meta, f"{path}: negative people per pixel (sum {meta['negative_inside']:.4g} inside the "
                    f"region) clipped to 0")
    return _finish(res.values["value"], res.coverage, meta, path, grid)


def read_vector(path: str | os.PathLike, grid: Grid, layer: str | None):
    """The features of a vector file (one ``layer``) that reach the grid's bounds (in the file's CRS) and
    the file's field names; clear errors for a missing, unreadable, CRS-less or non-intersecting file."""
    import geopandas as gpd
    import pyogrio
    import shapely

    p = Path(path)
    if not p.exists():
        raise AppshotInputError(f"vector file {p} does not exist")
    try:
        info = pyogrio.read_info(p, layer=layer)
    except Exception as exc:
        layers = _layers(p)
        raise AppshotInputError(f"cannot read vector file {p} (layer {layer!r}; layers: {layers}): {exc}") from exc
    if info.get("crs") is None:
        raise AppshotInputError(f"vector file {p} has no CRS; expected a declared coordinate reference "
                                f"system (e.g. a .prj beside a shapefile)")
    region = gpd.GeoSeries([shapely.box(*grid.bounds)], crs=grid.crs)
    gdf = gpd.read_file(p, layer=layer, bbox=region)
    if len(gdf) == 0:
        raise AppshotInputError(
            f"vector file {p} (bounds {tuple(round(v, 1) for v in info['total_bounds'])} in "
            f"{info['crs'][:60]}) does not intersect the region grid (bounds "
            f"{tuple(round(v, 1) for v in grid.bounds)} in {grid.crs})")
    return gdf, list(info["fields"])


def _layers(p: Path) -> list[str]:
    import pyogrio

    try:
        return [str(name) for name, _ in pyogrio.list_layers(p)]
    except Exception:
        return []


def population_from_vector(path: str | os.PathLike, column: str, grid: Grid, layer: str | None = None,
                           mask_values: Sequence[float] = ()) -> LayerResult:
    """Inhabitants per cell from census polygons with a population ``column`` (area-weighted).

    Any polygons in any CRS (a census grid, H3 hexagons, districts). ``mask_values`` are codes
    to treat as missing (e.g. ``[99]`` for the masked age columns of the HSY grid; never needed
    for its ``ASUKKAITA``). Metadata: ``source``, ``method``, ``column``, ``total_source`` (all
    features touching the region), ``total_before`` (people inside the region as read),
    ``total_after``, ``negative_clipped``, ``masked``, ``covered_share``, ``warnings``.
    """
    import geopandas as gpd  # noqa: F401  (reading needs it; keeps import errors explicit)

    gdf, fields = read_vector(path, grid, layer)
    if column not in gdf.columns:
        raise AppshotInputError(f"population column {column!r} not in {path}"
                                f"{'' if layer is None else f' layer {layer!r}'}; available columns: {fields}")
    try:
        raw = np.asarray(gdf[column].to_numpy(), dtype=float)
    except (TypeError, ValueError) as exc:
        raise AppshotInputError(f"population column {column!r} in {path} is not numeric: {exc}") from exc
    meta: dict = {"source": str(path), "layer": layer, "column": column, "warnings": []}
    masked = np.isin(raw, np.asarray(list(mask_values), dtype=float)) if len(mask_values) else np.zeros(raw.size, bool)
    if masked.any():
        _warn(meta, f"{path}: {int(masked.sum())} value(s) of {column!r} equal to mask {list(mask_values)} "
                    f"treated as missing (0 people)")
    raw = np.where(masked, np.nan, raw)
    missing = int((~np.isfinite(raw) & ~masked).sum())
    if missing:
        _warn(meta, f"{path}: {missing} feature(s) with missing {column!r} treated as 0 people")
    gdf = gdf[[gdf.geometry.name]].copy()
    gdf["raw"] = raw
    gdf["clipped"] = np.clip(raw, 0.0, None)
    res = polygons_to_grid(gdf, ["raw", "clipped"], grid, how="sum", source=str(path))
    meta.update(method="area-weighted interpolation of census polygons",
                n_features=res.metadata["n_polygons"], masked=int(masked.sum()),
                total_source=res.metadata["total_source"]["raw"],
                total_before=res.metadata["total_inside"]["raw"])
    meta["negative_clipped"] = res.metadata["total_inside"]["clipped"] - meta["total_before"]
    if (raw < 0).any():
        _warn(meta, f"{path}: {int((raw < 0).sum())} negative value(s) of {column!r} (min {np.nanmin(raw):.4g}) "
                    f"clipped to 0")
    return _finish(res.values["clipped"], res.coverage, meta, path, grid)
