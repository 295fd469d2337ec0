"""Simulated hourly per-service traffic of a demo city, driven by its context layers.

The expected traffic of a cell at an hour is a fixed function of the context in its 3 x 3
neighbourhood (demand components from its own layers, spread by a base-station coverage kernel);
everything else is honest day-to-day noise: the city's day factor, a drifting service mix with
app-update days, a smooth "where people are today" field, transient events at leisure places, and
cell noise that is spatially correlated and shrinks with the cell's volume.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import convolve, gaussian_filter

from appshot_model.core.cube import make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import ATTRIBUTES, SERVICES
from appshot_model.traffic.demo.cities import DemoCity, city_rng, random_field
from appshot_model.traffic.demo.parameters import (BACKGROUND_RATE, CITY_DAY_SIGMA, CITY_RELATION_SIGMA, COMPONENTS,
                                                   COVERAGE_KERNEL, DAY_END_HOUR, DAY_FIELD_CITY, DAY_FIELD_LENGTH,
                                                   DAY_FIELD_SPARSE, DAY_START_HOUR, DEMAND_EXPONENT, DEMAND_PIVOT,
                                                   DEMAND_WEIGHTS, EVENTS_PER_DAY, MIX_ANCHORS, NIGHT_CAP, NIGHT_DRAWS,
                                                   NOISE_COMMON_SHARE, NOISE_LENGTH, NOISE_LONG_LENGTH,
                                                   NOISE_SESSIONS_PIVOT, NOISE_SESSIONS_POWER, SEED004_NONPEAK_SCALE,
                                                   SEED004_PARETO_SHAPE, SEED004_PEAK_RATE, SERVICE_BEHAVIOUR,
                                                   SERVICE_DAY_SIGMA, SERVICE_TREND_PER_WEEK, SESSION_BYTES,
                                                   SPARSE_LOAD_FRACTION, SPARSE_POWER, START, UPDATE_DAY_FACTOR,
                                                   UPDATE_DAY_PROBABILITY, UPDATE_SERVICES, WEEKDAY_WEEKEND_RATIO,
                                                   WEEKEND_EXTRA_SCALE, decile_curve, decile_position, diurnal_profile,
                                                   mix_table, service_target_shares)

#: bit/s carried by one session arrival per minute (SESSION_BYTES bytes each).
BIT_S_PER_SESSION_RATE = SESSION_BYTES * 8.0 / 60.0
DAYTYPES = ("weekday", "weekend")


def _context_layers(city: DemoCity, context: xr.DataArray) -> dict[str, np.ndarray]:
    if "attribute" not in context.dims:
        raise AppshotInputError(f"context cube of {city.name} has dims {context.dims}; 'attribute' is needed")
    names = [str(a) for a in context.attribute.values]
    missing = [a for a in ATTRIBUTES if a not in names]
    if missing:
        raise AppshotInputError(f"context cube of {city.name} lacks attributes {missing}")
    if tuple(context.shape[1:]) != city.grid.shape:
        raise AppshotInputError(
            f"context cube of {city.name} has grid {tuple(context.shape[1:])}, the city grid is {city.grid.shape}")
    values = np.asarray(context.transpose("attribute", "y", "x").values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise AppshotInputError(f"context cube of {city.name} has NaN/inf values")
    return {name: values[names.index(name)] for name in ATTRIBUTES}


def coverage_kernel() -> np.ndarray:
    """The 3 x 3 base-station coverage kernel (sums to 1)."""
    centre, edge, corner = COVERAGE_KERNEL
    return np.array([[corner, edge, corner], [edge, centre, edge], [corner, edge, corner]])


def demand_components(layers: dict[str, np.ndarray], relation: np.ndarray | None = None) -> np.ndarray:
    """[C, H, W] weekday day-time session arrivals per minute of each demand component
    (:data:`COMPONENTS`), a linear function of each cell's 3 x 3 context neighbourhood: the cell's
    own layers weighted by :data:`DEMAND_WEIGHTS` (times the city's ``relation`` multipliers [C])
    plus a land background, spread by :func:`coverage_kernel`."""
    land = 1.0 - np.clip(layers["landuse_sea"], 0.0, 1.0)
    relation = np.ones(len(COMPONENTS)) if relation is None else relation
    comps = []
    for c, name in enumerate(COMPONENTS):
        own = sum(weight * layers[attribute] for attribute, weight in DEMAND_WEIGHTS[name].items())
        own = relation[c] * own + BACKGROUND_RATE * land / len(COMPONENTS)
        comps.append(convolve(own, coverage_kernel(), mode="nearest"))
    comps = np.stack(comps)
    total = comps.sum(axis=0)
    return comps * ((total + 1e-12) / DEMAND_PIVOT) ** (DEMAND_EXPONENT - 1.0)


def _service_weights(tilt: np.ndarray) -> np.ndarray:
    """[2, 24, S, C] weight of each component's day-time rate in each service's rate per day type
    and hour: the component's activity relative to its weekday day-time mean, times the service's
    share and leaning (normalised so that a cell with the day-time mix of components gets
    exactly the service shares)."""
    mixes = np.stack([mix_table(MIX_ANCHORS[d]) for d in DAYTYPES])  # [2, 24, C]
    mean_mix = mixes[0, DAY_START_HOUR:DAY_END_HOUR].mean(axis=0)  # [C]
    lean = np.array([SERVICE_BEHAVIOUR[s][0] for s in SERVICES])  # [S, C]
    fractions = _service_fractions(tilt)  # [2, 24, S]
    leaned = mixes[:, :, None, :] * lean[None, None]  # [2, 24, S, C]
    norm = leaned.sum(axis=-1, keepdims=True)
    return fractions[..., None] * leaned / norm / mean_mix


def expected_rates(comps: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """[2, 24, S, cells] expected session arrivals per minute per day type, hour and service: the
    components weighted by :func:`_service_weights`, times the diurnal level of the cell (its night
    ratio from seed 004's deciles at its station-sized load). Weekends are scaled so that a cell
    with the day-time mix carries 1 / WEEKDAY_WEEKEND_RATIO of its weekday traffic."""
    n_comp, height, width = comps.shape
    flat = comps.reshape(n_comp, -1)
    station_load = convolve(comps.sum(axis=0), np.ones((3, 3)), mode="nearest").ravel()
    q = decile_position(SEED004_PEAK_RATE, station_load)
    pareto_mean = SEED004_PARETO_SHAPE / (SEED004_PARETO_SHAPE - 1.0)
    night_ratio = decile_curve(SEED004_NONPEAK_SCALE, q) * pareto_mean / decile_curve(SEED004_PEAK_RATE, q)
    weights = _service_weights(tilt)
    rates = np.empty((2, 24, len(SERVICES), height * width), dtype=np.float32)
    for d, daytype in enumerate(DAYTYPES):
        levels = diurnal_profile(daytype, night_ratio)  # [cells, 24]
        for h in range(24):
            rates[d, h] = levels[:, h] * np.tensordot(weights[d, h], flat, axes=1)
    typical = [diurnal_profile(d, 0.34).sum() for d in DAYTYPES]
    rates[1] *= np.float32(typical[0] / typical[1] / WEEKDAY_WEEKEND_RATIO * WEEKEND_EXTRA_SCALE)
    return rates


def simulate_traffic(city: DemoCity, context: xr.DataArray, seed: int, days: int = 28) -> xr.DataArray:
    """Simulated hourly per-service traffic [time, service, y, x] in bit/s for ``days`` days from
    Monday 2026-03-02 00:00 (naive local time), driven by ``context`` (from :func:`simulate_context`).

    Expected traffic: :func:`expected_rates` (a function of each cell's 3 x 3 context
    neighbourhood, with the city's moderate own multipliers per demand component and service
    taste) times :data:`BIT_S_PER_SESSION_RATE`. Day to day (:func:`_simulate_day`): city factor,
    drifting service mix and app-update days, a smooth field of where people are, events at
    leisure places, correlated cell noise shrinking with volume (day), Pareto noise (night, seed 004).
    """
    days = int(days)
    if days < 1:
        raise AppshotInputError(f"days must be >= 1, got {days}")
    layers = _context_layers(city, context)
    height, width = city.grid.shape
    setup = city_rng(seed, city, "traffic", "setup")
    relation = np.exp(CITY_RELATION_SIGMA * setup.standard_normal(len(COMPONENTS)))
    tilt = np.exp(0.05 * setup.standard_normal(len(SERVICES)))
    trends = setup.choice([-1.0, 1.0], len(SERVICES)) * setup.uniform(*SERVICE_TREND_PER_WEEK, len(SERVICES))
    comps = demand_components(layers, relation)
    rates = expected_rates(comps, tilt)
    leisure = comps[COMPONENTS.index("leisure")].ravel()
    sparse = sparse_share(rates[0], (height, width))
    times = pd.date_range(START, periods=24 * days, freq="h")
    values = np.empty((24 * days, len(SERVICES), height, width), dtype=np.float32)
    for k in range(days):
        rng = city_rng(seed, city, "traffic", "day", k)
        weekend = bool(times[24 * k].day_of_week >= 5)
        block = _simulate_day(rng, rates[int(weekend)], (height, width), _service_factors(rng, trends, k),
                              leisure, sparse, weekend)
        values[24 * k:24 * (k + 1)] = block.reshape(24, len(SERVICES), height, width)
    return make_traffic_cube(
        values, times, SERVICES, city.grid, units="bit/s", label="simulated", city=city.name, seed=int(seed),
        source="appshot demo world (appshot_model.traffic.demo.simulate_traffic)",
        parameters="service shares and arrival deciles: Zanella et al., IMC 2023 (nds-group/MobileTrafficDists); "
                   "properties: Xu et al., IEEE TNSM 2022, section IV")


def _service_factors(rng: np.random.Generator, trends: np.ndarray, day: int) -> np.ndarray:
    """[S] volume factors of day ``day``: the city's day factor times each service's drift (a
    weekly log-trend through mid-period, daily jitter) and app-update jumps."""
    log_factor = trends * (day - 13.5) / 7.0 + SERVICE_DAY_SIGMA * rng.standard_normal(len(SERVICES))
    log_factor += CITY_DAY_SIGMA * rng.standard_normal() - 0.5 * (CITY_DAY_SIGMA ** 2 + SERVICE_DAY_SIGMA ** 2)
    updates = rng.random(len(SERVICES)) < UPDATE_DAY_PROBABILITY
    jumps = rng.uniform(*UPDATE_DAY_FACTOR, len(SERVICES))
    factor = np.exp(log_factor)
    for s, service in enumerate(SERVICES):
        if service in UPDATE_SERVICES and updates[s]:
            factor[s] *= jumps[s]
    return factor


def sparse_share(weekday_rates: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[cells] how quiet each cell is relative to the busy part of its city, in (0, 1]: its
    station-sized (3 x 3) weekday day-time load against SPARSE_LOAD_FRACTION x the city's
    90th-percentile load (see :data:`SPARSE_POWER`). Shapes only the noise, not the expected traffic."""
    hours = slice(DAY_START_HOUR, DAY_END_HOUR)
    cell_load = weekday_rates[hours].sum(axis=1).mean(axis=0).reshape(shape)
    load = convolve(cell_load, np.ones((3, 3)), mode="nearest").ravel()
    reference = max(float(np.quantile(load, 0.9)), 1e-9)
    return 1.0 / (1.0 + (load / (SPARSE_LOAD_FRACTION * reference)) ** SPARSE_POWER)


def _simulate_day(rng: np.random.Generator, rates: np.ndarray, shape: tuple[int, int], factors: np.ndarray,
                  leisure: np.ndarray, sparse: np.ndarray, weekend: bool) -> np.ndarray:
    """[24, S, cells] bit/s of one day from its expected rates [24, S, cells] (sessions/min)."""
    block = rates * (factors.astype(np.float32) * np.float32(BIT_S_PER_SESSION_RATE))[None, :, None]
    fields = [_presence_field(rng, shape, sparse, rates[DAY_START_HOUR:DAY_END_HOUR].sum(axis=(0, 1)))
              for _ in range(2)]
    for h in range(24):
        a = min(1.0, max(0.0, (h - 6) / 14))
        block[h] *= ((1 - a) * fields[0] + a * fields[1]).astype(np.float32)
    _add_events(block, rng, shape, leisure, weekend)
    hours = np.arange(24)
    day = (hours >= DAY_START_HOUR) & (hours < DAY_END_HOUR)
    sessions_per_hour = 60.0 * rates[day].sum(axis=1, keepdims=True)  # [day hours, 1, cells]
    cv = (NOISE_SESSIONS_PIVOT / np.maximum(sessions_per_hour, 1e-3)) ** NOISE_SESSIONS_POWER
    noise = 1.0 + np.minimum(cv, 0.95) * np.tanh(_correlated_noise(rng, (int(day.sum()), len(SERVICES)), shape, sparse))
    before = block[day].sum(axis=-1, keepdims=True)
    block[day] *= noise
    block[day] *= before / np.maximum(block[day].sum(axis=-1, keepdims=True), 1e-30)  # moves, adds nothing
    block[~day] *= _night_noise(rng, (int((~day).sum()), len(SERVICES), shape[0] * shape[1]))
    return block


def _presence_field(rng: np.random.Generator, shape: tuple[int, int], sparse: np.ndarray,
                    load: np.ndarray) -> np.ndarray:
    """[cells] where people are today: 1 + amplitude x tanh of a smooth standard normal field
    (:data:`DAY_FIELD_LENGTH`), the amplitude growing with the cell's ``sparse`` share; bounded, so
    it never turns a quiet cell into a busy one; rescaled so that it moves traffic without
    changing the city's day-time total ``load`` [cells]."""
    length = max(3.0, DAY_FIELD_LENGTH * math.sqrt(shape[0] * shape[1]))
    amplitude = np.minimum(DAY_FIELD_CITY + DAY_FIELD_SPARSE * sparse, 0.95)
    field = 1.0 + amplitude * np.tanh(random_field(rng, shape, length).ravel())
    return field * (load.sum() / max(float((field * load).sum()), 1e-30))


def _unit_smoothing(rng: np.random.Generator, lead: tuple[int, int], shape: tuple[int, int],
                    length: float) -> np.ndarray:
    """[*lead, H, W] standard normal noise smoothed over ``length`` cells (unit variance), a
    NOISE_COMMON_SHARE of its variance shared by all services (second lead axis) of a cell. Drawn
    on a grid coarser by ``length // 1.5`` and interpolated bilinearly (same correlation length,
    a fraction of the cost)."""
    hours, services = lead
    step = max(1, int(length // 1.5))
    coarse = (math.ceil(shape[0] / step) + 2, math.ceil(shape[1] / step) + 2)
    common = rng.standard_normal((hours, 1, *coarse), dtype=np.float32)
    own = rng.standard_normal((hours, services, *coarse), dtype=np.float32)
    white = math.sqrt(NOISE_COMMON_SHARE) * common + math.sqrt(1.0 - NOISE_COMMON_SHARE) * own
    sigma = length / step
    smooth = gaussian_filter(white, (0, 0, sigma, sigma), mode="reflect")
    size = 2 * math.ceil(4 * sigma) + 1
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    smooth /= np.float32(np.sqrt((gaussian_filter(delta, sigma, mode="constant") ** 2).sum()))
    return _upsample(_upsample(smooth, step, shape[0], axis=2), step, shape[1], axis=3)


def _upsample(values: np.ndarray, step: int, size: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` onto ``size`` points ``step`` times denser."""
    if step == 1:
        return np.take(values, np.arange(size), axis=axis)
    position = np.arange(size) / step
    lower = np.floor(position).astype(int)
    weight = (position - lower).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = size
    weight = weight.reshape(shape)
    return (1 - weight) * np.take(values, lower, axis=axis) + weight * np.take(values, lower + 1, axis=axis)


def _correlated_noise(rng: np.random.Generator, lead: tuple[int, int], shape: tuple[int, int],
                      long_share: np.ndarray) -> np.ndarray:
    """[*lead, cells] standard normal cell noise: short-range where ``long_share`` [cells] is 0
    (dense stations), long-range where it is 1 (sparse stations)."""
    short = _unit_smoothing(rng, lead, shape, NOISE_LENGTH).reshape(*lead, -1)
    long = _unit_smoothing(rng, lead, shape, NOISE_LONG_LENGTH).reshape(*lead, -1)
    weight = np.sqrt(long_share).astype(np.float32)
    return np.sqrt(np.float32(1.0) - weight ** 2) * short + weight * long


def _night_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Mean-one factor: mean of NIGHT_DRAWS Pareto(shape 1.765) draws capped at NIGHT_CAP."""
    alpha = SEED004_PARETO_SHAPE
    total = np.zeros(shape, dtype=np.float32)
    for _ in range(NIGHT_DRAWS):
        u = rng.random(shape, dtype=np.float32)
        np.maximum(u, np.float32(1e-7), out=u)
        draw = u ** np.float32(-1.0 / alpha)
        np.minimum(draw, np.float32(NIGHT_CAP), out=draw)
        total += draw
    capped_mean = 1.0 + (1.0 - NIGHT_CAP ** (1.0 - alpha)) / (alpha - 1.0)
    total *= np.float32(1.0 / (NIGHT_DRAWS * capped_mean))
    return total


def _add_events(block: np.ndarray, rng: np.random.Generator, shape: tuple[int, int],
                leisure: np.ndarray, weekend: bool) -> None:
    """Transient local surges (matches, concerts, markets): a Gaussian blob at a cell drawn in
    proportion to its leisure demand (leisure land, tourism, parking), a few hours long,
    multiplying every service there."""
    height, width = shape
    if leisure.sum() <= 0:
        return
    weight = leisure / leisure.sum()
    n_events = rng.poisson(EVENTS_PER_DAY * (1.3 if weekend else 1.0) * max(0.5, math.sqrt(height * width) / 60))
    for _ in range(n_events):
        r0, c0 = divmod(int(rng.choice(weight.size, p=weight)), width)
        radius = rng.uniform(0.7, 1.8)
        amplitude = rng.lognormal(math.log(1.0), 0.5)
        start = int(rng.integers(DAY_START_HOUR, DAY_END_HOUR - 1))
        length = int(rng.integers(2, 6))
        span = int(math.ceil(3 * radius))
        r_lo, r_hi = max(0, r0 - span), min(height, r0 + span + 1)
        c_lo, c_hi = max(0, c0 - span), min(width, c0 + span + 1)
        rr, cc = np.meshgrid(np.arange(r_lo, r_hi), np.arange(c_lo, c_hi), indexing="ij")
        blob = 1.0 + amplitude * np.exp(-0.5 * ((rr - r0) ** 2 + (cc - c0) ** 2) / radius ** 2)
        idx = (rr * width + cc).ravel()
        hours = slice(start, min(24, start + length))
        block[hours][:, :, idx] *= blob.ravel().astype(np.float32)


def _service_fractions(tilt: np.ndarray) -> np.ndarray:
    """[2, 24, S] fraction of each hour's traffic per service: target shares (seed 004) tilted by
    hour; adjusted (iterative proportional fitting) so that the whole-period shares, weighted by
    the diurnal profile, equal the targets times the city's taste ``tilt``."""
    target = np.array([service_target_shares()[s] for s in SERVICES]) * tilt
    target /= target.sum()
    hours = np.arange(24)
    hourly = np.stack([np.exp(SERVICE_BEHAVIOUR[s][2] * np.cos(2 * math.pi * (hours - SERVICE_BEHAVIOUR[s][1]) / 24))
                       for s in SERVICES], axis=1)  # [24, S]
    profile = np.stack([diurnal_profile("weekday") * 5, diurnal_profile("weekend") * 2 / WEEKDAY_WEEKEND_RATIO])
    weights = target.copy()
    for _ in range(50):
        frac = hourly * weights
        frac /= frac.sum(axis=1, keepdims=True)
        achieved = np.einsum("dh,hs->s", profile, frac) / profile.sum()
        weights *= target / achieved
    frac = hourly * weights
    frac /= frac.sum(axis=1, keepdims=True)
    return np.stack([frac, frac])
