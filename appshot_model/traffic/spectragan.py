"""The SpectraGAN world: real context of German cities and 3 weeks of hourly total traffic.

Source: the public release of SpectraGAN (Xu et al., "SpectraGAN: Spectrum based Generation of
City Scale Spatiotemporal Mobile Network Traffic Data", ACM CoNEXT 2021), copied in
``../shared/data/spectragan``. Its traffic, ``synthetic-traffic/tmap_model-<city>.npy``, is the
OUTPUT OF THE SPECTRAGAN MODEL (trained on operator data and fed this context), not measurement:
every cube read here says ``label="synthetic"``.

Layout facts established from the data (evidence in ``docs/context.md``, tests in
``tests/appshot_model/traffic/test_spectragan.py``):

- context cells are a lattice of 255.92 m x 324.43 m rectangles in EPSG:32632; the .npy arrays
  (context and traffic) hold row 0 SOUTHERNMOST; cubes here are north-up;
- the traffic window sits inside the context grid with the same margins in both cities
  (:data:`MARGIN_CELLS`: 7 rows north, 4 south, 5 columns west, 6 east), not mirrored;
- the 504 time steps are hourly; step 0 is a Wednesday 03:00 of a nominal week starting Monday
  :data:`NOMINAL_MONDAY` (local time; hour of day from the daily profile, weekend from the
  weekly pattern; the real dates are unknown).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import spearmanr

from appshot_model.context.pregridded import SPECTRAGAN_DEFAULT_COLUMNS, ColumnSpec, parse_columns, spectragan_table
from appshot_model.core.cube import make_context_cube, make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid

#: Cities of the release that carry traffic, and those with context only.
TRAFFIC_CITIES = ("aachen", "bonn")
CONTEXT_ONLY_CITIES = ("dresden",)
#: Context cells around the traffic window (both cities): rows north / south, columns west / east.
MARGIN_CELLS = {"north": 7, "south": 4, "west": 5, "east": 6}
#: Nominal calendar: the real dates are unknown; the axis is anchored on this Monday 00:00 ...
NOMINAL_MONDAY = pd.Timestamp("2021-03-01 00:00")
#: ... and step 0 of the traffic arrays is its Wednesday 03:00 (measured, see the module docstring).
FIRST_STEP = NOMINAL_MONDAY + pd.Timedelta(days=2, hours=3)
SOURCE = "SpectraGAN public release (Xu et al., CoNEXT 2021; repository xyf2002/SpectraGAN)"
TRAFFIC_NOTE = ("SpectraGAN MODEL OUTPUT (synthetic), normalised total traffic of all services; "
                "not a measurement")


def city_paths(root: str | os.PathLike, city: str) -> tuple[Path, Path]:
    """(context folder, traffic .npy) of ``city`` under the release folder ``root``."""
    root = Path(root)
    context_dir, traffic = root / "context" / city, root / "synthetic-traffic" / f"tmap_model-{city}.npy"
    if not context_dir.is_dir():
        raise AppshotInputError(f"{context_dir}: no SpectraGAN context folder for city {city!r}; "
                                f"cities present: {sorted(p.name for p in (root / 'context').glob('*'))}")
    return context_dir, traffic


def spectragan_grid(city_dir: str | os.PathLike) -> Grid:
    """The release's own lattice of one city (``spectragan/context/<city>``), north-up.

    Built from the population shapefile's cell polygons (EPSG:32632), which must form an exact
    lattice of equal axis-aligned rectangles (checked to 1 cm)."""
    table = spectragan_table(city_dir, ["population"])
    bounds = table.geometry.bounds.to_numpy()
    width_m = float(np.median(bounds[:, 2] - bounds[:, 0]))
    height_m = float(np.median(bounds[:, 3] - bounds[:, 1]))
    left, top = float(bounds[:, 0].min()), float(bounds[:, 3].max())
    cols = np.rint((bounds[:, 0] - left) / width_m).astype(int)
    rows_north = np.rint((top - bounds[:, 3]) / height_m).astype(int)
    height, width = int(rows_north.max()) + 1, int(cols.max()) + 1
    grid = Grid(str(table.crs), left, top, height, width, width_m, height_m)
    expected_left = left + cols * width_m
    expected_top = top - rows_north * height_m
    off = max(np.abs(bounds[:, 0] - expected_left).max(), np.abs(bounds[:, 3] - expected_top).max())
    # id order is row-major from the south-west cell (docs/context.md)
    order_ok = np.array_equal(rows_north, (height - 1 - np.arange(len(table)) // width))
    if off > 0.01 or len(table) != height * width or not order_ok:
        raise AppshotInputError(f"{city_dir}: cells are not a full lattice of {width_m:.2f} m x {height_m:.2f} m "
                                f"rectangles in id order (largest corner offset {off:.3f} m)")
    return grid


def traffic_window(grid: Grid) -> Grid:
    """The sub-grid of a city's context lattice that its traffic covers (:data:`MARGIN_CELLS`)."""
    m = MARGIN_CELLS
    return grid.window(m["north"], m["west"], grid.height - m["north"] - m["south"],
                       grid.width - m["west"] - m["east"])


def context_cube(root: str | os.PathLike, city: str, crop: bool = True,
                 columns: ColumnSpec | None = None) -> xr.DataArray:
    """Context cube ``[attribute, y, x]`` of a SpectraGAN city on its own lattice, north-up.

    ``crop=True``: only the cells under the traffic window (for scoring against the traffic);
    ``crop=False``: the whole context grid (for generation with context margin). ``columns``
    defaults to the 27-attribute ``SPECTRAGAN_DEFAULT_COLUMNS``; negative population (a few
    -0.08 cells in the release) is clipped to 0."""
    context_dir, _ = city_paths(root, city)
    spec = parse_columns(SPECTRAGAN_DEFAULT_COLUMNS if columns is None else columns, where=str(context_dir))
    grid = spectragan_grid(context_dir)
    table = spectragan_table(context_dir, list(spec))
    attrs = [a for a, _ in spec.values()]
    values = np.stack([np.flipud(table[src].to_numpy(dtype=float).reshape(grid.shape)) for src in spec])
    if "population" in attrs:
        values[attrs.index("population")] = np.clip(values[attrs.index("population")], 0.0, None)
    meta = {"source": SOURCE, "city": city, "columns": str({s: list(v) for s, v in spec.items()}),
            "mapping": "docs/context.md (SpectraGAN columns)"}
    if crop:
        window = traffic_window(grid)
        row, col = _window_offset(grid, window)
        values = values[:, row:row + window.height, col:col + window.width]
        grid = window
    return make_context_cube(values, attrs, grid, **meta)


def _window_offset(grid: Grid, window: Grid) -> tuple[int, int]:
    return (int(round((grid.top - window.top) / grid.cell_height)),
            int(round((window.left - grid.left) / grid.cell_size_m)))


def read_traffic(root: str | os.PathLike, city: str) -> xr.DataArray:
    """SpectraGAN's 3 weeks of hourly total traffic for ``city`` as a traffic cube
    ``[time, service=("total",), y, x]`` on the traffic window of the city's lattice, north-up,
    ``units="normalised"``, ``label="synthetic"`` (model output), naive local time stamps
    from :data:`FIRST_STEP`."""
    context_dir, path = city_paths(root, city)
    if not path.exists():
        raise AppshotInputError(f"{path}: no SpectraGAN traffic for {city!r}; cities with traffic: {TRAFFIC_CITIES}")
    values = np.load(path)
    window = traffic_window(spectragan_grid(context_dir))
    if values.ndim != 3 or values.shape[1:] != window.shape or values.shape[0] % 24:
        raise AppshotInputError(f"{path}: shape {values.shape}; expected (hours, {window.height}, {window.width}) "
                                f"with whole days of hours")
    if not np.isfinite(values).all() or (values < 0).any():
        raise AppshotInputError(f"{path}: traffic must be finite and >= 0")
    times = pd.date_range(FIRST_STEP, periods=values.shape[0], freq="h")
    cube = make_traffic_cube(values[:, None, ::-1, :], times, ("total",), window, units="normalised",
                             label="synthetic", source=SOURCE, note=TRAFFIC_NOTE, city=city,
                             time_axis=f"nominal: step 0 = {FIRST_STEP} (a Wednesday 03:00), real dates unknown")
    cube["time"].attrs.update(standard_name="time", long_name="start of the hour (nominal local time)")
    return cube


def _cv_ridge_r2(features: np.ndarray, target: np.ndarray, lam: float = 10.0, folds: int = 5) -> float:
    """Cross-validated R2 of a ridge regression (standardised features, fixed interleaved folds)."""
    x = (features - features.mean(0)) / np.where(features.std(0) > 0, features.std(0), 1.0)
    fold = np.arange(len(target)) % folds
    sse = 0.0
    for k in range(folds):
        train, test = fold != k, fold == k
        a = np.c_[np.ones(train.sum()), x[train]]
        penalty = lam * np.diag([0.0] + [1.0] * x.shape[1])
        beta = np.linalg.solve(a.T @ a + penalty, a.T @ target[train])
        sse += float(((np.c_[np.ones(test.sum()), x[test]] @ beta - target[test]) ** 2).sum())
    return 1.0 - sse / float(((target - target.mean()) ** 2).sum())


def alignment_scores(context_south_first: np.ndarray, mean_traffic_south_first: np.ndarray) -> pd.DataFrame:
    """How well each placement of the traffic window in the context grid explains mean traffic.

    Inputs are as stored in the release (row 0 southernmost): context ``[attribute, H, W]`` and
    the time-mean traffic ``[h, w]``. For every mirror (rows, columns) and offset (rows from
    the south, columns from the west): ``r2`` = cross-validated ridge R2 of log mean traffic on
    log(1 + context) of the covered cells, ``spearman_population`` = Spearman correlation with
    population (attribute 0). One row per candidate, best ``r2`` first."""
    ctx = np.log1p(np.clip(np.asarray(context_south_first, dtype=float), 0.0, None))
    ctx = ctx[[k for k in range(ctx.shape[0]) if ctx[k].std() > 0]]
    y_all = np.log(np.asarray(mean_traffic_south_first, dtype=float))
    (h, w), (big_h, big_w) = y_all.shape, ctx.shape[1:]
    rows = []
    for flip_rows, flip_cols in itertools.product((False, True), (False, True)):
        y = y_all[::-1] if flip_rows else y_all
        y = (y[:, ::-1] if flip_cols else y).ravel()
        for south, west in itertools.product(range(big_h - h + 1), range(big_w - w + 1)):
            x = ctx[:, south:south + h, west:west + w].reshape(len(ctx), -1).T
            rows.append({"flip_rows": flip_rows, "flip_cols": flip_cols, "south": south, "west": west,
                         "r2": _cv_ridge_r2(x, y),
                         "spearman_population": float(spearmanr(x[:, 0], y)[0])})
    return pd.DataFrame(rows).sort_values("r2", ascending=False, ignore_index=True)


def release_arrays(root: str | os.PathLike, city: str) -> tuple[np.ndarray, np.ndarray]:
    """(context ``[attribute, H, W]`` with population first, traffic ``[time, h, w]``) exactly as
    stored in the release (row 0 southernmost), for :func:`alignment_scores`."""
    context_dir, path = city_paths(root, city)
    spec = parse_columns(SPECTRAGAN_DEFAULT_COLUMNS)
    grid = spectragan_grid(context_dir)
    table = spectragan_table(context_dir, list(spec))
    context = np.stack([table[src].to_numpy(dtype=float).reshape(grid.shape) for src in spec])
    return context, np.load(path)


def joint_alignment_scores(root: str | os.PathLike, cities=TRAFFIC_CITIES) -> pd.DataFrame:
    """:func:`alignment_scores` of every city with traffic, averaged over the cities per candidate
    (one generator and one preprocessing made all the files, so one placement must fit all);
    columns ``r2_<city>`` and ``spearman_<city>`` keep the per-city figures. Best first."""
    merged = None
    keys = ["flip_rows", "flip_cols", "south", "west"]
    for city in cities:
        context, traffic = release_arrays(root, city)
        scores = alignment_scores(context, traffic.mean(axis=0)).rename(
            columns={"r2": f"r2_{city}", "spearman_population": f"spearman_{city}"})
        merged = scores if merged is None else merged.merge(scores, on=keys)
    merged["r2"] = merged[[f"r2_{c}" for c in cities]].mean(axis=1)
    merged["spearman_population"] = merged[[f"spearman_{c}" for c in cities]].mean(axis=1)
    return merged.sort_values("r2", ascending=False, ignore_index=True)


def hour_of_day_profile(cube: xr.DataArray) -> pd.Series:
    """Mean city total per hour of day (0-23), divided by its maximum."""
    total = cube.astype("float64").sum(dim=[d for d in cube.dims if d != "time"]).to_series()
    profile = total.groupby(total.index.hour).mean()
    return profile / profile.max()


def day_of_week_totals(cube: xr.DataArray) -> pd.Series:
    """Mean daily city total per day of week (0 = Monday), divided by the mean over all days."""
    total = cube.astype("float64").sum(dim=[d for d in cube.dims if d != "time"]).to_series()
    daily = total.groupby(total.index.normalize()).sum()
    daily = daily[total.groupby(total.index.normalize()).size() == 24]  # whole days only
    return daily.groupby(daily.index.day_of_week).mean() / daily.mean()
