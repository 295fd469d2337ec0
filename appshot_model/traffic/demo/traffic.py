"""Simulated hourly per-service traffic of a demo city, driven by its context layers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import distance_transform_edt, gaussian_filter

from appshot_model.core.cube import make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import ATTRIBUTES, SERVICES
from appshot_model.traffic.demo.cities import DemoCity, city_rng, random_field
from appshot_model.traffic.demo.parameters import (CELL_HOUR_SIGMA, CITY_DAY_SIGMA, DAY_END_HOUR, DAY_FIELD_SIGMA,
                                                   DAY_START_HOUR, EVENTS_PER_DAY, MIX_ANCHORS, NIGHT_CAP, NIGHT_DRAWS,
                                                   SEED004_NONPEAK_SCALE, SEED004_PARETO_SHAPE, SEED004_PEAK_CV,
                                                   SEED004_PEAK_RATE, SERVICE_BEHAVIOUR, SERVICE_FIELD_SIGMA,
                                                   SESSION_BYTES, START, WEEKDAY_WEEKEND_RATIO, decile_curve,
                                                   diurnal_profile, mix_table, service_target_shares)


def _quantile_ranks(values: np.ndarray) -> np.ndarray:
    """Mid-rank quantiles in (0, 1) of a flat array (ties broken by position, deterministic)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    return (ranks + 0.5) / values.size


# --------------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------------

def _standardise(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.log1p(np.clip(x, 0.0, None))
    mean, std = x[mask].mean(), x[mask].std()
    return (x - mean) / (std if std > 0 else 1.0)


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


def _components(rng: np.random.Generator, city: DemoCity, layers: dict[str, np.ndarray]):
    """Home, work and leisure/transit demand maps [3, H, W] (each mean 1 over land) and the
    city's random coefficients (its own context-traffic relation)."""
    shape = city.grid.shape
    land = layers["landuse_sea"] < 0.5
    if not land.any():
        land = np.ones(shape, dtype=bool)
    work_raw = (layers["poi_office"] + 0.4 * layers["poi_shop"] + 12.0 * layers["landuse_industrial_commercial"]
                + 6.0 * layers["landuse_air_sea_ports"] + 3.0 * layers["landuse_continuous_urban"])
    leisure_raw = (layers["poi_shop"] + layers["poi_restaurant"] + layers["poi_cafe"] + layers["poi_tourism"]
                   + 2.0 * layers["poi_public_transport"] + 4.0 * layers["poi_railway_stations"]
                   + layers["poi_tram_stops"] + (layers["poi_primary_roads"] + layers["poi_motorways"]) / 250.0
                   + 6.0 * layers["landuse_leisure_facilities"])
    z_pop = _standardise(layers["population"], land)
    z_work = _standardise(work_raw, land)
    z_leisure = _standardise(leisure_raw, land)
    coef = {
        "home_population": rng.uniform(0.45, 1.1),
        "work_context": rng.uniform(0.5, 1.2),
        "work_population": rng.uniform(0.0, 0.4),
        "leisure_context": rng.uniform(0.4, 1.1),
        "leisure_population": rng.uniform(-0.2, 0.4),
        "hidden_sigma": rng.uniform(0.55, 0.85),
    }
    hidden = [coef["hidden_sigma"] * random_field(rng, shape, rng.uniform(1.5, 3.5)) for _ in range(3)]
    logs = [
        coef["home_population"] * z_pop + hidden[0],
        coef["work_context"] * z_work + coef["work_population"] * z_pop + hidden[1],
        coef["leisure_context"] * z_leisure + coef["leisure_population"] * z_pop + hidden[2],
    ]
    comps = np.stack([np.exp(np.clip(v, -8, 8)) for v in logs])
    comps /= comps[:, land].mean(axis=1)[:, None, None]
    return comps, coef


def simulate_traffic(city: DemoCity, context: xr.DataArray, seed: int, days: int = 28) -> xr.DataArray:
    """Simulated hourly per-service traffic [time, service, y, x] in bit/s for ``days`` days from
    Monday 2026-03-02 00:00 (naive local time), driven by ``context`` (from :func:`simulate_context`).

    Per cell, three demand components (home ~ population; work ~ offices, commerce, industry;
    leisure/transit ~ shops, restaurants, transport, roads) each modulated by a hidden smooth
    field absent from the context, with per-city random coefficients; their mix changes by hour
    (and weekday/weekend), and each service leans towards them differently. The cells' load
    ranks are mapped onto seed 004's per-decile peak arrival rates (sessions/min), times
    :data:`SESSION_BYTES` and ``city.volume_scale``. Over time: the diurnal profile
    (:func:`diurnal_profile`) with each cell's night ratio from seed 004's deciles, service shares
    that follow seed 004 over the whole period but tilt by hour, a smooth random field per day,
    a few transient events per day, and noise per cell-hour (day: Gaussian with CV 0.1, night:
    Pareto with shape 1.765, seed 004).
    """
    days = int(days)
    if days < 1:
        raise AppshotInputError(f"days must be >= 1, got {days}")
    layers = _context_layers(city, context)
    height, width = city.grid.shape
    n_cells = height * width
    n_services = len(SERVICES)
    setup = city_rng(seed, city, "traffic", "setup")

    comps, _ = _components(setup, city, layers)
    land_frac = 1.0 - np.clip(layers["landuse_sea"], 0.0, 1.0)
    land = land_frac > 0.5 if (land_frac > 0.5).any() else np.ones((height, width), dtype=bool)

    # Map the cells' static load ranks onto the published per-decile arrival rates.
    static_mix = mix_table(MIX_ANCHORS["weekday"])[DAY_START_HOUR:DAY_END_HOUR].mean(axis=0)
    load = np.tensordot(static_mix, comps, axes=1).ravel()
    q = _quantile_ranks(load)
    rate = decile_curve(SEED004_PEAK_RATE, q)  # sessions / minute at the peak level
    pareto_mean = SEED004_PARETO_SHAPE / (SEED004_PARETO_SHAPE - 1.0)
    night_ratio = (decile_curve(SEED004_NONPEAK_SCALE, q) * pareto_mean / rate).reshape(height, width)
    cell_scale = (_with_sea_spill(rate.reshape(height, width), land_frac) / load.reshape(height, width))
    comps = comps * cell_scale[None]
    rate_total = float((cell_scale.ravel() * load).sum())  # sessions/min over the city's cells
    volume = city.volume_scale * SESSION_BYTES * 8.0 / 60.0  # bit/s per (session / minute)

    # Per-service persistent spatial fields, spatial leanings and diurnal tilts.
    service_field = np.stack([np.exp(SERVICE_FIELD_SIGMA * random_field(setup, (height, width), setup.uniform(1.0, 2.5))
                                     - 0.5 * SERVICE_FIELD_SIGMA ** 2) for _ in SERVICES])
    lean = np.array([SERVICE_BEHAVIOUR[s][0] for s in SERVICES])  # [S, 3]
    city_tilt = np.exp(0.08 * setup.standard_normal(n_services))

    # Expected maps per (daytype, hour, service): [2, 24, S, cells].
    daytypes = ("weekday", "weekend")
    base = np.empty((2, 24, n_services, n_cells), dtype=np.float32)
    hour_weights = np.empty((2, 24))
    fractions = _service_fractions(city_tilt)  # [2, 24, S]
    for d, daytype in enumerate(daytypes):
        mix = mix_table(MIX_ANCHORS[daytype])  # [24, 3]
        levels = diurnal_profile(daytype, night_ratio)  # [H, W, 24]
        for h in range(24):
            level = levels[..., h]
            for s in range(n_services):
                weights = mix[h] * lean[s]
                spatial = np.tensordot(weights / weights.sum(), comps, axes=1) * service_field[s]
                spatial *= rate_total / spatial.sum()  # the hour's volume comes from the profile only
                base[d, h, s] = (level * spatial).ravel() * fractions[d, h, s]
        hour_weights[d] = base[d].sum(axis=(1, 2))
    # Scale so that weekday/weekend = WEEKDAY_WEEKEND_RATIO and the mean weekday day-time hour
    # of an average cell carries the decile rate.
    base[1] *= hour_weights[0].sum() / hour_weights[1].sum() / WEEKDAY_WEEKEND_RATIO
    norm = hour_weights[0, DAY_START_HOUR:DAY_END_HOUR].mean() / rate_total
    base *= np.float32(volume / norm)

    times = pd.date_range(START, periods=24 * days, freq="h")
    values = np.empty((24 * days, n_services, height, width), dtype=np.float32)
    events_rng = city_rng(seed, city, "traffic", "events")
    leisure_weight = (comps[2] * land).ravel()
    leisure_weight = leisure_weight / leisure_weight.sum()
    hours = np.arange(24)
    peak_hours = (hours >= DAY_START_HOUR) & (hours < DAY_END_HOUR)
    for k in range(days):
        rng = city_rng(seed, city, "traffic", "day", k)
        weekend = times[24 * k].day_of_week >= 5
        block = base[int(weekend)].copy()  # [24, S, cells]
        # Day-level: city volume factor and a smooth field drifting between morning and evening.
        fields = [np.exp(DAY_FIELD_SIGMA * random_field(rng, (height, width), 1.5) - 0.5 * DAY_FIELD_SIGMA ** 2).ravel()
                  for _ in range(2)]
        city_factor = math.exp(CITY_DAY_SIGMA * rng.standard_normal() - 0.5 * CITY_DAY_SIGMA ** 2)
        for h in range(24):
            a = min(1.0, max(0.0, (h - 6) / 14))
            block[h] *= ((1 - a) * fields[0] + a * fields[1]).astype(np.float32) * np.float32(city_factor)
        _add_events(block, events_rng, (height, width), leisure_weight, weekend)
        # Common cell-hour noise (all services), then service noise: Gaussian CV 0.1 by day,
        # capped Pareto means at night (seed 004).
        common = np.exp(CELL_HOUR_SIGMA * rng.standard_normal((24, 1, n_cells), dtype=np.float32)
                        - np.float32(0.5 * CELL_HOUR_SIGMA ** 2))
        block *= common
        day_noise = rng.standard_normal((int(peak_hours.sum()), n_services, n_cells), dtype=np.float32)
        day_noise *= np.float32(SEED004_PEAK_CV)
        day_noise += 1.0
        np.maximum(day_noise, 0.05, out=day_noise)
        block[peak_hours] *= day_noise
        block[~peak_hours] *= _night_noise(rng, (int((~peak_hours).sum()), n_services, n_cells))
        values[24 * k:24 * (k + 1)] = block.reshape(24, n_services, height, width)

    return make_traffic_cube(
        values, times, SERVICES, city.grid, units="bit/s", label="simulated", city=city.name, seed=int(seed),
        source="appshot demo world (appshot_model.demo.simulate_traffic)",
        parameters="service shares and arrival deciles: Zanella et al., IMC 2023 (nds-group/MobileTrafficDists); "
                   "properties: Xu et al., IEEE TNSM 2022, section IV")


def _with_sea_spill(rate: np.ndarray, land_frac: np.ndarray) -> np.ndarray:
    """Rates with the sea part of each cell replaced by spill-over from the coast: cells carry the
    traffic of the antennas that cover them, so sea near the shore sees part of the nearby land
    demand (half at the shore, decaying over ~3 cells, 8 % offshore: ships, ferries and the
    reach of coastal antennas; assumption)."""
    sea = 1.0 - land_frac
    if not (sea > 0).any():
        return rate
    wet = land_frac < 0.5
    distance = distance_transform_edt(wet) if (~wet).any() else np.full(rate.shape, 1e3)
    weight = gaussian_filter(land_frac, 4.0, mode="nearest")
    nearby = gaussian_filter(rate * land_frac, 4.0, mode="nearest") / np.maximum(weight, 1e-6)
    spill = nearby * (0.08 + 0.5 * np.exp(-distance / 3.0))
    return land_frac * rate + sea * np.minimum(spill, rate.max())


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
                weight: np.ndarray, weekend: bool) -> None:
    """Transient local surges (gatherings, matches, markets): a Gaussian blob at a leisure-weighted
    cell, a few hours long, multiplying every service there."""
    height, width = shape
    n_events = rng.poisson(EVENTS_PER_DAY * (1.3 if weekend else 1.0) * max(0.5, math.sqrt(height * width) / 60))
    for _ in range(n_events):
        cell = int(rng.choice(weight.size, p=weight))
        r0, c0 = divmod(cell, width)
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


def _service_fractions(city_tilt: np.ndarray) -> np.ndarray:
    """[2, 24, S] fraction of each hour's traffic per service: target shares (seed 004) tilted by
    hour; adjusted (iterative proportional fitting) so that the whole-period shares, weighted by
    the diurnal profile, equal the targets times the city's taste ``city_tilt``."""
    target = np.array([service_target_shares()[s] for s in SERVICES]) * city_tilt
    target /= target.sum()
    hours = np.arange(24)
    tilt = np.stack([np.exp(SERVICE_BEHAVIOUR[s][2] * np.cos(2 * math.pi * (hours - SERVICE_BEHAVIOUR[s][1]) / 24))
                     for s in SERVICES], axis=1)  # [24, S]
    profile = np.stack([diurnal_profile("weekday") * 5, diurnal_profile("weekend") * 2 / WEEKDAY_WEEKEND_RATIO])
    weights = target.copy()
    for _ in range(50):
        frac = tilt * weights
        frac /= frac.sum(axis=1, keepdims=True)
        achieved = np.einsum("dh,hs->s", profile, frac) / profile.sum()
        weights *= target / achieved
    frac = tilt * weights
    frac /= frac.sum(axis=1, keepdims=True)
    return np.stack([frac, frac])
