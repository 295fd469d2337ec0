"""AppShot for every hour of the day: hour names, hour-of-day context channels, and training either one
model per hour (as the paper: seed 000 §VII-B stitches 24 hourly models) or one model conditioned on the hour.

The hour-conditioned model needs no network change: context channels constant over the map are appended to
the city's context (:data:`HOUR_ATTRIBUTES`): ``sin(2 pi k h / 24)`` and ``cos(2 pi k h / 24)`` for the daily
harmonics k = 1 .. :data:`HOUR_HARMONICS` (the first harmonic alone gave a smooth sinusoid without the morning
and evening peaks, ``docs/hourly.md``) and ``weekend`` (0/1); every (city, hour, day type) becomes one training "city" of
:func:`appshot_model.model.fit.train_peak_hour_model`, so the L1 target is the conditional mean of that
city at that hour. Which of the two is used is decided by measurement (``docs/hourly.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import PEAK_HOURS
from appshot_model.core.seeds import derive_seed
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.calibrate import central_window, context_window, level_shifts, window_features
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.fit import train_peak_hour_model
from appshot_model.model.generate import prepare_context
from appshot_model.model.noise import draw_noise
from appshot_model.model.normalise import fit_normalisation_to_cubes
from appshot_model.traffic.peaks import DAYTYPES, hour_snapshots, peak_snapshots

#: Hour-of-day names, ``"00"`` .. ``"23"`` (the hour at which the one-hour window starts).
HOURS: tuple[str, ...] = tuple(f"{h:02d}" for h in range(24))
#: Daily harmonics encoding the hour of day in the hour-conditioned model.
HOUR_HARMONICS = 4
#: Context channels of the hour-conditioned model, appended after the city's attributes.
HOUR_ATTRIBUTES: tuple[str, ...] = (*(f"hour_{f}{k}" for k in range(1, HOUR_HARMONICS + 1) for f in ("sin", "cos")),
                                    "weekend")
#: Noise draws per training city and (day type, hour) of :func:`calibrate_hour_levels`.
HOUR_LEVEL_SAMPLES = 4
#: ``peak_hour`` of the hour-conditioned artefact.
CONDITIONED = "hour-conditioned"
_RANGE = re.compile(r"^\s*(\d{1,2})\s*(?:-\s*(\d{1,2})\s*)?$")


def hour_of_day(name: str) -> int:
    """Hour of day 0-23 of an hour name: ``"00"`` .. ``"23"`` or a peak name (``morning`` -> 8)."""
    if name in PEAK_HOURS:
        return PEAK_HOURS[name]
    if name in HOURS:
        return int(name)
    raise AppshotInputError(f"unknown hour {name!r}; expected '00'..'23' or one of {sorted(PEAK_HOURS)}")


def hour_partition_snapshots(traffic: xr.DataArray, name: str) -> xr.DataArray:
    """The weekday snapshots of an hour partition: :func:`peak_snapshots` for a peak name, else
    :func:`hour_snapshots` of weekdays at hour ``"00"`` .. ``"23"``."""
    if name in PEAK_HOURS:
        return peak_snapshots(traffic, name)
    return hour_snapshots(traffic, hour_of_day(name), "weekday")


def parse_hours(spec: str) -> list[int]:
    """Hours of day from a spec such as ``"0-23"``, ``"8,12,17"`` or ``"22-23,0-5"`` (sorted, unique)."""
    hours: set[int] = set()
    for part in str(spec).split(","):
        match = _RANGE.match(part)
        first, last = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (-1, -1)
        if not match or not 0 <= first <= last <= 23:
            raise AppshotInputError(f"hours {spec!r}: cannot read {part!r}; expected hours 0-23 as 'H', 'H1-H2' "
                                    f"(H1 <= H2) or a comma-separated list of those")
        hours.update(range(first, last + 1))
    return sorted(hours)


def hour_channels(hour: int, weekend: bool, height: int, width: int) -> np.ndarray:
    """The :data:`HOUR_ATTRIBUTES` of one hour and day type, constant over ``[len(HOUR_ATTRIBUTES), height, width]``
    (float32)."""
    angles = 2.0 * np.pi * int(hour) / 24.0 * np.arange(1, HOUR_HARMONICS + 1)
    values = np.array([*np.stack([np.sin(angles), np.cos(angles)], axis=1).ravel(), float(bool(weekend))],
                      dtype=np.float32)
    return np.broadcast_to(values[:, None, None], (len(HOUR_ATTRIBUTES), height, width)).copy()


def with_hour_context(context: xr.DataArray, hour: int, weekend: bool) -> xr.DataArray:
    """``context [attribute, y, x]`` with the :data:`HOUR_ATTRIBUTES` of ``hour`` appended (CRS kept)."""
    extra = xr.DataArray(hour_channels(hour, weekend, context.sizes["y"], context.sizes["x"]),
                         dims=("attribute", "y", "x"),
                         coords={"attribute": list(HOUR_ATTRIBUTES), "y": context.y, "x": context.x})
    combined = xr.concat([context.transpose("attribute", "y", "x"), extra], dim="attribute")
    combined.attrs = dict(context.attrs)
    return combined.rio.write_crs(context.rio.crs).rio.write_transform(context.rio.transform())


def train_hour_model(contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                     attributes: Sequence[str], hour: int, model_cfg: ModelConfig, train_cfg: TrainConfig,
                     daytype: str = "weekday", log: Callable[[str], None] | None = None) -> ModelArtefact:
    """One AppShot model of hour ``hour`` (0-23) from the training cities' hourly cubes ``[time, service, y, x]``:
    their ``daytype`` snapshots at that hour, normalisation fitted on them (the paper's per-hour models)."""
    snapshots = {c: hour_snapshots(t, hour, daytype) for c, t in traffic.items()}
    cities = sorted(snapshots)
    norm = fit_normalisation_to_cubes(contexts, snapshots, cities, attributes)
    return train_peak_hour_model({c: contexts[c] for c in cities}, snapshots, list(attributes), norm.to_dict(),
                                 model_cfg, train_cfg, hour=HOURS[hour], log=log)


def train_hour_conditioned_model(contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                                 attributes: Sequence[str], model_cfg: ModelConfig, train_cfg: TrainConfig,
                                 hours: Sequence[int] = range(24), daytypes: Sequence[str] = DAYTYPES,
                                 hour_levels: bool = True, series_calibration: bool = True,
                                 log: Callable[[str], None] | None = None) -> ModelArtefact:
    """One AppShot model for all ``hours`` and ``daytypes``, conditioned on the hour through the
    :data:`HOUR_ATTRIBUTES` context channels; each (city, hour, day type) is one training entry. With
    ``hour_levels`` the mean level per day type, hour and service is then calibrated on the training cities
    (:func:`calibrate_hour_levels`); with ``series_calibration`` each cell's daily profile and the ratio of its
    residual to profile variation in the hourly series (:func:`appshot_model.model.residual.calibrate_series`)."""
    unknown = sorted(set(daytypes) - set(DAYTYPES))
    if unknown or not daytypes:
        raise AppshotInputError(f"day types {list(daytypes)}: expected a non-empty subset of {DAYTYPES}")
    entries_ctx, entries_traffic = {}, {}
    for city in sorted(traffic):
        for daytype in daytypes:
            for hour in hours:
                key = f"{city}@{hour:02d}-{daytype}"
                entries_ctx[key] = with_hour_context(contexts[city], hour, daytype == "weekend")
                entries_traffic[key] = hour_snapshots(traffic[city], hour, daytype)
    keys = sorted(entries_traffic)
    names = [*attributes, *HOUR_ATTRIBUTES]
    norm = fit_normalisation_to_cubes(entries_ctx, entries_traffic, keys, names)
    # the hour channels already lie in [-1, 1]; a fitted maximum would be ~0 for some hour subsets
    norm.context_scale[-len(HOUR_ATTRIBUTES):] = [1.0] * len(HOUR_ATTRIBUTES)
    norm.context_log1p[-len(HOUR_ATTRIBUTES):] = [False] * len(HOUR_ATTRIBUTES)
    artefact = train_peak_hour_model(entries_ctx, entries_traffic, names, norm.to_dict(), model_cfg, train_cfg,
                                     hour=CONDITIONED, log=log)
    if hour_levels:
        artefact.hour_level_shift = calibrate_hour_levels(
            artefact, contexts, traffic, train_cfg.seed, log=log).tolist()
    if series_calibration:
        from appshot_model.model.residual import calibrate_series  # residual -> hourmap -> hours

        calibrated = calibrate_series(artefact, contexts, traffic, train_cfg.seed, log=log)
        if calibrated is not None:
            artefact.series_calibration, artefact.series_reference = calibrated
    return artefact


def calibrate_hour_levels(artefact: ModelArtefact, contexts: Mapping[str, xr.DataArray],
                          traffic: Mapping[str, xr.DataArray], seed: int, samples: int = HOUR_LEVEL_SAMPLES,
                          log: Callable[[str], None] | None = None) -> np.ndarray:
    """Logit shifts ``[2 (weekday, weekend), 24, S]`` making an hour-conditioned model's mean level per day type,
    hour of day and service on the training cities equal the real one (beyond the paper).

    The hour reaches the network only through the first convolution, and at a small budget its daily profile
    comes out wrong even on the training cities (measured on the demo world: generated / real level from 0.74
    at 05:00 to 1.35 at 08:00). For each (day type, hour): ``samples`` fixed noise draws per city on a central
    window of at most :data:`appshot_model.model.calibrate.WINDOW` cells, then the per-service Newton shift of
    :mod:`appshot_model.model.calibrate` (cell-weighted over the cities). Groups without real snapshots keep 0."""
    gen, cfg, norm = artefact.generator.cpu().eval(), artefact.model_cfg, artefact.normalisation
    noise = torch.Generator().manual_seed(derive_seed(seed, "hour levels"))
    shifts = np.zeros((len(DAYTYPES), 24, len(artefact.services)))
    # the city's context is normalised once; only the (constant) hour channels change per group
    hour_index = [i for i, a in enumerate(artefact.attributes) if a in HOUR_ATTRIBUTES]
    hour_scale = np.asarray(norm.context_scale, dtype=np.float32)[hour_index]
    windows: dict[str, np.ndarray] = {}
    for d, daytype in enumerate(DAYTYPES):
        for hour in range(24):
            logits, targets, cells = [], [], []
            for city in sorted(traffic):
                real = hour_snapshots(traffic[city], hour, daytype)
                if real.sizes["time"] == 0:
                    continue
                rows, cols = central_window(real.sizes["y"], real.sizes["x"])
                if city not in windows:
                    context = prepare_context(artefact, with_hour_context(contexts[city], 0, False))
                    windows[city] = context_window(context, cfg, rows, cols)
                window = windows[city]
                window[hour_index] = (hour_channels(hour, daytype == "weekend", *window.shape[1:])
                                      / hour_scale[:, None, None])
                height, width = rows.stop - rows.start, cols.stop - cols.start
                z, field = draw_noise(noise, cfg, samples, height, width)
                features = window_features(gen, window)
                with torch.inference_mode():
                    out = gen.head(features.expand(samples, -1, -1, -1), z, field)
                logits.append(torch.logit(out.double(), eps=1e-7))
                real_window = np.asarray(real.sel(service=artefact.services).transpose("time", "service", "y", "x")
                                         .values[:, :, rows, cols])
                targets.append(norm.normalise_traffic(real_window).mean(axis=(0, 2, 3)))
                cells.append(height * width)
            if logits:
                weights = np.asarray(cells, np.float64)
                shifts[d, hour] = level_shifts(logits, np.average(targets, axis=0, weights=weights), weights)
    if log is not None:
        log(f"hour levels: logit shifts {shifts.min():+.2f} .. {shifts.max():+.2f} over day types, hours and services")
    return shifts


def context_attributes(artefact: ModelArtefact) -> list[str]:
    """The context attributes a model reads from a context cube (its attributes without :data:`HOUR_ATTRIBUTES`)."""
    return [str(a) for a in artefact.attributes if a not in HOUR_ATTRIBUTES]
