"""``appshot generate --hours``: hourly series of a region from its real context, without Dagster.

A model folder holds either one hour-conditioned artefact (``model.json`` at its top), one artefact per
hour of day in sub-folders ``00`` .. ``23`` (the paper's 24 models; only the hours asked for are needed), or
the DG-style series model (``dg.pt``, the ``dg_model`` asset; :mod:`appshot_model.series.trained`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from appshot_model.core.cube import write_hourly_series
from appshot_model.core.errors import AppshotInputError
from appshot_model.model.artefact import MODEL_FILE, ModelArtefact
from appshot_model.model.hours import HOURS, context_attributes
from appshot_model.series.stitched import HourlyModels, generate_hourly_series
from appshot_model.series.trained import generate_series_cube, is_series_model_folder, load_series_models


def load_hourly_models(model_dir: str | os.PathLike, hours: Sequence[int]) -> HourlyModels:
    """The hour-conditioned artefact in ``model_dir``, or its per-hour artefacts ``00`` .. ``23`` for ``hours``."""
    model_dir = Path(model_dir)
    if (model_dir / MODEL_FILE).is_file():
        return ModelArtefact.load(model_dir)
    missing = [HOURS[h] for h in hours if not (model_dir / HOURS[h] / MODEL_FILE).is_file()]
    if missing:
        raise AppshotInputError(f"model folder {model_dir} holds neither an hour-conditioned model ({MODEL_FILE}) nor "
                                f"per-hour models for hours {missing} (sub-folders named 00..23 with {MODEL_FILE})")
    return {h: ModelArtefact.load(model_dir / HOURS[h]) for h in hours}


def series_times(hours: Sequence[int], days: int, start: str) -> pd.DatetimeIndex:
    """Every time stamp at one of ``hours`` (hours of day) over ``days`` days from ``start`` (a date)."""
    if days < 1:
        raise AppshotInputError(f"--days must be at least 1, got {days}")
    try:
        first = pd.Timestamp(start).normalize()
    except ValueError as exc:
        raise AppshotInputError(f"--start {start!r} is not a date (expected YYYY-MM-DD): {exc}") from exc
    every = pd.date_range(first, periods=24 * days, freq="h")
    return every[every.hour.isin(list(hours))]


def series_file(out_dir: str | os.PathLike, region_file: str | os.PathLike) -> Path:
    """``<out_dir>/<region file stem>-hourly.nc`` (the folder is created)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AppshotInputError(f"--out {out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f"{Path(region_file).stem}-hourly.nc"


def generate_region_series(model_dir: str | os.PathLike, region_file: str | os.PathLike, hours: Sequence[int],
                           days: int, start: str, seed: int, rho: float, out_file: str | os.PathLike, *,
                           progress: bool = False, region_loader: Callable[[Path], Any] | None = None,
                           context_builder: Callable[..., tuple[xr.DataArray, dict]] | None = None,
                           allow_missing_layers: bool = False) -> xr.DataArray:
    """Build the region's context, generate its hourly series at ``hours`` for ``days`` days from ``start``
    (AppShot: noise correlation ``rho``; DG ignores it) and write it as NetCDF ``[time, service, y, x]`` to
    ``out_file`` (atomic)."""
    region_file = Path(region_file)
    if not region_file.is_file():
        raise AppshotInputError(f"region file {region_file} does not exist")
    times = series_times(hours, days, start)
    series_model = is_series_model_folder(model_dir)
    models = load_series_models(model_dir) if series_model else load_hourly_models(model_dir, hours)
    if region_loader is None:
        from appshot_model.context.region import load_region as region_loader  # type: ignore[no-redef]
    if context_builder is None:
        from appshot_model.context.build import build_context_cube as context_builder  # type: ignore[no-redef]
    from appshot_model.context.build import check_model_attributes

    region = region_loader(region_file)
    name = str(getattr(region, "name", region_file.stem))
    context, _ = context_builder(region, progress=progress)
    if series_model:
        needed = models.attributes
    else:
        needed = context_attributes(models if isinstance(models, ModelArtefact) else models[hours[0]])
    context = check_model_attributes(context, needed, model=f"model {model_dir}",
                                     allow_missing_layers=allow_missing_layers)
    if series_model:  # DG generates consecutive hours; the hours of day asked for are kept
        every = series_times(range(24), days, start)
        series = generate_series_cube(models, context, every, seed).sel(time=times)
    else:
        series = generate_hourly_series(models, context, times, seed, rho, progress=progress)
    series.attrs["region"] = name
    write_hourly_series(series, out_file)
    return series
