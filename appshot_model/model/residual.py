"""Residual amplitude of stitched hourly series (beyond the paper; ``docs/hourly.md``).

A cell's hourly traffic is its profile (its mean at each of the 48 hour-of-day x day-type groups) plus a
residual (the variation around it from day to day). The autocorrelation of the series mixes the profile's
periodic one and the residual's short one in proportion to their variances, so AC-L1 (seed 000 §VII-B) hangs
on each cell's ratio ``std(residual) / std(profile)`` of its total traffic. Measured on the demo world, the
real ratio is about 1.3 at every level but the busiest (0.75), while the hour-conditioned model's varies from
cell to cell (its median 0.5x the real one in inhabited cells, 1.1x in near-empty ones): the noise reaches the
output through the generator's nonlinear, hour-dependent response, which nothing in training ties to the real
residual.

Calibration (training cities, after training): the model's profile of every cell (mean of
:data:`PROFILE_DRAWS` noise draws per group) gives its level; the real ratio of the training cells is
summarised per level bin (median over :data:`LEVEL_BINS` quantile bins of the level). Generation: each cell's
residual around the model's profile is scaled by ``target(level) / generated ratio`` (the generated ratio from
the same draws) and traffic is clipped at 0. Measured on two held-out demo cities (docs/hourly.md): AC-L1 of
the total 18.0 -> 15.6 (liege) and 22.1 -> 14.0 (valencia).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
#: Quantile bins of a cell's level in the calibration.
LEVEL_BINS = 8


def hour_groups(times) -> np.ndarray:
    """Group ``hour + 24 * weekend`` (0 .. 47) of each time stamp."""
    index = pd.DatetimeIndex(times)
    return index.hour.values + 24 * (~weekday_mask(index)).astype(int)


@dataclass
class ModelProfile:
    """A model's mean traffic per group on one map and the spread of its total around it."""

    mean: np.ndarray          #: ``[48, S, H, W]`` traffic units
    residual_std: np.ndarray  #: ``[H, W]`` std of a cell's total around its group mean, pooled over groups

    def level(self, traffic_max) -> np.ndarray:
        """``[H, W]`` log10 of the cell's mean total over the groups in units of the summed service maxima."""
        total = self.mean.sum(axis=1).mean(axis=0) / float(np.sum(traffic_max))
        return np.log10(np.maximum(total, 1e-12))

    def ratio(self) -> np.ndarray:
        """``[H, W]`` residual std / std of the total's group means (0 where the profile is flat)."""
        spread = self.mean.sum(axis=1).std(axis=0)
        return np.divide(self.residual_std, spread, out=np.zeros_like(spread), where=spread > 0)


class ProfileEstimate:
    """Running sums of hourly maps per group, giving a :class:`ModelProfile` (group means and the pooled
    within-group spread of the total)."""

    def __init__(self, services: int, height: int, width: int) -> None:
        self.sums = np.zeros((GROUPS, services, height, width))
        self.counts = np.zeros(GROUPS, dtype=np.int64)
        self.total_squares = np.zeros((GROUPS, height, width))

    def add(self, group: int, traffic: np.ndarray) -> None:
        """One map ``[S, H, W]`` of ``group``."""
        self.sums[group] += traffic
        self.counts[group] += 1
        self.total_squares[group] += traffic.sum(axis=0, dtype=np.float64) ** 2

    def profile(self) -> ModelProfile:
        """Means per group (every group needs a map) and the residual std pooled over groups."""
        if self.counts.min() < 1:
            raise AppshotInputError(f"no map for hour-of-day x day-type group {int(self.counts.argmin())}")
        mean = self.sums / self.counts[:, None, None, None]
        total = mean.sum(axis=1)
        within = np.maximum(self.total_squares - self.counts[:, None, None] * total ** 2, 0.0).sum(axis=0)
        freedom = int((self.counts - 1).sum())
        if freedom < 1:
            raise AppshotInputError("a profile's residual spread needs two maps of one group")
        return ModelProfile(mean.astype(np.float32), np.sqrt(within / freedom))


def add_profile_draws(estimate: ProfileEstimate, maps: HourMapGenerator, seed: int,
                      draws: int = PROFILE_DRAWS) -> ProfileEstimate:
    """Add ``draws`` maps of independent noise per group of the model on ``maps``' city to ``estimate``."""
    cfg, (height, width) = maps.artefact.model_cfg, maps.shape
    noise = torch.Generator().manual_seed(derive_seed(seed, "profile"))
    for group in range(GROUPS):
        for _ in range(draws):
            estimate.add(group, maps(group % 24, group >= 24, *draw_noise(noise, cfg, 1, height, width)))
    return estimate


def model_profile(maps: HourMapGenerator, seed: int, draws: int = PROFILE_DRAWS) -> ModelProfile:
    """The model's :class:`ModelProfile` on ``maps``' city from ``draws`` independent noise draws per group."""
    if draws < 2:
        raise AppshotInputError(f"a profile's residual spread needs at least 2 noise draws per group, got {draws}")
    estimate = ProfileEstimate(len(maps.artefact.services), *maps.shape)
    return add_profile_draws(estimate, maps, seed, draws).profile()


def real_ratio(traffic: xr.DataArray) -> np.ndarray:
    """``[H, W]`` ratio of residual std to the std of the group means of a real hourly cube's total traffic
    (NaN where the profile is flat). Needs at least 2 time steps in each of the 48 groups."""
    groups = hour_groups(traffic.time.values)
    counts = np.bincount(groups, minlength=GROUPS)
    if counts.min() < 2:
        raise AppshotInputError(f"residual ratio needs >= 2 hours in each hour-of-day x day-type group; the cube "
                                f"has {int(counts.min())} in group {int(counts.argmin())} (a week or more is needed)")
    total = np.asarray(traffic.sum("service").transpose("time", "y", "x").values, dtype=np.float64)
    means = np.stack([total[groups == g].mean(axis=0) for g in range(GROUPS)])
    residual = total - means[groups]
    residual_std = np.sqrt((residual ** 2).sum(axis=0) / (len(groups) - GROUPS))
    spread = means.std(axis=0)
    return np.divide(residual_std, spread, out=np.full_like(spread, np.nan), where=spread > 0)


def calibrate_residual_ratio(artefact: ModelArtefact, contexts: Mapping[str, xr.DataArray],
                             traffic: Mapping[str, xr.DataArray], seed: int, bins: int = LEVEL_BINS,
                             draws: int = PROFILE_DRAWS, log: Callable[[str], None] | None = None
                             ) -> dict[str, list[float]] | None:
    """The real residual ratio (:func:`real_ratio`) of the training cities' cells per quantile bin of the level of
    the model's profile: ``{"level_edges": [bins - 1], "ratio": [bins]}`` (medians); None when no city has a
    week of hourly data."""
    levels, ratios = [], []
    for city in sorted(traffic):
        try:
            real = real_ratio(traffic[city].sel(service=artefact.services))
        except AppshotInputError as exc:
            if log is not None:
                log(f"residual ratio: {city} skipped ({exc})")
            continue
        profile = model_profile(HourMapGenerator(artefact, contexts[city]), derive_seed(seed, city), draws)
        usable = np.isfinite(real) & (profile.ratio() > 0)
        levels.append(profile.level(artefact.normalisation.traffic_max)[usable])
        ratios.append(real[usable])
    if not levels or sum(len(v) for v in levels) < bins:
        return None
    level, ratio = np.concatenate(levels), np.concatenate(ratios)
    edges = np.quantile(level, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    which = np.digitize(level, edges)
    medians = [float(np.median(ratio[which == b])) if (which == b).any() else float(np.median(ratio))
               for b in range(bins)]
    if log is not None:
        log("residual ratio per level bin: " + ", ".join(f"{r:.2f}" for r in medians))
    return {"level_edges": [float(e) for e in edges], "ratio": medians}


def residual_scale(artefact: ModelArtefact, profile: ModelProfile) -> np.ndarray:
    """``[H, W]`` factor on each cell's residual around ``profile`` giving the calibrated ratio (1 where the
    model's profile is flat or has no residual)."""
    calibration = artefact.residual_ratio
    if calibration is None:
        raise AppshotInputError("the model has no residual ratio calibration (residual_ratio is None)")
    target = np.asarray(calibration["ratio"])[np.digitize(profile.level(artefact.normalisation.traffic_max),
                                                          calibration["level_edges"])]
    generated = profile.ratio()
    return np.divide(target, generated, out=np.ones_like(generated), where=generated > 0).astype(np.float32)
