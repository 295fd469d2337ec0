"""Series calibration of the hour-conditioned model: each cell's daily profile and the size of its variation
around it (beyond the paper; ``docs/hourly.md``).

A cell's hourly traffic is its profile (its mean in each of the 48 hour-of-day x day-type groups) plus a
residual (the variation around it from day to day). The autocorrelation of the series mixes the profile's
periodic one and the residual's short one in proportion to their variances, so AC-L1 (seed 000 §VII-B) hangs
on the profile's shape and on each cell's ratio ``std(residual) / std(profile)`` of its total traffic.
Measured on the demo world, the hour-conditioned model gets both wrong per cell although its city-wide level
per hour is right (the hour levels): near-empty cells get a flat day (night at 0.5-0.8 of the daily mean,
real 0.2-0.3), and the residual ratio varies from cell to cell (median 0.5x the real one in inhabited cells)
where the real one is about 1.3 at every level but the busiest. The noise reaches the output through the
generator's nonlinear, hour-dependent response, which nothing in training ties to real day-to-day variation.

Calibration (training cities, after training): the model's profile of every cell (mean of
:data:`PROFILE_DRAWS` noise draws per group) gives the cell's level (its mean total). Per quantile bin of the
level (:data:`LEVEL_BINS`), the real / model ratio of the summed group means per group and service (the
profile factor) and an upper quantile of the cells' real residual ratios (the target ratio,
:data:`RATIO_QUANTILE`).

Generation (:func:`calibrate_series_values`): the series' maps and :data:`SERIES_PROFILE_DRAWS` extra draws
per group give the model's profile on the city; each value is multiplied by the profile factor of its cell's
bin, group and service, and each cell's variation around the corrected profile scaled to the target ratio;
traffic is clipped at 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.hourmap import HourMapGenerator
from appshot_model.model.noise import draw_noise
from appshot_model.traffic.peaks import weekday_mask

#: Hour-of-day x day-type groups: ``hour + 24 * weekend``.
GROUPS = 48
#: Noise draws per group of the model's profile in the calibration.
PROFILE_DRAWS = 4
#: Noise draws per group added to a generated series' own maps for its profile.
SERIES_PROFILE_DRAWS = 2
#: Quantile bins of a cell's level.
LEVEL_BINS = 8
#: Quantile of the real residual ratios of a level bin taken as its target. Too little residual costs AC-L1
#: more than too much (the profile's periodic autocorrelation summed over a week of lags), and the demo folds
#: scored best with an upper quantile (median / 0.75 / 0.9: mean AC-L1 of the total 15.2 / 14.7 / 14.6).
RATIO_QUANTILE = 0.9


def hour_groups(times) -> np.ndarray:
    """Group ``hour + 24 * weekend`` (0 .. 47) of each time stamp."""
    index = pd.DatetimeIndex(times)
    return index.hour.values + 24 * (~weekday_mask(index)).astype(int)


def profile_draws(maps: HourMapGenerator, seed: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """``draws`` maps of independent noise per group of the model on ``maps``' city: ``[48 * draws, S, H, W]``
    and their groups."""
    cfg, (height, width) = maps.artefact.model_cfg, maps.shape
    noise = torch.Generator().manual_seed(derive_seed(seed, "profile"))
    groups = np.repeat(np.arange(GROUPS), draws)
    values = np.stack([maps(int(g) % 24, bool(g >= 24), *draw_noise(noise, cfg, 1, height, width)) for g in groups])
    return values, groups


def group_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``[48, ...]`` mean of ``values [N, ...]`` per group (every group needs a value)."""
    counts = np.bincount(groups, minlength=GROUPS)
    if counts.min() < 1:
        raise AppshotInputError(f"no map for hour-of-day x day-type group {int(counts.argmin())}")
    return np.stack([values[groups == g].mean(axis=0, dtype=np.float64) for g in range(GROUPS)])


def cell_level(profile: np.ndarray, traffic_max) -> np.ndarray:
    """``[H, W]`` log10 of a cell's mean total over the groups of ``profile [48, S, H, W]``, in units of the
    summed service maxima."""
    total = profile.sum(axis=1).mean(axis=0) / float(np.sum(traffic_max))
    return np.log10(np.maximum(total, 1e-12))


def residual_ratio(totals: np.ndarray, groups: np.ndarray, profile_totals: np.ndarray) -> np.ndarray:
    """``[H, W]`` residual std (pooled within groups, ``N - 48`` degrees of freedom) of ``totals [N, H, W]``
    around ``profile_totals [48, H, W]`` over the std of the latter; NaN where the profile is flat."""
    residual = totals - profile_totals[groups]
    spread = profile_totals.std(axis=0)
    std = np.sqrt(np.einsum("n...,n...->...", residual, residual) / max(len(groups) - GROUPS, 1))
    return np.divide(std, spread, out=np.full(spread.shape, np.nan), where=spread > 0)


def real_profile(traffic: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Group means ``[48, S, H, W]`` of a real hourly cube ``[time, service, y, x]`` and its cells' residual ratio
    ``[H, W]`` (:func:`residual_ratio` of the total). Needs at least 2 time steps in each of the 48 groups."""
    groups = hour_groups(traffic.time.values)
    counts = np.bincount(groups, minlength=GROUPS)
    if counts.min() < 2:
        raise AppshotInputError(f"series calibration needs >= 2 hours in each hour-of-day x day-type group; the cube "
                                f"has {int(counts.min())} in group {int(counts.argmin())} (a week or more is needed)")
    values = np.asarray(traffic.transpose("time", "service", "y", "x").values, dtype=np.float64)
    means = group_means(values, groups)
    return means, residual_ratio(values.sum(axis=1), groups, means.sum(axis=1))


def calibrate_series(artefact: ModelArtefact, contexts: Mapping[str, xr.DataArray],
                     traffic: Mapping[str, xr.DataArray], seed: int, bins: int = LEVEL_BINS,
                     draws: int = PROFILE_DRAWS, log: Callable[[str], None] | None = None) -> dict | None:
    """Per quantile bin of the level of the model's profile on the training cities' cells: ``level_edges``
    ``[bins - 1]``, ``profile_factor [bins, 48, S]`` (real / model summed group means) and ``residual_ratio``
    ``[bins]`` (the :data:`RATIO_QUANTILE` quantile of the real ratios); None when no city has a week of hourly
    data."""
    levels, ratios, real_means, model_means = [], [], [], []
    for city in sorted(traffic):
        try:
            means, ratio = real_profile(traffic[city].sel(service=artefact.services))
        except AppshotInputError as exc:
            if log is not None:
                log(f"series calibration: {city} skipped ({exc})")
            continue
        samples, groups = profile_draws(HourMapGenerator(artefact, contexts[city]), derive_seed(seed, city), draws)
        model = group_means(samples, groups)
        levels.append(cell_level(model, artefact.normalisation.traffic_max).ravel())
        ratios.append(ratio.ravel())
        real_means.append(means.reshape(GROUPS, len(artefact.services), -1))
        model_means.append(model.reshape(GROUPS, len(artefact.services), -1))
    if not levels or sum(len(v) for v in levels) < bins:
        return None
    level, ratio = np.concatenate(levels), np.concatenate(ratios)
    real, model = np.concatenate(real_means, axis=2), np.concatenate(model_means, axis=2)
    edges = np.quantile(level, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    which = np.digitize(level, edges)
    factor = np.ones((bins, GROUPS, len(artefact.services)))
    target = np.full(bins, float(np.nanquantile(ratio, RATIO_QUANTILE)))
    for b in range(bins):
        cells = which == b
        real_sum, model_sum = real[:, :, cells].sum(axis=2), model[:, :, cells].sum(axis=2)
        factor[b] = np.divide(real_sum, model_sum, out=np.ones_like(real_sum), where=model_sum > 0)
        if np.isfinite(ratio[cells]).any():
            target[b] = float(np.nanquantile(ratio[cells], RATIO_QUANTILE))
    if log is not None:
        log("series calibration per level bin: residual ratio " + ", ".join(f"{r:.2f}" for r in target)
            + f"; profile factors {factor.min():.2f} .. {factor.max():.2f}")
    return {"level_edges": [float(e) for e in edges], "residual_ratio": [float(r) for r in target],
            "profile_factor": factor.round(6).tolist()}


def calibrate_series_values(values: np.ndarray, groups: np.ndarray, maps: HourMapGenerator, seed: int,
                            draws: int = SERIES_PROFILE_DRAWS) -> np.ndarray:
    """Apply the model's series calibration to generated ``values [time, S, H, W]`` of ``groups`` in place: the
    model's profile from the values and ``draws`` extra draws per group, the profile factor of each cell's level
    bin, then each cell's residual scaled to the target ratio. Returns the residual factors ``[H, W]``."""
    calibration = maps.artefact.series_calibration
    if calibration is None:
        raise AppshotInputError("the model has no series calibration (series_calibration is None)")
    extra, extra_groups = profile_draws(maps, seed, draws)
    all_groups = np.concatenate([groups, extra_groups])
    sums = np.zeros((GROUPS, *values.shape[1:]))
    for g in range(GROUPS):
        sums[g] = values[groups == g].sum(axis=0, dtype=np.float64) + extra[extra_groups == g].sum(axis=0)
    profile = sums / np.bincount(all_groups, minlength=GROUPS)[:, None, None, None]
    which = np.digitize(cell_level(profile, maps.artefact.normalisation.traffic_max), calibration["level_edges"])
    factor = np.moveaxis(np.asarray(calibration["profile_factor"], np.float32)[which], (0, 1), (-2, -1))
    for t, group in enumerate(groups):                                        # factor: [48, S, H, W]
        values[t] *= factor[group]
    extra *= factor[extra_groups]
    profile = (profile * factor).astype(np.float32)
    totals = np.concatenate([values.sum(axis=1), extra.sum(axis=1)])
    generated = residual_ratio(totals, all_groups, profile.sum(axis=1))
    target = np.asarray(calibration["residual_ratio"])[which]
    scale = np.divide(target, generated, out=np.ones_like(target), where=generated > 0).astype(np.float32)
    for t, group in enumerate(groups):
        values[t] = np.maximum(profile[group] + scale * (values[t] - profile[group]), 0.0)
    return scale
