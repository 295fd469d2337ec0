"""The steps the CLI and the Dagster assets share: expand a generated (or simulated) cube, run the checks,
the slicing table over a run folder, and the vRAN day of a cube."""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from appshot_model.core.cube import grid_of, read_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.io import atomic_path
from appshot_model.core.names import PEAK_HOURS, peak_hour
from appshot_model.core.seeds import derive_seed
from appshot_model.sessions.checks import check_sessions
from appshot_model.sessions.coefficients import read_coefficients
from appshot_model.sessions.expansion import HourSpec, expand_hour
from appshot_model.sessions.models import DURATION_CAP_S, SessionModel, StandInWarning, session_model
from appshot_model.sessions.slicing import PLAN_REPLICATES, slicing_capacity, slicing_table
from appshot_model.sessions.vran import day_throughput, vran_comparison, vran_png
from appshot_model.traffic.demo.parameters import START

#: Day given to generated snapshots, which carry an hour but no date: the demo world's first day, a Monday.
DEFAULT_DATE = START.strftime("%Y-%m-%d")
SLICING_COLUMNS = ("method", "sla_met", "std")
VRAN_COLUMNS = ("demand", "energy_kwh", "overload_minutes_share")


def grid_timezone(grid: Grid) -> str:
    """IANA time zone at the centre of the grid (timezonefinder, offline)."""
    from pyproj import Transformer
    from timezonefinder import TimezoneFinder

    left, bottom, right, top = grid.bounds
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform((left + right) / 2,
                                                                                     (bottom + top) / 2)
    name = TimezoneFinder().timezone_at(lng=lon, lat=lat)
    if name is None:
        raise AppshotInputError(f"no time zone found at the grid centre ({lat:.4f}, {lon:.4f}); give one explicitly")
    return name


def load_model(services: Sequence[str], coefficients_dir: str | os.PathLike | None = None,
               log: Callable[[str], None] | None = None) -> SessionModel:
    """The session model of ``services``; with ``log``, stand-in warnings go to it instead of ``warnings``."""
    if log is None:
        return session_model(read_coefficients(coefficients_dir), services)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StandInWarning)
        model = session_model(read_coefficients(coefficients_dir), services)
    for warning in caught:
        log(str(warning.message))
    return model


def select_snapshot(cube: xr.DataArray, index: int, hour: str | None, date: str,
                    ) -> tuple[np.ndarray, pd.Timestamp, str]:
    """One snapshot ``[service, y, x]`` of a generated cube ``[sample, ...]`` (its hour from ``hour`` or the
    cube's ``peak_hour``, on ``date``) or of a traffic cube ``[time, ...]`` (naive local time stamps);
    returns it with its local start time and hour label."""
    lead = cube.dims[0]
    if lead not in ("sample", "time") or set(cube.dims[1:]) != {"service", "y", "x"}:
        raise AppshotInputError(f"cube dims {cube.dims}: expected (sample|time, service, y, x)")
    if not 0 <= index < cube.sizes[lead]:
        raise AppshotInputError(f"{lead} index {index} outside 0..{cube.sizes[lead] - 1}")
    snapshot = cube.isel({lead: index}).transpose("service", "y", "x").values
    if lead == "time":
        start = pd.Timestamp(cube.time.values[index])
        return snapshot, start, hour or f"{start:%Y%m%dT%H}"
    label = hour or cube.attrs.get("peak_hour")
    if label not in PEAK_HOURS:
        raise AppshotInputError(f"generated cube needs a peak hour ({list(PEAK_HOURS)}), got {label!r}")
    try:
        day = pd.Timestamp(date)
    except ValueError as exc:
        raise AppshotInputError(f"date {date!r} is not a date (YYYY-MM-DD)") from exc
    return snapshot, day.normalize() + pd.Timedelta(hours=peak_hour(label)), label


def expand_cube(cube: xr.DataArray, city: str, out_root: str | os.PathLike, seed: int, index: int = 0,
                hour: str | None = None, date: str = DEFAULT_DATE, timezone: str | None = None,
                coefficients_dir: str | os.PathLike | None = None, cap_s: float = DURATION_CAP_S,
                figures_dir: str | os.PathLike | None = None, progress: bool = False, checks: bool = True,
                log: Callable[[str], None] | None = None) -> tuple[dict, dict[str, bytes]]:
    """Expand one snapshot of ``cube`` into session tables under ``out_root`` and (unless ``checks`` is
    False) check them; returns the summary (with the checks) and the figures (PNG bytes, also
    written to ``figures_dir`` if given)."""
    snapshot, start, label = select_snapshot(cube, index, hour, date)
    grid = grid_of(cube)
    spec = HourSpec(city, label, start, timezone or grid_timezone(grid))
    model = load_model([str(s) for s in cube.service.values], coefficients_dir, log)
    summary = expand_hour(model, snapshot, cube.attrs.get("units", "bit/s"), grid, spec, out_root,
                          derive_seed(seed, "sessions", city, label), label=cube.attrs.get("label", "unlabelled"),
                          cap_s=cap_s, progress=progress,
                          source=f"{cube.dims[0]} {index} of {cube.attrs.get('source', cube.name)}")
    summary["stand_ins"] = {s: list(a) for s, a in model.stand_ins.items()}
    if not checks:
        return summary, {}
    summary["checks"], figures = check_sessions(model, summary["paths"]["sessions"],
                                                summary["paths"]["reconciliation"], grid.height * grid.width, cap_s,
                                                title=f"{city} {label}:")
    if figures_dir is not None:
        for name, png in figures.items():
            with atomic_path(Path(figures_dir) / f"{city}_{label}_{name}.png") as tmp:
                tmp.write_bytes(png)
    return summary, figures


def slicing_for_cube(cube: xr.DataArray, summary: dict, seed: int, index: int = 0, date: str = DEFAULT_DATE,
                     coefficients_dir: str | os.PathLike | None = None, plan_replicates: int = PLAN_REPLICATES,
                     max_cells: int | None = None, progress=None) -> dict:
    """Slicing capacity of one expanded snapshot (``summary`` from :func:`expand_cube` on the same cube)."""
    snapshot, start, label = select_snapshot(cube, index, summary["hour"], date)
    spec = HourSpec(summary["city"], label, start, summary["timezone"])
    model = load_model([str(s) for s in cube.service.values], coefficients_dir)
    return slicing_capacity(model, snapshot, cube.attrs.get("units", "bit/s"), spec, summary["paths"]["sessions"],
                            derive_seed(seed, "sessions", spec.city, label), plan_replicates,
                            summary["duration_cap_s"], max_cells, progress)


def write_rows(rows: Sequence[dict], columns: Sequence[str], path: str | os.PathLike) -> Path:
    """Write the ``columns`` of ``rows`` as CSV (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([f"{row[c]:.6f}" if isinstance(row[c], float) else row[c] for c in columns])
    return path


def generated_parts(run_dir: str | os.PathLike, cities: Sequence[str] | None = None,
                    hours: Sequence[str] | None = None) -> list[tuple[str, str, Path]]:
    """(city, hour, NetCDF) of every generated snapshot cube in a run's asset folder."""
    root = Path(run_dir) / "generated_snapshots"
    if not root.is_dir():
        raise AppshotInputError(f"{root} does not exist: expected the asset folder of a run (e.g. data/assets) "
                                f"holding generated_snapshots/<city>/<hour>.nc")
    parts = sorted((p.parent.name, p.stem, p) for p in root.glob("*/*.nc"))
    parts = [p for p in parts if (not cities or p[0] in cities) and (not hours or p[1] in hours)]
    if not parts:
        raise AppshotInputError(f"no generated snapshots under {root} for cities {cities or 'all'}, "
                                f"hours {hours or 'all'}")
    return parts


def slicing_from_run_dir(run_dir: str | os.PathLike, work_dir: str | os.PathLike, seed: int = 0,
                         cities: Sequence[str] | None = None, hours: Sequence[str] | None = None,
                         plan_replicates: int = PLAN_REPLICATES, max_cells: int | None = None,
                         coefficients_dir: str | os.PathLike | None = None,
                         on_part: Callable[[str, str], None] | None = None) -> list[dict]:
    """Expand sample 0 of every generated city x hour of a run (tables under ``work_dir``) and pool the
    slicing-capacity results into the rows of Table 2 (``method, sla_met, std`` ...)."""
    results = []
    for city, hour, path in generated_parts(run_dir, cities, hours):
        if on_part is not None:
            on_part(city, hour)
        cube = read_cube(path)
        summary, _ = expand_cube(cube, city, work_dir, seed, hour=hour, coefficients_dir=coefficients_dir, checks=False)
        results.append(slicing_for_cube(cube, summary, seed, coefficients_dir=coefficients_dir,
                                        plan_replicates=plan_replicates, max_cells=max_cells))
    return slicing_table(results)


def vran_day(cube: xr.DataArray, city: str, day: int, seed: int, timezone: str | None = None,
             coefficients_dir: str | os.PathLike | None = None, progress=None) -> tuple[list[dict], bytes]:
    """The vRAN comparison on day ``day`` (0 = first) of an hourly cube ``[time, service, y, x]``."""
    if "time" not in cube.dims:
        raise AppshotInputError(f"the vRAN day needs an hourly cube with a time dimension, got dims {cube.dims}")
    times = pd.DatetimeIndex(cube.time.values)
    days = sorted(set(times.normalize()))
    if not 0 <= day < len(days):
        raise AppshotInputError(f"day {day} outside 0..{len(days) - 1} of the cube ({times[0]} .. {times[-1]})")
    one_day = cube.isel(time=np.flatnonzero(times.normalize() == days[day]))
    model = load_model([str(s) for s in cube.service.values], coefficients_dir)
    sessions, smooth = day_throughput(model, one_day.transpose("time", "service", "y", "x"), city,
                                      timezone or grid_timezone(grid_of(cube)), derive_seed(seed, "vran", city, day),
                                      progress=progress)
    rows = vran_comparison(sessions, smooth)
    return rows, vran_png(rows, sessions, smooth, title=f"{city}, {days[day]:%Y-%m-%d}:")
