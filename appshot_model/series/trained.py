"""A trained per-cell series generator ready for use outside the benchmark: the DoppelGANger-style model and the
naive weekly-profile baseline fitted on the same training cells, kept together in one folder, and the hourly
series cube ``[time, service, y, x]`` either generates for every cell of a context cube.

Folder layout (:func:`save_series_models`): ``dg.pt`` (:func:`~appshot_model.series.doppelganger.save_doppelganger`),
``naive.npz`` (the baseline's arrays) and ``series_model.json`` (what it was trained on, units)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.core.seeds import derive_seed
from appshot_model.series.data import CellSeries, consecutive_hours, context_cells, join_cells, to_traffic_cube
from appshot_model.series.doppelganger import FittedDG, generate_doppelganger, load_doppelganger, save_doppelganger
from appshot_model.series.naive import ContextScaler, WeeklyProfileModel, fit_weekly_profile, generate_weekly_profile

DG_FILE, NAIVE_FILE, INFO_FILE = "dg.pt", "naive.npz", "series_model.json"
#: Method names written into generated cubes (attribute ``method``).
METHODS = {"dg": "doppelganger", "naive": "naive weekly profile"}


@dataclass
class SeriesModels:
    """The DG-style generator and the naive baseline, fitted on the same cells; ``info`` records the training
    cities, cells, hours and the traffic units."""

    dg: FittedDG
    naive: WeeklyProfileModel
    info: dict = field(default_factory=dict)

    @property
    def attributes(self) -> list[str]:
        return list(self.dg.attributes)

    @property
    def services(self) -> list[str]:
        return list(self.dg.services)


def pool_cells(cells: dict[str, CellSeries], max_cells: int, seed: int) -> CellSeries:
    """The cells of several cities as one set (:func:`~appshot_model.series.data.join_cells`, cities in name
    order), at most ``max_cells`` of them drawn with ``seed``."""
    if not cells:
        raise AppshotInputError("no training city to pool cells from")
    names = sorted(cells)
    pooled = join_cells([cells[n] for n in names], [f"city {n}" for n in names])
    return pooled.sample(max_cells, np.random.default_rng(derive_seed(seed, "series-cells")))


def train_series_models(cells: CellSeries, options, seed: int, info: dict | None = None) -> SeriesModels:
    """Fit DG (``options``: :class:`~appshot_model.series.options.DGOptions`) and the naive baseline on ``cells``."""
    from appshot_model.series.doppelganger import train_doppelganger

    dg = train_doppelganger(cells, options, seed=derive_seed(seed, "dg"))
    return SeriesModels(dg, fit_weekly_profile(cells), dict(info or {}))


def save_series_models(models: SeriesModels, folder: str | os.PathLike) -> Path:
    """Write the three files of the folder (each atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_doppelganger(models.dg, folder / DG_FILE)
    naive = models.naive
    with atomic_path(folder / NAIVE_FILE) as tmp, open(tmp, "wb") as out:
        np.savez(out, mean=naive.scaler.mean, std=naive.scaler.std, features=naive.features, profiles=naive.profiles,
                 noise_std=naive.noise_std, services=np.asarray(naive.services))
    with atomic_path(folder / INFO_FILE) as tmp:
        tmp.write_text(json.dumps(models.info, indent=2, sort_keys=True))
    return folder


def is_series_model_folder(folder: str | os.PathLike) -> bool:
    return (Path(folder) / DG_FILE).is_file()


def load_series_models(folder: str | os.PathLike) -> SeriesModels:
    """A folder written by :func:`save_series_models`."""
    folder = Path(folder)
    missing = [name for name in (DG_FILE, NAIVE_FILE, INFO_FILE) if not (folder / name).is_file()]
    if missing:
        raise AppshotInputError(f"series model folder {folder} lacks {missing} (expected {DG_FILE}, {NAIVE_FILE}, "
                                f"{INFO_FILE}, written by the dg_model asset)")
    with np.load(folder / NAIVE_FILE) as arrays:
        naive = WeeklyProfileModel(ContextScaler(arrays["mean"], arrays["std"]), arrays["features"],
                                   arrays["profiles"], arrays["noise_std"], [str(s) for s in arrays["services"]])
    return SeriesModels(load_doppelganger(folder / DG_FILE), naive, json.loads((folder / INFO_FILE).read_text()))


def generate_series_cube(models: SeriesModels, context: xr.DataArray, times: Sequence, seed: int,
                         method: str = "dg") -> xr.DataArray:
    """Synthetic hourly traffic ``[time, service, y, x]`` of every cell of ``context`` (``[attribute, y, x]``,
    holding the models' attributes) at the consecutive hours ``times``, by ``method`` ``dg`` or ``naive``."""
    if method not in METHODS:
        raise AppshotInputError(f"series method {method!r}; expected one of {list(METHODS)}")
    index = consecutive_hours(times, "a DG or naive series")  # both read the hour of the week off the stamps
    ctx, _, _ = context_cells(context, models.attributes)
    if method == "dg":
        _, values = generate_doppelganger(models.dg, ctx, seed=derive_seed(seed, "dg", "generate"),
                                          n_steps=len(index), first_step=index[0])
    else:
        values = generate_weekly_profile(models.naive, ctx, index, seed=derive_seed(seed, "naive"))
    return to_traffic_cube(values.astype(np.float32), context, index, models.services,
                           units=str(models.info.get("units", "bit/s")), label="synthetic", method=METHODS[method],
                           seed=int(seed))
