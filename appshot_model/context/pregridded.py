"""Pre-gridded context (SpectraGAN release, Milano GRID, ...) re-gridded onto the working grid.

The source cells are polygons with attribute columns; they rarely match the working grid
(SpectraGAN cells are about 256 m x 324 m in UTM 32N, Milano GRID cells about 235 m in CRS84),
so every column is moved by area weighting (``regrid.polygons_to_grid``): ``sum`` for counts and
people (totals conserved), ``mean`` for fractions (area-weighted mean over the covered part).

Which source column is which AppShot attribute is the caller's decision: ``columns`` maps
``source column -> (attribute, how)``. The SpectraGAN release does not name its ``landuse_k`` /
``poi_k`` classes; the default (``SPECTRAGAN_DEFAULT_COLUMNS``) maps all 27 AppShot attributes
by the evidence in ``docs/context.md`` ("SpectraGAN columns"): Table I's order (AppShot,
seed 000 section III) with post and police as two columns, checked against what each column
looks like on the map (roads as 0/1 presence lines, tram stops absent from tram-less Aachen,
the Bonn port on the Rhine, ...). Two derived source columns exist for SpectraGAN cities:
``poi_5+poi_6`` (post + police counts) and ``sea`` (the release's ``grid-sea`` mask).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from appshot_model.context.layers import LayerResult
from appshot_model.context.regrid import polygons_to_grid
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.names import ATTRIBUTES

#: Default SpectraGAN mapping, source column -> (AppShot attribute, how); evidence and doubts in
#: docs/context.md. ``landuse_12`` is the catch-all non-built land (farmland, forest, rivers):
#: mapped to barren lands; the sea comes from the ``grid-sea`` mask. Roads are 0/1 presence flags
#: per cell in this release (not lengths); which of poi_15 / poi_16 is primary is the least sure.
#: ``poi_11`` and ``poi_14`` (all zero in the three cities) match no AppShot attribute.
SPECTRAGAN_DEFAULT_COLUMNS: dict[str, tuple[str, str]] = {
    "population": ("population", "sum"),
    "landuse_1": ("landuse_continuous_urban", "mean"),
    "landuse_2": ("landuse_high_dense_urban", "mean"),
    "landuse_3": ("landuse_medium_dense_urban", "mean"),
    "landuse_4": ("landuse_low_dense_urban", "mean"),
    "landuse_5": ("landuse_very_low_dense_urban", "mean"),
    "landuse_6": ("landuse_isolated_structures", "mean"),
    "landuse_7": ("landuse_green_urban", "mean"),
    "landuse_8": ("landuse_industrial_commercial", "mean"),
    "landuse_9": ("landuse_air_sea_ports", "mean"),
    "landuse_10": ("landuse_leisure_facilities", "mean"),
    "landuse_12": ("landuse_barren_lands", "mean"),
    "sea": ("landuse_sea", "mean"),
    "poi_1": ("poi_tourism", "sum"),
    "poi_2": ("poi_cafe", "sum"),
    "poi_3": ("poi_parking", "sum"),
    "poi_4": ("poi_restaurant", "sum"),
    "poi_5+poi_6": ("poi_post_police", "sum"),
    "poi_7": ("poi_traffic_signals", "sum"),
    "poi_8": ("poi_office", "sum"),
    "poi_9": ("poi_public_transport", "sum"),
    "poi_10": ("poi_shop", "sum"),
    "poi_15": ("poi_primary_roads", "mean"),
    "poi_16": ("poi_secondary_roads", "mean"),
    "poi_17": ("poi_motorways", "mean"),
    "poi_12": ("poi_railway_stations", "sum"),
    "poi_13": ("poi_tram_stops", "sum"),
}
#: Derived SpectraGAN source columns: name -> columns summed (the sea mask is added separately).
SPECTRAGAN_SUMMED_COLUMNS: dict[str, tuple[str, ...]] = {"poi_5+poi_6": ("poi_5", "poi_6")}
#: Sub-folders of ``spectragan/context/<city>/`` holding shapefiles with attribute columns.
SPECTRAGAN_PARTS = ("grid-pop", "grid-pop-landuse", "grid-poi")
#: Attributes whose negative values are clipped to 0 (with a warning).
NON_NEGATIVE = ("population",)

ColumnSpec = Mapping[str, "tuple[str, str] | str | Mapping[str, str]"]


def parse_columns(columns: ColumnSpec, strict: bool = True, where: str = "columns") -> dict[str, tuple[str, str]]:
    """Normalise ``{source column: (attribute, how) | attribute | {"attribute":, "how":}}``.

    ``how`` defaults to "sum". With ``strict``, attributes must be in ``names.ATTRIBUTES``.
    """
    if not columns:
        raise AppshotInputError(f"{where}: empty column mapping; expected {{source column: (attribute, 'sum'|'mean')}}")
    out: dict[str, tuple[str, str]] = {}
    for src, spec in columns.items():
        if isinstance(spec, str):
            attr, how = spec, "sum"
        elif isinstance(spec, Mapping):
            attr, how = spec.get("attribute"), spec.get("how", "sum")
        else:
            try:
                attr, how = spec
            except (TypeError, ValueError) as exc:
                raise AppshotInputError(f"{where}: mapping for {src!r} is {spec!r}; expected "
                                        f"(attribute, 'sum'|'mean')") from exc
        if how not in ("sum", "mean"):
            raise AppshotInputError(f"{where}: how for {src!r} is {how!r}; expected 'sum' or 'mean'")
        if not isinstance(attr, str) or not attr:
            raise AppshotInputError(f"{where}: attribute for {src!r} is {attr!r}; expected a name")
        if strict and attr not in ATTRIBUTES:
            raise AppshotInputError(f"{where}: {src!r} maps to {attr!r}, not an AppShot attribute "
                                    f"(names.ATTRIBUTES); pass strict=False for extra layers")
        out[str(src)] = (attr, how)
    attrs = [a for a, _ in out.values()]
    dup = sorted({a for a in attrs if attrs.count(a) > 1})
    if dup:
        raise AppshotInputError(f"{where}: several source columns map to {dup}; expected one each")
    return out


def regrid_cells(gdf, columns: ColumnSpec, grid: Grid, source: str, strict: bool = True) -> LayerResult:
    """Re-grid a GeoDataFrame of source cells with attribute columns onto ``grid``.

    Values keyed by attribute name; coverage = share of each cell covered by source cells.
    Negative values of ``population`` are clipped to 0 with a warning. Metadata: ``source``,
    ``method``, ``columns``, per summed attribute ``total_source`` / ``total_before`` (inside the
    region, as read) / ``total_after``, ``negative_clipped``, ``covered_share``, ``warnings``.
    """
    spec = parse_columns(columns, strict=strict, where=source)
    missing = [c for c in spec if c not in gdf.columns]
    if missing:
        raise AppshotInputError(f"{source}: column(s) {missing} not found; available columns: "
                                f"{[c for c in gdf.columns if c != gdf.geometry.name]}")
    work = gdf[[gdf.geometry.name]].copy()
    hows: dict[str, str] = {}
    warn_list: list[str] = []
    for src, (attr, how) in spec.items():
        try:
            vals = np.asarray(gdf[src].to_numpy(), dtype=float)
        except (TypeError, ValueError) as exc:
            raise AppshotInputError(f"{source}: column {src!r} is not numeric: {exc}") from exc
        work[f"raw:{attr}"] = vals
        hows[f"raw:{attr}"] = how
        if attr in NON_NEGATIVE:
            neg = vals < 0
            if neg.any():
                msg = (f"{source}: {int(neg.sum())} negative value(s) of {src!r} (min {vals[neg].min():.4g}) "
                       f"clipped to 0")
                warn_list.append(msg)
                warnings.warn(msg, UserWarning, stacklevel=2)
            work[f"out:{attr}"] = np.clip(vals, 0.0, None)
            hows[f"out:{attr}"] = how
    res = polygons_to_grid(work, list(hows), grid, how=hows, source=source)
    if not (res.coverage > 0).any():
        raise AppshotInputError(f"{source}: no source cell intersects the region grid (bounds "
                                f"{tuple(round(v, 1) for v in grid.bounds)} in {grid.crs})")
    values, totals = {}, {}
    for src, (attr, how) in spec.items():
        key = f"out:{attr}" if f"out:{attr}" in hows else f"raw:{attr}"
        values[attr] = np.nan_to_num(res.values[key])
        if how == "sum":
            before = res.metadata["total_inside"][f"raw:{attr}"]
            totals[attr] = {"total_source": res.metadata["total_source"][f"raw:{attr}"],
                            "total_before": before, "total_after": float(values[attr].sum()),
                            "negative_clipped": float(values[attr].sum()) - before}
    covered = float((res.coverage > 0).mean())
    if covered < 1:
        warn_list.append(f"source covers {covered:.1%} of the region's cells; uncovered cells hold 0 "
                         f"with coverage 0")
    meta = {"source": source, "method": "area-weighted re-gridding of source cells (sum: split by "
            "area share; mean: area-weighted over the covered part)",
            "columns": {s: list(v) for s, v in spec.items()}, "totals": totals,
            "n_source_cells": res.metadata["n_polygons"], "covered_share": covered,
            "covered_area_share": float(res.coverage.mean()), "warnings": warn_list}
    if "population" in totals:
        meta.update(total_before=totals["population"]["total_before"],
                    total_after=totals["population"]["total_after"])
    return LayerResult(values=values, coverage=res.coverage, metadata=meta)


def _read(path: Path, layer: str | None = None):
    import geopandas as gpd

    if not path.exists():
        raise AppshotInputError(f"pre-gridded source {path} does not exist")
    gdf = gpd.read_file(path, layer=layer)
    if gdf.crs is None:
        raise AppshotInputError(f"pre-gridded source {path} has no CRS; expected a declared CRS")
    return gdf


def spectragan_city_files(city_dir: str | os.PathLike) -> list[Path]:
    """The attribute shapefiles of one SpectraGAN city folder (``.../context/<city>``)."""
    city_dir = Path(city_dir)
    city = city_dir.name
    files = []
    for part in SPECTRAGAN_PARTS:
        found = sorted((city_dir / f"{city}-{part}").glob("*.shp"))
        if found:
            files.append(found[0])
    if not files:
        raise AppshotInputError(f"{city_dir}: no SpectraGAN shapefiles found; expected sub-folders "
                                f"{[f'{city}-{p}' for p in SPECTRAGAN_PARTS]} with one .shp each")
    return files


def spectragan_table(city_dir: str | os.PathLike, columns: Iterable[str] | None = None):
    """The SpectraGAN cells of one city (``spectragan/context/<city>``) with their attribute
    columns joined on ``id`` and sorted by it (row-major, row 0 southernmost), EPSG:32632.

    ``columns``: source columns wanted (default: those of ``SPECTRAGAN_DEFAULT_COLUMNS``); the
    derived ``poi_5+poi_6`` and ``sea`` (from ``<city>-grid-sea/*.npy``) are built on request.
    """
    wanted = set(SPECTRAGAN_DEFAULT_COLUMNS if columns is None else columns)
    for name, parts in SPECTRAGAN_SUMMED_COLUMNS.items():
        if name in wanted:
            wanted |= set(parts)
    merged = None
    for path in spectragan_city_files(city_dir):
        gdf = _read(path)
        if "id" not in gdf.columns:
            raise AppshotInputError(f"{path}: no 'id' column to join on")
        take = [c for c in gdf.columns if c in wanted and (merged is None or c not in merged.columns)]
        if merged is None:
            merged = gdf[["id", *take, gdf.geometry.name]]
        elif take:
            merged = merged.merge(gdf[["id", *take]], on="id", how="left", validate="one_to_one")
    merged = merged.iloc[np.argsort(merged["id"].astype(int).to_numpy(), kind="stable")].reset_index(drop=True)
    for name, parts in SPECTRAGAN_SUMMED_COLUMNS.items():
        if name in wanted and all(p in merged.columns for p in parts):
            merged[name] = sum(merged[p].astype(float) for p in parts)
    if "sea" in wanted:
        merged["sea"] = _spectragan_sea(Path(city_dir), len(merged))
    return merged


def _spectragan_sea(city_dir: Path, n_cells: int) -> np.ndarray:
    """The release's sea mask (``<city>-grid-sea/*.npy``, row-major in ``id`` order), flattened."""
    found = sorted((city_dir / f"{city_dir.name}-grid-sea").glob("*.npy"))
    if not found:
        raise AppshotInputError(f"{city_dir}: no sea mask {city_dir.name}-grid-sea/*.npy; expected the "
                                f"SpectraGAN release layout (or leave 'sea' out of the columns)")
    sea = np.load(found[0]).astype(float).ravel()
    if sea.size != n_cells:
        raise AppshotInputError(f"{found[0]}: {sea.size} cells, but the shapefiles hold {n_cells}")
    return sea


def spectragan_context(city_dir: str | os.PathLike, grid: Grid, columns: ColumnSpec | None = None,
                       strict: bool = True) -> LayerResult:
    """SpectraGAN context of one city (``spectragan/context/<city>``) on the working grid.

    Reads the population, land-use and PoI shapefiles (EPSG:32632, 255.92 m x 324.43 m cells;
    joined on ``id``) and re-grids the columns in ``columns`` (default
    ``SPECTRAGAN_DEFAULT_COLUMNS``: all 27 AppShot attributes). The shapefiles carry the
    geometry, so the .npy row order (row 0 southernmost) does not matter here.
    """
    columns = SPECTRAGAN_DEFAULT_COLUMNS if columns is None else columns
    merged = spectragan_table(city_dir, columns)
    res = regrid_cells(merged, columns, grid, source=f"SpectraGAN {Path(city_dir).name}", strict=strict)
    res.metadata["files"] = [str(p) for p in spectragan_city_files(city_dir)]
    return res


def milan_context(grid_geojson: str | os.PathLike, features_csv: str | os.PathLike, grid: Grid,
                  columns: ColumnSpec, strict: bool = True) -> LayerResult:
    """Milano GRID features (``crawled_feature.csv``) on the working grid.

    The CSV has one row per cell and no id column; like its publishers we take row k to be
    ``cellId`` k+1 (recorded in metadata). ``columns`` maps CSV columns to attributes; none of
    them (social, BSs, POI_Transportation, POI_Other) is an AppShot attribute, so callers will
    usually pass ``strict=False`` and their own names.
    """
    import pandas as pd

    gdf = _read(Path(grid_geojson))
    csv = Path(features_csv)
    if not csv.exists():
        raise AppshotInputError(f"features file {csv} does not exist")
    feats = pd.read_csv(csv)
    if "cellId" not in gdf.columns:
        raise AppshotInputError(f"{grid_geojson}: no 'cellId' property; expected the Milano GRID")
    if len(feats) != len(gdf):
        raise AppshotInputError(f"{csv} has {len(feats)} rows but {grid_geojson} has {len(gdf)} cells; "
                                f"expected one row per cell in cellId order")
    feats = feats.copy()
    feats["cellId"] = np.arange(1, len(feats) + 1)
    overlap = [c for c in feats.columns if c in gdf.columns and c != "cellId"]
    merged = gdf.drop(columns=overlap).merge(feats, on="cellId", how="left")
    res = regrid_cells(merged, columns, grid, source=f"Milano GRID {csv.name}", strict=strict)
    res.metadata["assumption"] = "crawled_feature.csv row k is cellId k+1"
    return res
