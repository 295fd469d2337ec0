"""Series calibration of the hour-conditioned model: each cell's daily profile and the size of its variation
around it (beyond the paper; ``docs/hourly.md``).

A cell's hourly traffic is its profile (its mean in each hour-of-day x day-type group, or hour of the week)
plus a residual (the variation around it from day to day). The autocorrelation of the series mixes the profile's
periodic one and the residual's short one in proportion to their variances, so AC-L1 (seed 000 §VII-B) hangs
on the profile's shape and on each cell's ratio ``std(residual) / std(profile)``.
Measured on the demo world, the hour-conditioned model gets both wrong per cell although its city-wide level
per hour is right (the hour levels): near-empty cells get a flat day (night at 0.5-0.8 of the daily mean,
real 0.2-0.3), and the residual ratio varies from cell to cell (median 0.5x the real one in inhabited cells)
where the real one is about 1.3 at every level but the busiest. The noise reaches the output through the
generator's nonlinear, hour-dependent response, which nothing in training ties to real day-to-day variation.

Measured on both worlds, the model's own per-cell profile shape does not help: the deviation of a cell's
shape from the mean real shape of cells at its level predicts the real deviation with a slope of 0.0-0.3
out of sample (0.0-0.1 in sample on the demo world), and the SpectraGAN world repeats its week (the residual
variance around hour-of-week means is 3-21 % of that around 48 groups), which a model conditioned on the hour
and the day type cannot produce.

Calibration (training cities, after training): the model's profile of every cell (mean of
:data:`PROFILE_DRAWS` noise draws per group) gives the cell's level (its mean total). Per quantile bin of the
level (:data:`LEVEL_BINS`): the mean real unit profile shape per group and service (hour-of-week groups when
the training cities repeat their week, :data:`WEEKLY_VARIANCE_RATIO`), the real / model level per service,
and per service the median of the cells' real residual coefficient of variation (std of the residual over the
cell's mean: the target), the median share of the residual in its calendar-day means (real residuals
persist over the day: 0.3-0.5 on the demo world, 0.7-0.8 on SpectraGAN's, 1/24 for independent hours) and
the median lag-1 correlation of those day means from one day to the next (SpectraGAN's drift: 0.84 / 0.90;
the demo world's days are independent, -0.1, taken as 0). The same four per cell (its real unit shape, residual
CV, day share and day persistence) are kept for a sample of the training cells (:data:`REFERENCE_CELLS`)
with their standardised model context (the reference, saved with the weights: it is operator data), and the
lowest model and real mean level over the cells per service.

Generation (:func:`calibrate_series_values`): the series' maps and :data:`SERIES_PROFILE_DRAWS` extra draws
per group give the model's profile on the city, hence each cell's bin and model level; the cell's profile
becomes its calibrated level (:func:`cell_levels`: the model level times the bin's level factor; below the
model's range on the training cells, their lowest real level: a model trained on Aachen's 187 cells gave 45-176
of Bonn's 700 cells next to no traffic, which a factor keeps near 0) times its shape; the model's variation
around its own profile is kept and scaled to the target coefficient of variation times that level, and the day
share, its day means first made to persist from day to day (an AR(1) filter across days), service by service;
traffic is clipped at 0. The shape
and the three residual targets are the mean over the cell's :data:`NEIGHBOURS` nearest reference cells in
context space (:func:`cell_parameters`): cells of alike context share a weekly rhythm that the level alone
does not tell (docs/hourly.md has the measurements); without a reference, the level bin's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy.spatial import KDTree

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.hourmap import HourMapGenerator
from appshot_model.model.noise import draw_noise
from appshot_model.traffic.peaks import weekday_mask

#: Hour-of-day x day-type groups: ``hour + 24 * weekend``.
GROUPS = 48
#: Hour-of-week groups: ``24 * day_of_week + hour`` (Monday 0).
WEEK_GROUPS = 168
#: The 48 hour-of-day x day-type group of each hour-of-week group.
DAY_GROUP_OF_WEEK_GROUP = np.arange(WEEK_GROUPS) % 24 + 24 * (np.arange(WEEK_GROUPS) // 24 >= 5)
#: Noise draws per group of the model's profile in the calibration.
PROFILE_DRAWS = 4
#: Noise draws per group added to a generated series' own maps for its profile.
SERIES_PROFILE_DRAWS = 2
#: Quantile bins of a cell's level.
LEVEL_BINS = 8
#: Training cells nearest in context space whose mean profile shape and residual parameters a cell takes.
NEIGHBOURS = 10
#: At most this many training cells (a seeded sample) are kept in the model as those neighbours' reference.
REFERENCE_CELLS = 4000
#: A context attribute varying less than this over the reference cells (normalised units) is not standardised.
MIN_CONTEXT_STD = 1e-4
#: The per-cell parameters the neighbours give: profile shape ``[G, S]``, the others ``[S]`` per cell.
CELL_PARAMETERS = ("profile_shape", "residual_cv", "day_share", "day_persistence")
#: Profiles are per hour of the week when the training cities' median cell residual variance around them is
#: below this fraction of the variance around the 48-group profiles (degrees of freedom counted): the
#: SpectraGAN cities repeat their week (0.03 / 0.21), the demo world has no day-of-week effect (0.97-1.02).
WEEKLY_VARIANCE_RATIO = 0.8


def hour_groups(times) -> np.ndarray:
    """Group ``hour + 24 * weekend`` (0 .. 47) of each time stamp."""
    index = pd.DatetimeIndex(times)
    return index.hour.values + 24 * (~weekday_mask(index)).astype(int)


def week_groups(times) -> np.ndarray:
    """Group ``24 * day_of_week + hour`` (0 .. 167, Monday 00:00 first) of each time stamp."""
    index = pd.DatetimeIndex(times)
    return 24 * index.day_of_week.values + index.hour.values


def profile_groups(times, weekly: bool) -> tuple[np.ndarray, int]:
    """Each time stamp's profile group (:func:`week_groups` or :func:`hour_groups`) and the number of groups."""
    return (week_groups(times), WEEK_GROUPS) if weekly else (hour_groups(times), GROUPS)


def calendar_days(times) -> np.ndarray:
    """Index 0, 1, ... of each time stamp's calendar day."""
    return np.unique(pd.DatetimeIndex(times).normalize(), return_inverse=True)[1].ravel()


def profile_draws(maps: HourMapGenerator, seed: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """``draws`` maps of independent noise per group of the model on ``maps``' city: ``[48 * draws, S, H, W]``
    and their groups."""
    cfg, (height, width) = maps.artefact.model_cfg, maps.shape
    noise = torch.Generator().manual_seed(derive_seed(seed, "profile"))
    groups = np.repeat(np.arange(GROUPS), draws)
    values = np.stack([maps(int(g) % 24, bool(g >= 24), *draw_noise(noise, cfg, 1, height, width)) for g in groups])
    return values, groups


def group_means(values: np.ndarray, groups: np.ndarray, n_groups: int = GROUPS) -> np.ndarray:
    """``[n_groups, ...]`` mean of ``values [N, ...]`` per group (every group needs a value)."""
    counts = np.bincount(groups, minlength=n_groups)
    if counts.min() < 1:
        raise AppshotInputError(f"no map for profile group {int(counts.argmin())} of {n_groups}")
    return np.stack([values[groups == g].mean(axis=0, dtype=np.float64) for g in range(n_groups)])


def cell_level(profile: np.ndarray, traffic_max) -> np.ndarray:
    """``[H, W]`` log10 of a cell's mean total over the groups of ``profile [G, S, H, W]``, in units of the
    summed service maxima."""
    total = profile.sum(axis=1).mean(axis=0) / float(np.sum(traffic_max))
    return np.log10(np.maximum(total, 1e-12))


def residual_cv(residual: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """``[...]`` std of ``residual [N, ...]`` (values minus their group means: pooled within groups, ``N - G``
    degrees of freedom) over the mean of the group means ``profile [G, ...]``; NaN where that mean is 0."""
    level = profile.mean(axis=0)
    std = np.sqrt(np.einsum("n...,n...->...", residual, residual) / max(len(residual) - len(profile), 1))
    return np.divide(std, level, out=np.full(level.shape, np.nan), where=level > 0)


def day_means(residual: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``[D, ...]`` mean of ``residual [N, ...]`` over each calendar day ``days`` (0 .. D - 1)."""
    sums = np.zeros((days.max() + 1, *residual.shape[1:]))
    np.add.at(sums, days, residual)
    return sums / np.bincount(days)[(slice(None),) + (None,) * (residual.ndim - 1)]


def day_share(residual: np.ndarray, days: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """``[...]`` share of the sum of squares of ``residual [N, ...]`` in its calendar-day means (``means``, the
    :func:`day_means`, when the caller has them); NaN where it is 0."""
    total = np.einsum("n...,n...->...", residual, residual)
    daily = _day_sum_of_squares(day_means(residual, days) if means is None else means, days)
    return np.divide(daily, total, out=np.full(total.shape, np.nan), where=total > 0)


def day_persistence(means: np.ndarray) -> np.ndarray:
    """``[...]`` lag-1 correlation of calendar-day means ``means [D, ...]`` (:func:`day_means` of a residual)
    from one day to the next (how much a day above its profile is followed by another); NaN with under 3 days
    or where they are constant."""
    if len(means) < 3:
        return np.full(means.shape[1:], np.nan)
    first, second = means[:-1] - means[:-1].mean(axis=0), means[1:] - means[1:].mean(axis=0)
    norm = np.sqrt(np.einsum("d...,d...->...", first, first) * np.einsum("d...,d...->...", second, second))
    return np.divide(np.einsum("d...,d...->...", first, second), norm, out=np.full(norm.shape, np.nan),
                     where=norm > 0)


def persist_days(per_day: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Day means ``per_day [D, ...]`` passed through an AR(1) filter across days with coefficient ``phi [...]``
    (0: unchanged): ``d'_0 = d_0``, ``d'_k = phi d'_(k-1) + sqrt(1 - phi^2) d_k``, which keeps the variance of
    independent days and gives them lag-1 correlation ``phi``."""
    out = per_day.copy()
    gain = np.sqrt(1.0 - phi ** 2)
    for k in range(1, len(out)):
        out[k] = phi * out[k - 1] + gain * per_day[k]
    return out


def _day_sum_of_squares(means: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Sum over the time steps ``days`` of the squared calendar-day means ``means [D, ...]`` of a residual."""
    return np.einsum("d...,d...,d->...", means, means, np.bincount(days).astype(float))


def _checked_groups(times, weekly: bool) -> tuple[np.ndarray, int]:
    """:func:`profile_groups` of ``times``, each with at least 2 time steps."""
    groups, n_groups = profile_groups(times, weekly)
    counts = np.bincount(groups, minlength=n_groups)
    if counts.min() < 2:
        raise AppshotInputError(f"series calibration needs >= 2 hours in each profile group; the cube has "
                                f"{int(counts.min())} in group {int(counts.argmin())} of {n_groups} "
                                f"({'two weeks' if weekly else 'a week'} or more is needed)")
    return groups, n_groups


def _residual(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Group means ``[G, ...]`` of ``values [N, ...]`` (a float64 array of the caller's), which become the
    residual in place, group by group (no full-size temporary)."""
    means = group_means(values, groups, n_groups)
    for g in range(n_groups):
        values[groups == g] -= means[g]
    return means


def real_profile(traffic: xr.DataArray, weekly: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group means ``[G, S, H, W]`` of a real hourly cube ``[time, service, y, x]`` (per hour of the week with
    ``weekly``), and per service and cell the residual's coefficient of variation (:func:`residual_cv`),
    :func:`day_share` and :func:`day_persistence`, ``[S, H, W]`` each. Needs at least 2 time steps in each group
    (one week, two with ``weekly``). The cube is not modified."""
    groups, n_groups = _checked_groups(traffic.time.values, weekly)
    values = np.array(traffic.transpose("time", "service", "y", "x").values, dtype=np.float64, copy=True)
    means = _residual(values, groups, n_groups)
    days = calendar_days(traffic.time.values)
    daily = day_means(values, days)
    return means, residual_cv(values, means), day_share(values, days, daily), day_persistence(daily)


def weekly_variance_ratio(traffic: xr.DataArray) -> np.ndarray:
    """Per cell, the residual variance of the total around its hour-of-week means over that around its 48-group
    means (each with its degrees of freedom); empty when the cube has under two weeks."""
    try:
        week, n_week = _checked_groups(traffic.time.values, weekly=True)
    except AppshotInputError:
        return np.empty(0)
    totals = np.asarray(traffic.sum("service").transpose("time", "y", "x").values, dtype=np.float64)

    def variance(groups: np.ndarray, n_groups: int) -> np.ndarray:
        residual = totals.copy()
        _residual(residual, groups, n_groups)
        return np.einsum("n...,n...->...", residual, residual) / (len(groups) - n_groups)

    around_week, around_day = variance(week, n_week), variance(hour_groups(traffic.time.values), GROUPS)
    ratio = np.divide(around_week, around_day, out=np.full(around_day.shape, np.nan), where=around_day > 0)
    return ratio[np.isfinite(ratio)].ravel()


def unit_shapes(profile: np.ndarray) -> np.ndarray:
    """``profile [G, S, cells]`` over its mean per service and cell (mean 1 over the groups); NaN where the mean
    is 0."""
    mean = profile.mean(axis=0, keepdims=True)
    return np.divide(profile, mean, out=np.full(profile.shape, np.nan), where=mean > 0)


def calibrate_series(artefact: ModelArtefact, contexts: Mapping[str, xr.DataArray],
                     traffic: Mapping[str, xr.DataArray], seed: int, bins: int = LEVEL_BINS,
                     draws: int = PROFILE_DRAWS, neighbours: int = NEIGHBOURS,
                     reference_cells: int = REFERENCE_CELLS,
                     log: Callable[[str], None] | None = None) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The series calibration from the training cities: ``(calibration, reference)``, None when no city has a
    week of hourly data.

    ``calibration`` (JSON) holds, per quantile bin of the level of the model's profile on the training cells
    (``level_edges [bins - 1]``), the real cells' mean unit shape ``profile_shape [bins, G, S]``
    (:func:`unit_shapes`; hour-of-week groups when ``weekly``, see :data:`WEEKLY_VARIANCE_RATIO`), and per service
    ``level_factor [bins, S]`` (real / model summed means), ``residual_cv [bins, S]`` (median real
    :func:`residual_cv`), ``day_share [bins, S]`` (median real :func:`day_share`) and ``day_persistence [bins, S]``
    (median real :func:`day_persistence`, at least 0); with ``neighbours`` > 0 also ``neighbours`` and the mean
    and std (``context_mean``, ``context_std``) standardising the cells' context.
    ``reference`` (arrays, empty without neighbours): at most ``reference_cells`` training cells (a sample drawn
    with ``seed``): their standardised model context ``context [N, K]`` and real :data:`CELL_PARAMETERS`
    ``[N, G, S]`` / ``[N, S]`` (NaN where a service has no traffic; persistence at least 0), from which
    :func:`cell_parameters` gives each generated cell the mean of its ``neighbours`` nearest."""
    if reference_cells < 1:
        raise AppshotInputError(f"reference_cells must be >= 1, got {reference_cells}")
    usable = {}
    for city in sorted(traffic):
        cube = traffic[city].sel(service=artefact.services)
        try:
            _checked_groups(cube.time.values, weekly=False)
        except AppshotInputError as exc:
            if log is not None:
                log(f"series calibration: {city} skipped ({exc})")
            continue
        usable[city] = cube
    week_ratios = [weekly_variance_ratio(cube) for cube in usable.values()]
    weekly = bool(usable) and all(len(r) for r in week_ratios) and \
        float(np.median(np.concatenate(week_ratios))) < WEEKLY_VARIANCE_RATIO
    n_groups, n_services = (WEEK_GROUPS if weekly else GROUPS), len(artefact.services)
    levels, cvs, shares, persistences, real_means, model_means, features = [], [], [], [], [], [], []
    for city, cube in usable.items():
        means, cv, share, persistence = real_profile(cube, weekly)
        maps = HourMapGenerator(artefact, contexts[city])
        samples, groups = profile_draws(maps, derive_seed(seed, city), draws)
        model = group_means(samples, groups)
        levels.append(cell_level(model, artefact.normalisation.traffic_max).ravel())
        cvs.append(cv.reshape(n_services, -1))
        shares.append(share.reshape(n_services, -1))
        persistences.append(persistence.reshape(n_services, -1))
        real_means.append(means.reshape(n_groups, n_services, -1))
        model = model[DAY_GROUP_OF_WEEK_GROUP] if weekly else model
        model_means.append(model.reshape(n_groups, n_services, -1))
        features.append(maps.cell_context)
    if not levels or sum(len(v) for v in levels) < bins:
        return None
    level, cv, share = np.concatenate(levels), np.concatenate(cvs, axis=1), np.concatenate(shares, axis=1)
    cell_means = {name: np.concatenate([m.mean(axis=0) for m in means], axis=1)   # [S, cells]
                  for name, means in (("model", model_means), ("real", real_means))}
    persistence = np.maximum(np.concatenate(persistences, axis=1), 0.0)  # anti-persistence is not modelled
    real, model = np.concatenate(real_means, axis=2), np.concatenate(model_means, axis=2)
    real_shape = unit_shapes(real)
    edges = np.quantile(level, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    which = np.digitize(level, edges)
    shape = np.ones((bins, n_groups, n_services))
    level_factor = np.ones((bins, n_services))
    target, daily = np.ones((bins, n_services)), np.zeros((bins, n_services))   # where no cell has a value
    persist = np.zeros((bins, n_services))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                      # a service absent from a bin
        for b in range(bins):
            cells = which == b
            shape[b] = np.nan_to_num(np.nanmean(real_shape[:, :, cells], axis=2), nan=1.0)
            real_sum, model_sum = real[:, :, cells].sum(axis=(0, 2)), model[:, :, cells].sum(axis=(0, 2))
            level_factor[b] = np.divide(real_sum, model_sum, out=np.ones_like(real_sum), where=model_sum > 0)
            for k in range(n_services):
                if np.isfinite(cv[k, cells]).any():
                    target[b, k] = float(np.nanmedian(cv[k, cells]))
                if np.isfinite(share[k, cells]).any():
                    daily[b, k] = float(np.nanmedian(share[k, cells]))
                if np.isfinite(persistence[k, cells]).any():
                    persist[b, k] = float(np.nanmedian(persistence[k, cells]))
    calibration = {"level_edges": [float(e) for e in edges], "weekly": weekly,
                   "lowest_level": {name: values.min(axis=1).tolist() for name, values in cell_means.items()},
                   "profile_shape": shape.round(6).tolist(), "level_factor": level_factor.round(6).tolist(),
                   "residual_cv": target.round(6).tolist(), "day_share": daily.round(6).tolist(),
                   "day_persistence": persist.round(6).tolist()}
    reference: dict[str, np.ndarray] = {}
    kept = np.isfinite(real_shape).any(axis=(0, 1))                          # cells with some traffic
    if neighbours > 0 and kept.any():
        context = np.concatenate(features)
        if reference_cells < kept.sum():
            rng = np.random.default_rng(derive_seed(seed, "series reference"))
            kept[rng.choice(np.flatnonzero(kept), int(kept.sum()) - reference_cells, replace=False)] = False
        mean, std = context[kept].mean(axis=0), context[kept].std(axis=0)
        std = np.where(std > MIN_CONTEXT_STD, std, 1.0)                     # an attribute constant over the cells
        calibration.update(neighbours=int(neighbours), context_mean=mean.round(6).tolist(),
                           context_std=std.round(6).tolist())
        reference = {"context": ((context[kept] - np.asarray(calibration["context_mean"]))
                                 / np.asarray(calibration["context_std"])).astype(np.float32),
                     "profile_shape": np.moveaxis(real_shape[:, :, kept], -1, 0).astype(np.float32),
                     "residual_cv": cv[:, kept].T.astype(np.float32), "day_share": share[:, kept].T.astype(np.float32),
                     "day_persistence": persistence[:, kept].T.astype(np.float32)}
    if log is not None:
        log(f"series calibration ({'hour-of-week' if weekly else 'hour-of-day x day-type'} profiles) per level bin: "
            "residual CV " + ", ".join(f"{r:.2f}" for r in target.mean(axis=1)) + "; day share "
            + ", ".join(f"{s:.2f}" for s in daily.mean(axis=1)) + "; day persistence "
            + ", ".join(f"{p:.2f}" for p in persist.mean(axis=1))
            + f" (means over services); level factors {level_factor.min():.2f} .. {level_factor.max():.2f}; "
            + (f"{len(reference['context'])} reference cells for {neighbours} context neighbours" if reference
               else "no context neighbours"))
    return calibration, reference


def calibrate_series_values(values: np.ndarray, times, maps: HourMapGenerator, seed: int,
                            draws: int = SERIES_PROFILE_DRAWS, neighbours: bool = True) -> np.ndarray:
    """Apply the model's series calibration to generated ``values [time, S, H, W]`` at ``times`` in place.

    The model's profile on the city (group means of the values and ``draws`` extra draws per group) gives each
    cell's level bin and model level per service; its profile becomes its calibrated level (:func:`cell_levels`)
    times its profile shape (:func:`cell_parameters`: from its context neighbours among the training cells, or with
    ``neighbours=False`` or a model without a reference, its level bin's; the same for the residual targets).
    The calendar-day means of each cell's variation around the model's profile are made to persist from day to
    day (:func:`persist_days`, the cell's day persistence); the variation is then scaled to the target
    coefficient of variation times the cell's new level, its day means and the rest separately so that the day
    means carry the target share.
    Everything per service. Returns the overall residual factors ``[S, H, W]`` (target over the model's root
    mean square residual; the day means and the rest get their own, :func:`residual_scales`)."""
    calibration = maps.artefact.series_calibration
    if calibration is None:
        raise AppshotInputError("the model has no series calibration (series_calibration is None)")
    if draws < 1:
        raise AppshotInputError(f"draws must be >= 1 (every group needs a map for the profile), got {draws}")
    dims = {"profile_shape": 3, "level_factor": 2, "residual_cv": 2, "day_share": 2, "day_persistence": 2}
    reference = context_reference(maps.artefact, neighbours)
    if any(np.ndim(calibration.get(key)) != n for key, n in dims.items()):
        raise AppshotInputError("the model's series calibration predates the current format (expected "
                                f"{', '.join(f'{k} with {n} dimensions' for k, n in dims.items())}); "
                                "retrain it or generate with calibrated=False")
    day_groups = hour_groups(times)
    weekly = calibration["weekly"]
    groups, _ = profile_groups(times, weekly)
    extra, extra_groups = profile_draws(maps, seed, draws)
    counts = np.bincount(day_groups, minlength=GROUPS) + np.bincount(extra_groups, minlength=GROUPS)
    sums = np.zeros((GROUPS, *values.shape[1:]))
    for g in range(GROUPS):
        sums[g] = values[day_groups == g].sum(axis=0, dtype=np.float64) + extra[extra_groups == g].sum(axis=0)
    model = sums / counts[:, None, None, None]
    which = np.digitize(cell_level(model, maps.artefact.normalisation.traffic_max), calibration["level_edges"])
    model = model[DAY_GROUP_OF_WEEK_GROUP if weekly else slice(None)]          # [G, S, H, W]
    level = cell_levels(model.mean(axis=0), calibration, which)                                       # [S, H, W]
    cells = cell_parameters(calibration, which, maps, reference)
    shape = cells["profile_shape"]                                                                    # [G, S, H, W]
    profile = (level * shape).astype(np.float32)
    for t, group in enumerate(groups):
        values[t] -= model[group]                                             # the residual, in place
    # a value's residual around a mean it is part of shrinks by 1 - 1 / n
    dof = float(np.sum(1.0 - 1.0 / counts[day_groups]))
    target = cells["residual_cv"] * level
    share = cells["day_share"]                                                # [S, H, W] both
    days = calendar_days(times)
    exact = day_means(values, days)                                           # [D, S, H, W], float64
    per_day = exact.astype(np.float32)
    persistence = cells["day_persistence"].astype(np.float32)
    if (persistence > 0).any():                                               # days follow each other
        persisting = persist_days(per_day, persistence)
        for t in range(len(values)):
            values[t] += persisting[days[t]] - per_day[days[t]]
        per_day, exact = persisting, day_means(values, days)                  # the shifted values' own means
    scale, day_scale, rest_scale = residual_scales(np.einsum("n...,n...->...", values, values),
                                                   _day_sum_of_squares(exact, days), target, share, dof)
    for t, group in enumerate(groups):
        daily = per_day[days[t]]
        values[t] = np.maximum(profile[group] + day_scale * daily + rest_scale * (values[t] - daily), 0.0)
    return scale


def context_reference(artefact: ModelArtefact, neighbours: bool = True) -> Mapping[str, np.ndarray] | None:
    """The series reference the model's cells take their context neighbours from; None with ``neighbours=False``
    or a calibration without neighbours (level bins); an error when the calibration needs one the model lacks."""
    if not neighbours or not (artefact.series_calibration or {}).get("neighbours"):
        return None
    if not artefact.series_reference:
        raise AppshotInputError("the model's series calibration uses context neighbours but the model has no "
                                "series reference (weights file without it); retrain it")
    return artefact.series_reference


def cell_levels(model_level: np.ndarray, calibration: dict, which: np.ndarray) -> np.ndarray:
    """``[S, H, W]`` each cell's calibrated mean level from the model's ``model_level [S, H, W]``: times its level
    bin's (``which [H, W]``) level factor, per service; a cell below the lowest level the model gave any training
    cell (``lowest_level``: ``model`` and ``real`` per service, absent in models calibrated before) is outside the
    model's range and gets the lowest real level of the training cells instead."""
    level = model_level * np.moveaxis(np.asarray(calibration["level_factor"])[which], -1, 0)
    lowest = calibration.get("lowest_level")
    if lowest is None:
        return level
    model_lowest, real_lowest = (np.asarray(lowest[name], dtype=float) for name in ("model", "real"))
    if model_lowest.shape != (len(model_level),) or real_lowest.shape != (len(model_level),):
        raise AppshotInputError(f"the model's lowest levels {model_lowest.shape} / {real_lowest.shape} do not fit "
                                f"its {len(model_level)} services; retrain it")
    below = model_level < model_lowest[:, None, None]
    return np.where(below, np.broadcast_to(real_lowest[:, None, None], level.shape), level)


def cell_parameters(calibration: dict, which: np.ndarray, maps: HourMapGenerator,
                    reference: Mapping[str, np.ndarray] | None = None, chunk: int = 1024) -> dict[str, np.ndarray]:
    """Each cell's :data:`CELL_PARAMETERS`: unit profile shape ``profile_shape [G, S, H, W]`` and
    ``residual_cv``, ``day_share``, ``day_persistence`` ``[S, H, W]``. With a ``reference`` (and ``neighbours``
    in the calibration): the mean over the cell's ``neighbours`` nearest reference cells in standardised context
    space (its level bin's value where none of them has one, as for a service they never carry); without: its
    level bin's (``which [H, W]``). Cells are done ``chunk`` at a time (bounded memory)."""
    out = {key: np.moveaxis(np.asarray(calibration[key])[which], -1, 0) for key in CELL_PARAMETERS[1:]}
    out["profile_shape"] = np.moveaxis(np.asarray(calibration["profile_shape"])[which], (0, 1), (-2, -1))
    k = int(calibration.get("neighbours", 0))
    if not reference or k < 1:
        return out
    _check_reference(calibration, reference, maps.cell_context.shape[1], out["profile_shape"].shape[:2])
    context = (maps.cell_context - np.asarray(calibration["context_mean"])) / np.asarray(calibration["context_std"])
    k = min(k, len(reference["context"]))
    nearest = KDTree(reference["context"]).query(context, k=k)[1].reshape(len(context), k)   # [cells, k]
    height, width = which.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                      # no neighbour carries a service
        for key in CELL_PARAMETERS:
            values = np.concatenate([np.nanmean(reference[key][nearest[start:start + chunk]], axis=1)
                                     for start in range(0, len(context), chunk)])  # [cells, (G,) S]
            values = np.moveaxis(values, 0, -1).reshape(*values.shape[1:], height, width)
            out[key] = np.where(np.isfinite(values), values, out[key])
    return out


def _check_reference(calibration: dict, reference: Mapping[str, np.ndarray], attributes: int,
                     groups_services: tuple[int, int]) -> None:
    """Clear errors for a series reference that does not fit its model (``attributes`` context attributes,
    ``groups_services`` profile groups and services)."""
    missing = [key for key in ("context", *CELL_PARAMETERS) if key not in reference]
    if missing:
        raise AppshotInputError(f"the model's series reference lacks {missing}; retrain it")
    cells, services = len(reference["context"]), groups_services[1]
    expected = {"context": (cells, attributes), "profile_shape": (cells, *groups_services),
                **{key: (cells, services) for key in CELL_PARAMETERS[1:]}}
    wrong = {key: tuple(np.shape(reference[key])) for key, shape in expected.items()
             if tuple(np.shape(reference[key])) != shape}
    sizes = {key: len(calibration.get(key, [])) for key in ("context_mean", "context_std")}
    finite = bool(np.isfinite(reference["context"]).all())
    if cells < 1 or wrong or any(n != attributes for n in sizes.values()) or not finite:
        raise AppshotInputError(
            f"the model's series reference does not fit the model ({attributes} context attributes, "
            f"{groups_services[0]} profile groups, {services} services; reference shapes {wrong or 'ok'}, "
            f"calibration sizes {sizes}, {cells} cells, finite context: {finite}); retrain it")


def residual_scales(squares: np.ndarray, day_squares: np.ndarray, target: np.ndarray, share: np.ndarray,
                    dof: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors (overall, for the calendar-day means, for the rest) giving a residual of sum of squares
    ``squares`` (``day_squares`` of it in its day means) over ``dof`` degrees of freedom the root mean square
    ``target``, ``share`` of its square in the day means. When one part is (numerically) 0, as in a series of
    one hour per day, the other carries the whole target."""
    rest_squares = np.maximum(squares - day_squares, 0.0)
    tiny = 1e-9 * squares
    share = np.where(rest_squares > tiny, share, 1.0)
    share = np.where(day_squares > tiny, share, 0.0)
    return (_scale_to(target, squares, dof), _scale_to(np.sqrt(share) * target, day_squares, dof),
            _scale_to(np.sqrt(1.0 - share) * target, rest_squares, dof))


def _scale_to(target: np.ndarray, squares: np.ndarray, dof: float) -> np.ndarray:
    """Factor giving a part of sum of squares ``squares`` over ``dof`` degrees of freedom the root mean square
    ``target`` (1 where the part is 0)."""
    current = np.sqrt(squares / dof)
    return np.divide(target, current, out=np.ones_like(target), where=current > 0).astype(np.float32)
