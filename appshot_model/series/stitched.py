"""Hourly AppShot series: hourly snapshots stitched into ``[time, service, y, x]`` with noise that evolves
smoothly from hour to hour.

AppShot draws every snapshot from fresh noise, so snapshots stitched into a series (seed 000 §VII-B) have
no hour-to-hour memory beyond the context and the hour. Here the generator's noise (the vector ``z`` and
the spatial noise field, drawn by :func:`appshot_model.model.noise.draw_noise`) follows an AR(1) process,

    n_0 = e_0,   n_t = rho n_{t-1} + sqrt(1 - rho^2) e_t,   e_t ~ draw_noise (independent),

so each hour's noise keeps the marginal the generator was trained on (standard normal, same spatial
correlation of the field) and consecutive hours' noise has correlation ``rho``. ``rho`` is measured on
real data (:func:`residual_lag1`): the lag-1 autocorrelation of each cell's traffic after removing its mean
at that hour of day and day type. ``rho = 0`` gives independent snapshots (the paper's stitching).

Series calibration (beyond the paper): when the hour-conditioned model carries one, each cell's profile (its
mean per hour of day and day type, pooled from the series' own hours and extra noise draws) gives its level
bin; its profile becomes its level times the mean real profile shape of the bin (per hour of the week when
the training cities repeat their week), and its variation around the profile is rescaled to the size and
the day-to-day persistence measured on the training cities' real cells (:mod:`appshot_model.model.residual`).

Models: one hour-conditioned artefact (:data:`appshot_model.model.hours.CONDITIONED`) or one artefact
per hour of day (keys 0-23), all with the same noise shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from appshot_model.core.cube import grid_of, make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.temporal import autocorrelation
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig
from appshot_model.model.hourmap import HourMapGenerator
from appshot_model.model.hours import CONDITIONED
from appshot_model.model.noise import draw_noise
from appshot_model.model.residual import calibrate_series_values, context_reference, hour_groups
from appshot_model.series.data import consecutive_hours
from appshot_model.traffic.peaks import weekday_mask

HourlyModels = ModelArtefact | Mapping[int, ModelArtefact]
#: Default noise correlation: :func:`calibrate_rho` on the demo world (hour-conditioned model, F = 16, 1200 steps;
#: training city valencia, first week: real residual lag-1 0.380, generated 0.383 at rho = 0.4; docs/hourly.md).
DEFAULT_RHO = 0.4
#: Noise correlations tried by :func:`calibrate_rho`.
RHO_CANDIDATES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def ar1_noise(generator: torch.Generator, cfg: ModelConfig, n_steps: int, height: int, width: int,
              rho: float) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``n_steps`` noise draws ``(z [1, Nz], field [1, C, height, width] or None)`` of an AR(1) process with
    lag-1 correlation ``rho`` in [0, 1) and the marginal of :func:`draw_noise` at every step."""
    if not 0.0 <= rho < 1.0:
        raise AppshotInputError(f"noise correlation rho must lie in [0, 1), got {rho}")
    innovation = float(np.sqrt(1.0 - rho ** 2))
    z, field = draw_noise(generator, cfg, 1, height, width)
    for step in range(n_steps):
        if step:
            fresh_z, fresh_field = draw_noise(generator, cfg, 1, height, width)
            z = rho * z + innovation * fresh_z
            field = None if field is None else rho * field + innovation * fresh_field
        yield z, field


def residual_lag1(traffic: xr.DataArray) -> float:
    """Lag-1 autocorrelation of hourly traffic ``[time, service, y, x]`` after removing each cell's and
    service's mean at its hour of day and day type (weekday/weekend): the mean over series with residual
    variance (the hour-to-hour memory that the context and the hour do not explain)."""
    if "time" not in traffic.dims or traffic.sizes["time"] < 48:
        raise AppshotInputError(f"residual autocorrelation needs an hourly cube [time, ...] of at least 48 hours, "
                                f"got dims {dict(traffic.sizes)}")
    index = consecutive_hours(traffic.time.values, "residual autocorrelation")
    values = np.asarray(traffic.transpose("time", ...).values, dtype=np.float64).reshape(len(index), -1)
    group = hour_groups(index)
    residual = values.copy()
    for g in np.unique(group):
        residual[group == g] -= values[group == g].mean(axis=0)
    varies = residual.std(axis=0) > 1e-9 * max(float(np.abs(values).max()), 1e-300)
    if not varies.any():
        raise AppshotInputError("traffic has no residual variation around its hour-of-day means")
    return float(autocorrelation(residual[:, varies], max_lag=1).mean())


def _check_models(models: HourlyModels, hours: set[int]) -> list[ModelArtefact]:
    """The artefacts used, checked: one hour-conditioned model, or one model per needed hour."""
    if isinstance(models, ModelArtefact):
        if models.peak_hour != CONDITIONED:
            raise AppshotInputError(f"a single model must be hour-conditioned (peak_hour {CONDITIONED!r}); got one "
                                    f"of peak hour {models.peak_hour!r}: give one model per hour of day instead")
        return [models]
    missing = sorted(hours - set(models))
    if missing:
        raise AppshotInputError(f"no model for hours of day {missing}; have models for {sorted(models)}")
    used = [models[h] for h in sorted(hours)]
    shapes = {(a.model_cfg.nz, a.model_cfg.field_channels, a.model_cfg.noise_correlation_cells,
               a.model_cfg.noise_scope, tuple(a.services), a.units) for a in used}
    if len(shapes) != 1:
        raise AppshotInputError(f"the hourly models differ in noise shape, services or units: {sorted(shapes)}")
    if used[0].model_cfg.noise_scope != "snapshot":
        raise AppshotInputError("stitched series need models with noise_scope='snapshot'")
    return used


def generate_hourly_series(models: HourlyModels, context_cube: xr.DataArray, times: Sequence, seed: int,
                           rho: float, progress: bool = False, calibrated: bool = True,
                           context_neighbours: bool = True) -> xr.DataArray:
    """Synthetic hourly traffic ``[time, service, y, x]`` at ``times`` on the context cube's grid, in the models'
    units, labelled ``synthetic``: each hour from its model (or the hour-conditioned one), noise an AR(1)
    process of lag-1 correlation ``rho`` (:func:`ar1_noise`). With ``calibrated`` and an hour-conditioned model that
    has a series calibration, each cell's profile is corrected and its variation around it rescaled
    (:func:`appshot_model.model.residual.calibrate_series_values`; each cell's profile shape and residual
    parameters from its nearest training cells in context space, or with ``context_neighbours=False`` from its
    level bin). Same seed -> same bytes."""
    index = pd.DatetimeIndex(times)
    weekend = ~weekday_mask(index)
    used = _check_models(models, set(index.hour))
    first = used[0]
    height, width = context_cube.sizes["y"], context_cube.sizes["x"]
    maps: dict[int, HourMapGenerator] = {}
    values = np.empty((len(index), len(first.services), height, width), dtype=np.float32)
    noise = ar1_noise(torch.Generator().manual_seed(int(seed)), first.model_cfg, len(index), height, width, rho)
    steps = zip(index.hour, weekend, noise, strict=True)
    for t, (hour, is_weekend, (z, field)) in enumerate(tqdm(steps, total=len(index), disable=not progress,
                                                             desc=f"generating {len(index)} h ({height}x{width})")):
        key = 0 if isinstance(models, ModelArtefact) else int(hour)
        if key not in maps:
            if not isinstance(models, ModelArtefact):
                maps.clear()  # one per-hour model's first layer at a time (memory)
            maps[key] = HourMapGenerator(models if isinstance(models, ModelArtefact) else models[key], context_cube)
        values[t] = maps[key](int(hour), bool(is_weekend), z, field)
    scale = None
    if calibrated and isinstance(models, ModelArtefact) and models.series_calibration is not None:
        map_generator = maps.get(0) or HourMapGenerator(models, context_cube)
        scale = calibrate_series_values(values, index, map_generator, seed, neighbours=context_neighbours)
    return make_traffic_cube(
        values, index, first.services, grid_of(context_cube), units=first.units, label="synthetic", seed=int(seed),
        noise_rho=float(rho), model_hashes=[a.model_hash for a in used],
        series_calibration="none" if scale is None else
        f"level factor per level bin; profile shape and residual targets from "
        f"{_shape_source(models, context_neighbours)} ("
        f"{'hour of week' if models.series_calibration['weekly'] else 'hour of day x day type'}); residual around "
        f"the profile x {float(scale.min()):.3g} .. {float(scale.max()):.3g}",
        hours_model="one hour-conditioned model" if isinstance(models, ModelArtefact) else "one model per hour",
        source="AppShot hourly series (appshot_model.series.stitched.generate_hourly_series)")


def _shape_source(model: ModelArtefact, context_neighbours: bool) -> str:
    """Where a calibrated series' cells took their profile shape from (for the file's attributes)."""
    if context_reference(model, context_neighbours) is None:
        return "the level bin"
    return f"the {int(model.series_calibration['neighbours'])} nearest training cells in context space"


def calibrate_rho(models: HourlyModels, context_cube: xr.DataArray, real: xr.DataArray, seed: int,
                  candidates: Sequence[float] = RHO_CANDIDATES) -> tuple[float, float, dict[float, float]]:
    """The noise correlation among ``candidates`` whose generated series, on the grid and at the times of
    ``real`` (a training city's hourly cube), has the residual lag-1 autocorrelation (:func:`residual_lag1`)
    closest to the real one, the real value, and every candidate's generated value. The generator maps noise
    nonlinearly, so the traffic's correlation is below the noise's and ``rho`` is chosen on the output."""
    target = residual_lag1(real)
    generated = {float(rho): residual_lag1(generate_hourly_series(models, context_cube, real.time.values, seed, rho))
                 for rho in candidates}
    best = min(generated, key=lambda rho: (abs(generated[rho] - target), rho))
    return best, target, generated
