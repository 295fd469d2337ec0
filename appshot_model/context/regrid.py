"""Area-weighted transfer of polygons and rasters onto the working grid.

Everything here returns a :class:`~appshot_model.context.layers.LayerResult` whose arrays are
[H, W] float64, north-up (row 0 northernmost), NaN-free: cells the source does not reach hold 0
and have coverage 0.

Core idea: every source footprint (a census polygon, a pre-gridded cell, the quadrilateral of a
raster pixel seen in the grid CRS) is cut by the grid cells it can touch, and each piece carries
``value * piece_area / footprint_area`` (counts, totals conserved) or its area as a weight
(fractions, area-weighted means). Candidate (footprint, cell) pairs come from each footprint's
bounding box on the regular grid, so no spatial index over the cells is needed, and all
geometry work is one vectorised ``shapely.intersection`` call.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer

from appshot_model.context.layers import LayerResult
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid

#: Candidate (footprint, cell) pairs are processed in chunks of this many to bound memory.
_CHUNK_PAIRS = 400_000
#: ``raster_sum_to_grid(method="auto")`` polygonises pixels up to this many, warps beyond.
POLYGON_PIXEL_LIMIT = 1_000_000


# ---------------------------------------------------------------------------------------------
# geometry core
# ---------------------------------------------------------------------------------------------

def candidate_pairs(geoms: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(footprint index, row, col) for every grid cell within each footprint's bounding box.

    ``geoms`` are shapely geometries already in the grid CRS (metres).
    """
    if len(geoms) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    b = shapely.bounds(geoms)  # xmin, ymin, xmax, ymax
    cw, ch = grid.cell_size_m, grid.cell_height
    c0 = np.floor((b[:, 0] - grid.left) / cw).astype(np.int64)
    c1 = np.ceil((b[:, 2] - grid.left) / cw).astype(np.int64)  # exclusive
    r0 = np.floor((grid.top - b[:, 3]) / ch).astype(np.int64)
    r1 = np.ceil((grid.top - b[:, 1]) / ch).astype(np.int64)  # exclusive
    c0, r0 = np.clip(c0, 0, grid.width), np.clip(r0, 0, grid.height)
    c1, r1 = np.clip(c1, 0, grid.width), np.clip(r1, 0, grid.height)
    nc, nr = np.maximum(c1 - c0, 0), np.maximum(r1 - r0, 0)
    counts = nc * nr
    idx = np.repeat(np.arange(len(geoms)), counts)
    if idx.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(idx.size) - starts  # position inside each footprint's box, row-major
    ncr = nc[idx]
    rows = r0[idx] + k // ncr
    cols = c0[idx] + k % ncr
    return idx, rows, cols


def intersect_with_grid(geoms: np.ndarray, grid: Grid, return_pieces: bool = False):
    """Cut footprints by the grid cells.

    Returns ``(footprint index, row, col, piece area m2)`` for every non-empty piece, plus the
    piece geometries when ``return_pieces``. Two stages: footprints are first cut into row
    strips, then the (smaller) strip pieces into cells, which keeps complex polygons cheap.
    """
    geoms = np.asarray(geoms, dtype=object)
    cw, ch = grid.cell_size_m, grid.cell_height
    left, _, right, _ = grid.bounds
    # stage 1: row strips
    b = shapely.bounds(geoms)
    r0 = np.clip(np.floor((grid.top - b[:, 3]) / ch).astype(np.int64), 0, grid.height)
    r1 = np.clip(np.ceil((grid.top - b[:, 1]) / ch).astype(np.int64), 0, grid.height)
    counts = np.maximum(r1 - r0, 0)
    si = np.repeat(np.arange(len(geoms)), counts)
    srow = r0[si] + (np.arange(si.size) - np.repeat(np.cumsum(counts) - counts, counts))
    strips = np.empty(si.size, dtype=object)
    for s in range(0, si.size, _CHUNK_PAIRS):
        sl = slice(s, s + _CHUNK_PAIRS)
        y1 = grid.top - srow[sl] * ch
        strips[sl] = shapely.intersection(geoms[si[sl]], shapely.box(left, y1 - ch, right, y1))
    nonempty = ~shapely.is_empty(strips) & (shapely.area(strips) > 0)
    si, srow, strips = si[nonempty], srow[nonempty], strips[nonempty]
    # stage 2: cells within each strip piece's column range
    sb = shapely.bounds(strips)
    c0 = np.clip(np.floor((sb[:, 0] - grid.left) / cw).astype(np.int64), 0, grid.width)
    c1 = np.clip(np.ceil((sb[:, 2] - grid.left) / cw).astype(np.int64), 0, grid.width)
    counts = np.maximum(c1 - c0, 0)
    k = np.repeat(np.arange(strips.size), counts)
    cols = c0[k] + (np.arange(k.size) - np.repeat(np.cumsum(counts) - counts, counts))
    out_k, out_c, out_a, out_p = [], [], [], []
    for s in range(0, k.size, _CHUNK_PAIRS):
        kk, cc = k[s:s + _CHUNK_PAIRS], cols[s:s + _CHUNK_PAIRS]
        x0 = grid.left + cc * cw
        y1 = grid.top - srow[kk] * ch
        single = counts[kk] == 1  # strip piece inside one cell: it is the piece
        pieces = strips[kk].copy()
        if (~single).any():
            pieces[~single] = shapely.intersection(
                strips[kk[~single]], shapely.box(x0[~single], y1[~single] - ch, x0[~single] + cw, y1[~single]))
        area = shapely.area(pieces)
        keep = area > 0
        out_k.append(kk[keep]), out_c.append(cc[keep]), out_a.append(area[keep])
        if return_pieces:
            out_p.append(pieces[keep])
    if out_k:
        kk, cc, aa = np.concatenate(out_k), np.concatenate(out_c), np.concatenate(out_a)
    else:
        kk, cc, aa = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    result = (si[kk], srow[kk], cc, aa)
    if return_pieces:
        return result + ((np.concatenate(out_p) if out_p else np.zeros(0, dtype=object)),)
    return result


def coverage_from_pieces(rows: np.ndarray, cols: np.ndarray, area: np.ndarray, grid: Grid) -> np.ndarray:
    """Fraction (0..1) of each cell's area covered by pieces (clipped at 1 where they overlap)."""
    cov = np.zeros(grid.shape)
    np.add.at(cov, (rows, cols), area)
    return np.clip(cov / (grid.cell_size_m * grid.cell_height), 0.0, 1.0)


def clean_geometries(geoms: np.ndarray) -> np.ndarray:
    """Repair invalid polygons (``make_valid``) and keep only their polygonal parts."""
    geoms = np.asarray(geoms, dtype=object)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        fixed = shapely.make_valid(geoms[bad])
        # make_valid can yield GeometryCollections with lines/points: keep the area part only
        fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        geoms = geoms.copy()
        geoms[bad] = fixed
    return geoms


def _polygonal(g):
    if g is None or g.is_empty:
        return shapely.Polygon()
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


# ---------------------------------------------------------------------------------------------
# polygons
# ---------------------------------------------------------------------------------------------

def gdf_in_grid_crs(gdf, grid: Grid, what: str):
    """``gdf`` reprojected to the grid's CRS (unchanged when already in it); an error naming ``what`` when it
    has no CRS."""
    if gdf.crs is None:
        raise AppshotInputError(f"{what} has no CRS; expected polygons with a declared CRS "
                                f"(set it with GeoDataFrame.set_crs or fix the file's .prj)")
    if CRS.from_user_input(gdf.crs) != CRS.from_user_input(grid.crs):
        gdf = gdf.to_crs(grid.crs)
    return gdf


def polygons_to_grid(gdf, columns: Sequence[str], grid: Grid, how: str | dict[str, str] = "sum",
                     source: str = "polygons") -> LayerResult:
    """Transfer polygon attributes to grid cells by area weighting.

    ``how="sum"``: counts (people, PoIs): each polygon's value is split over cells in proportion
    to the share of its area in each cell, so totals are conserved for polygons inside the grid.
    ``how="mean"``: fractions / densities: area-weighted mean over the covered part of each cell.
    ``how`` may be a dict column -> "sum"|"mean". Values keyed by column name, units as the
    source's. NaN attribute values are left out (for sums: contribute 0; for means: no weight).
    ``coverage`` is the share of each cell's area covered by polygons.
    Metadata: ``total_source`` (sum over polygons touching the grid), ``total_inside`` (value of
    the parts inside the grid) per summed column, ``n_polygons``, ``n_pieces``.
    """
    columns = list(columns)
    hows = {c: (how[c] if isinstance(how, dict) else how) for c in columns}
    for c, h in hows.items():
        if h not in ("sum", "mean"):
            raise AppshotInputError(f"how for column {c!r} is {h!r}; expected 'sum' or 'mean'")
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise AppshotInputError(f"{source}: column(s) {missing} not found; available columns: "
                                f"{[c for c in gdf.columns if c != gdf.geometry.name]}")
    gdf = gdf_in_grid_crs(gdf, grid, source)
    geoms = clean_geometries(gdf.geometry.values)
    poly_area = shapely.area(geoms)
    keep = poly_area > 0
    geoms, poly_area = geoms[keep], poly_area[keep]
    vals = {}
    for c in columns:
        try:
            v = np.asarray(gdf[c].to_numpy()[keep], dtype=float)
        except (TypeError, ValueError) as exc:
            raise AppshotInputError(f"{source}: column {c!r} is not numeric ({exc})") from exc
        vals[c] = v
    i, r, cc, a = intersect_with_grid(geoms, grid)
    coverage = coverage_from_pieces(r, cc, a, grid)
    out: dict[str, np.ndarray] = {}
    meta: dict = {"source": source, "method": "area-weighted polygon overlay",
                  "how": hows, "n_polygons": int(len(geoms)), "n_pieces": int(i.size),
                  "total_source": {}, "total_inside": {}, "nan_values": {}}
    touching = np.zeros(len(geoms), dtype=bool)
    touching[i] = True
    for c in columns:
        v = vals[c]
        nan = ~np.isfinite(v)
        meta["nan_values"][c] = int(nan[touching].sum())
        if hows[c] == "sum":
            share = a / poly_area[i]
            w = np.where(nan[i], 0.0, v[i] * share)
            arr = np.zeros(grid.shape)
            np.add.at(arr, (r, cc), w)
            out[c] = arr
            meta["total_source"][c] = float(np.nansum(v[touching]))
            meta["total_inside"][c] = float(w.sum())
        else:
            ok = ~nan[i]
            num = np.zeros(grid.shape)
            den = np.zeros(grid.shape)
            np.add.at(num, (r[ok], cc[ok]), v[i][ok] * a[ok])
            np.add.at(den, (r[ok], cc[ok]), a[ok])
            out[c] = np.divide(num, den, out=np.zeros(grid.shape), where=den > 0)
    return LayerResult(values=out, coverage=coverage, metadata=meta)


# ---------------------------------------------------------------------------------------------
# rasters
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _open_raster(path):
    """The open raster; a missing, unreadable, truncated or damaged file is an AppshotInputError naming it."""
    import rasterio
    from rasterio.errors import RasterioError

    p = Path(path)
    if not p.exists():
        raise AppshotInputError(f"raster {p} does not exist")
    try:
        src = rasterio.open(p)
    except Exception as exc:  # rasterio raises RasterioIOError
        raise AppshotInputError(f"cannot read raster {p}: {exc}") from exc
    try:
        with src:
            yield src
    except (RasterioError, OSError) as exc:  # a block that cannot be read: the file is cut short or damaged
        raise AppshotInputError(f"cannot read raster {p} (truncated or damaged?): {exc}") from exc


def _check_raster(src, path, band: int) -> None:
    if src.crs is None:
        raise AppshotInputError(f"raster {path} has no CRS; expected a GeoTIFF with a declared "
                                f"coordinate reference system")
    if not 1 <= band <= src.count:
        raise AppshotInputError(f"raster {path} has {src.count} band(s); band {band} requested")
    t = src.transform
    if t.b != 0 or t.d != 0:
        raise AppshotInputError(f"raster {path} is rotated (transform {tuple(t)[:6]}); expected a "
                                f"north-up raster")


def _grid_window(src, grid: Grid, path):
    """Pixel window of ``src`` covering the grid (plus one pixel), or error if disjoint."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    l, b, r, t = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    win = from_bounds(l, b, r, t, transform=src.transform)
    c0 = max(int(math.floor(win.col_off)) - 1, 0)
    r0 = max(int(math.floor(win.row_off)) - 1, 0)
    c1 = min(int(math.ceil(win.col_off + win.width)) + 1, src.width)
    r1 = min(int(math.ceil(win.row_off + win.height)) + 1, src.height)
    if c1 <= c0 or r1 <= r0:
        sb = src.bounds
        raise AppshotInputError(
            f"raster {path} (bounds {tuple(round(v, 6) for v in sb)} in {src.crs}) does not "
            f"intersect the region grid (bounds {tuple(round(v, 1) for v in grid.bounds)} in {grid.crs})")
    return Window(c0, r0, c1 - c0, r1 - r0)


def _read_valid(src, band: int, window) -> tuple[np.ndarray, np.ndarray]:
    arr = src.read(band, window=window, masked=True)
    data = np.asarray(arr.filled(np.nan) if np.issubdtype(arr.dtype, np.floating)
                      else arr.astype(float).filled(np.nan), dtype=float)
    valid = np.isfinite(data)
    return data, valid


def pixel_footprints(src, window, grid_crs: str) -> np.ndarray:
    """Quadrilateral of every pixel of ``window`` in ``grid_crs`` (row-major, shape [h*w])."""
    h, w = int(window.height), int(window.width)
    t = src.window_transform(window)
    cols, rows = np.meshgrid(np.arange(w + 1), np.arange(h + 1))
    xs = t.c + cols * t.a
    ys = t.f + rows * t.e
    tr = Transformer.from_crs(src.crs, grid_crs, always_xy=True)
    gx, gy = tr.transform(xs, ys)
    corners = [(slice(0, h), slice(0, w)), (slice(0, h), slice(1, w + 1)),
               (slice(1, h + 1), slice(1, w + 1)), (slice(1, h + 1), slice(0, w)),
               (slice(0, h), slice(0, w))]
    ring = np.stack([np.stack([gx[s].ravel(), gy[s].ravel()], axis=-1) for s in corners], axis=1)
    return shapely.polygons(ring)


def _fine_factor(src, grid: Grid, min_factor: int = 4, per_pixel: int = 2) -> int:
    """Sub-cells per cell side: a sub-cell is at most 1/per_pixel of a source pixel, >= min_factor."""
    from rasterio.warp import transform as warp_transform

    cx, cy = [float(np.mean(grid.x_centres()))], [float(np.mean(grid.y_centres()))]
    x, y = warp_transform(grid.crs, src.crs, cx, cy)
    col, row = ~src.transform @ (x[0], y[0])
    px = [(col, row), (col + 1, row), (col, row + 1)]
    wx, wy = zip(*[src.transform @ p for p in px])
    gx, gy = warp_transform(src.crs, grid.crs, list(wx), list(wy))
    size = min(math.hypot(gx[1] - gx[0], gy[1] - gy[0]), math.hypot(gx[2] - gx[0], gy[2] - gy[0]))
    cell = max(grid.cell_size_m, grid.cell_height)
    return max(min_factor, int(math.ceil(per_pixel * cell / max(size, 1e-9))))


def _warp_to_fine(src, band: int, grid: Grid, factor: int, data: np.ndarray, window, resampling) -> np.ndarray:
    from rasterio.warp import reproject

    fine = np.full((grid.height * factor, grid.width * factor), np.nan)
    fw, fh = grid.cell_size_m / factor, grid.cell_height / factor
    from affine import Affine

    reproject(source=data, destination=fine, src_transform=src.window_transform(window),
              src_crs=src.crs, src_nodata=np.nan, dst_transform=Affine(fw, 0, grid.left, 0, -fh, grid.top),
              dst_crs=grid.crs, dst_nodata=np.nan, resampling=resampling)
    return fine


def _block_sum(a: np.ndarray, grid: Grid, factor: int) -> np.ndarray:
    return a.reshape(grid.height, factor, grid.width, factor).sum(axis=(1, 3))


def raster_sum_to_grid(path: str | os.PathLike, grid: Grid, band: int = 1, method: str = "auto",
                       clip_negative: bool = False) -> LayerResult:
    """Sum a count raster (e.g. people per pixel) into grid cells, conserving totals.

    Works for any source CRS and resolution. ``method="polygons"`` (default, exact): each pixel's
    footprint is projected into the grid CRS and its count split by area over the cells it
    straddles. ``method="auto"`` uses "polygons" up to ``POLYGON_PIXEL_LIMIT`` pixels read around
    the grid and "warp" beyond. ``method="warp"``: the count is turned into a density per m2 of the pixel's
    projected area, warped (nearest) onto sub-cells of at most half a pixel, multiplied by the
    sub-cell area and summed per cell (faster on huge rasters, conserves totals to a fraction
    of a percent). Nodata / non-finite pixels count as uncovered.
    Values: ``{"value": [H, W]}`` in the raster's unit per cell. Metadata: ``total_source``
    (whole raster band), ``total_window`` (pixels read around the grid), ``total_inside`` (the
    part inside the grid, after clipping), ``negative_sum`` (sum of negative pixels in the
    window), ``negative_inside`` (their part inside the grid, measured before any clipping).
    """
    from rasterio.enums import Resampling

    with _open_raster(path) as src:
        _check_raster(src, path, band)
        window = _grid_window(src, grid, path)
        data, valid = _read_valid(src, band, window)
        total_source = None
        if src.width * src.height <= 50_000_000:  # whole-band total only where it is cheap
            full = src.read(band, masked=True)
            total_source = float(np.nansum(np.asarray(full.astype(float).filled(np.nan))))
        meta = {"source": str(path), "band": band, "source_crs": str(src.crs),
                "source_resolution": tuple(float(v) for v in src.res),
                "total_source": total_source, "total_window": float(np.nansum(data)),
                "negative_sum": float(data[valid & (data < 0)].sum())}
        if method == "auto":
            method = "polygons" if data.size <= POLYGON_PIXEL_LIMIT else "warp"
        if method == "polygons":
            geoms = pixel_footprints(src, window, grid.crs)
            flat = data.ravel()
            ok = np.isfinite(flat)
            geoms, flat = geoms[ok], flat[ok]
            parea = shapely.area(geoms)
            i, r, c, a = intersect_with_grid(geoms, grid)
            w = flat[i] * a / parea[i]
            meta["negative_inside"] = float(w[w < 0].sum())
            if clip_negative:
                w = np.maximum(w, 0.0)
            out = np.zeros(grid.shape)
            np.add.at(out, (r, c), w)
            coverage = coverage_from_pieces(r, c, a, grid)
            meta["method"] = "pixel footprints projected to the grid CRS, area-weighted sum"
        elif method == "warp":
            geoms = pixel_footprints(src, window, grid.crs)
            parea = shapely.area(geoms).reshape(data.shape)
            density = np.where(valid, data / parea, np.nan)
            factor = _fine_factor(src, grid, min_factor=8, per_pixel=4)
            fine = _warp_to_fine(src, band, grid, factor, density, window, Resampling.nearest)
            fvalid = np.isfinite(fine)
            fs2 = grid.cell_size_m * grid.cell_height / factor ** 2
            people = np.where(fvalid, fine, 0.0) * fs2
            meta["negative_inside"] = float(people[people < 0].sum())
            if clip_negative:
                people = np.maximum(people, 0.0)
            out = _block_sum(people, grid, factor)
            coverage = _block_sum(fvalid.astype(float), grid, factor) / factor ** 2
            meta["method"] = f"density warped (nearest) onto {factor}x{factor} sub-cells, summed"
            meta["subcells_per_side"] = factor
        else:
            raise AppshotInputError(f"raster_sum_to_grid method {method!r}; expected 'polygons' or 'warp'")
    meta["total_inside"] = float(out.sum())
    return LayerResult(values={"value": out}, coverage=coverage, metadata=meta)


def raster_classes_to_grid(path: str | os.PathLike, grid: Grid, codes: Sequence[int | float] | None = None,
                           band: int = 1) -> LayerResult:
    """Fraction of each cell's area in each class of a categorical raster (any CRS).

    The class raster is warped (nearest neighbour) onto sub-cells of at most half a source pixel
    (and at least 4 per cell side) and the sub-cells of each class are counted per cell.
    ``codes``: class codes to report (``None``: every code present). Values keyed by ``str(code)``
    (integers without decimals), fractions 0..1 of the cell area; coverage = share of sub-cells
    with valid (non-nodata) source pixels. Metadata: ``codes_present`` with their covered area
    share, ``unrequested_codes`` (present but not in ``codes``).
    """
    from rasterio.enums import Resampling

    with _open_raster(path) as src:
        _check_raster(src, path, band)
        window = _grid_window(src, grid, path)
        data, valid = _read_valid(src, band, window)
        factor = _fine_factor(src, grid)
        fine = _warp_to_fine(src, band, grid, factor, data, window, Resampling.nearest)
        meta = {"source": str(path), "band": band, "source_crs": str(src.crs),
                "source_resolution": tuple(float(v) for v in src.res),
                "method": f"nearest-neighbour warp onto {factor}x{factor} sub-cells, class counts",
                "subcells_per_side": factor}
    fvalid = np.isfinite(fine)
    present = np.unique(fine[fvalid])
    key = lambda v: str(int(v)) if float(v).is_integer() else str(v)  # noqa: E731
    wanted = present if codes is None else np.asarray([float(c) for c in codes])
    n = factor ** 2
    values = {key(c): _block_sum((fine == c).astype(float), grid, factor) / n for c in wanted}
    coverage = _block_sum(fvalid.astype(float), grid, factor) / n
    meta["codes_present"] = {key(c): float((fine == c).sum() / fine.size) for c in present}
    meta["unrequested_codes"] = sorted(key(c) for c in set(present.tolist()) - set(wanted.tolist()))
    return LayerResult(values=values, coverage=coverage, metadata=meta)
