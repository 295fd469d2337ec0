"""Parameters of the demo world: published figures (seed 004) and the simulator's assumptions.

Published numbers come from the session-level study of Zanella et al., "Characterizing and
Modeling Session-Level Mobile Traffic Demands from Large-Scale Measurements", ACM IMC 2023
("seed 004"), through its coefficient release ``nds-group/MobileTrafficDists``; the tests check
them against the CSV files. The temporal shapes follow the AppShot paper (Xu et al., IEEE TNSM
2022, section IV); everything else is an assumption, documented next to its constant and in
``docs/demo_world.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import SERVICES

# --------------------------------------------------------------------------------------------
# Published parameters (seed 004) -- checked against the CSV files by the tests.
# --------------------------------------------------------------------------------------------

#: The published numbers used here, as released (``seed004.json`` beside this module).
SEED004 = json.loads((Path(__file__).with_name("seed004.json")).read_text())
#: Rows of ``sessions_share.csv`` (seed 004, Table 1 as released in nds-group/MobileTrafficDists):
#: app -> (percent of sessions, percent of traffic volume). Only the apps used here.
SEED004_SHARES: dict[str, tuple[float, float]] = {app: tuple(v) for app, v in SEED004["sessions_share"].items()}

#: Which seed-004 apps stand for each AppShot service. Same-name apps are summed over their
#: variants (main + videos, Facebook + Facebook Live). ``sessions_share.csv`` has no YouTube, Apple Store,
#: iTunes or Google Play rows (the volume and duration tables do have a Youtube row, used by
#: :mod:`appshot_model.sessions`); the nearest kind of app stands in (assumption): the live/video
#: platform Twitch for YouTube, Apple's content service iCloud for the Apple Store, the music
#: service Deezer for iTunes and the online store Amazon for Google Play.
SERVICE_APPS: dict[str, tuple[str, ...]] = {
    "youtube": ("Twitch",),
    "instagram": ("Instagram (main)", "Instagram (videos)"),
    "snapchat": ("SnapChat",),
    "whatsapp": ("WhatsApp",),
    "netflix": ("Netflix",),
    "apple_store": ("Apple iCloud",),
    "itunes": ("Deezer",),
    "facebook": ("Facebook", "Facebook Live"),
    "twitter": ("Twitter (main)", "Twitter (videos)"),
    "google_play": ("Amazon",),
}

#: ``arrival_coefs.csv`` (seed 004, section 5.1): load decile -> mean peak-hour session arrivals
#: per minute at one base station (Gaussian ``loc``; its ``scale`` is loc / 10).
SEED004_PEAK_RATE: dict[float, float] = {float(d): v[0] for d, v in SEED004["arrivals_per_decile"].items()}
#: ``arrival_coefs.csv``: load decile -> off-peak (night) Pareto scale, sessions per minute.
SEED004_NONPEAK_SCALE: dict[float, float] = {float(d): v[1] for d, v in SEED004["arrivals_per_decile"].items()}
#: Off-peak Pareto shape, the same for every decile (seed 004, section 5.1; ``alpha`` column).
SEED004_PARETO_SHAPE = 1.765
#: Day-time window of seed 004's slicing use case (section 6.1: every hour except 22:00-08:00).
DAY_START_HOUR, DAY_END_HOUR = 8, 22

#: Typical bytes per session: 10**5.5, the middle of seed 004's main log-normal modes over
#: log10(bytes) (``u_g`` in ``pdf_coefs.csv`` lies between 3.7 and 7.2, mostly 5-6). Only sets
#: the absolute bit/s scale: rate [sessions/min] * bytes * 8 / 60 s.
SESSION_BYTES = 10 ** 5.5

# --------------------------------------------------------------------------------------------
# Temporal shape (AppShot section IV) -- assumptions of the simulator.
# --------------------------------------------------------------------------------------------

#: First hour simulated: a Monday, so that every 7 days hold 5 weekdays and a weekend.
START = pd.Timestamp("2026-03-02 00:00")
#: Weekday / weekend ratio of city traffic (AppShot section IV: weekdays about 20 % higher).
WEEKDAY_WEEKEND_RATIO = 1.2
#: Extra weekend scale: a cell with the weekday day-time mix of components gets exactly
#: 1 / WEEKDAY_WEEKEND_RATIO of its weekday traffic at the weekend, but real cities have more
#: homes and shops (busier at weekends) than that mix; this factor brings the demo cities'
#: measured weekday/weekend ratio back to about 1.2 (calibration, docs/demo_world.md).
WEEKEND_EXTRA_SCALE = 0.94
#: Relative day-time level per hour (used where :func:`day_weight` > 0), weekday and weekend.
#: The weekday curve has strict local maxima at the three AppShot peaks, 08, 12 and 17 (AppShot
#: Fig. 6), a dip between them and a slow decline after 18:00; the weekend has a later, softer
#: morning and smaller midday/evening peaks. Shapes are assumptions; only their maxima are
#: from the paper.
DAY_SHAPE = {
    #             0     1     2     3     4     5     6     7     8     9    10    11
    "weekday": (0.80, 0.80, 0.80, 0.80, 0.80, 0.80, 0.82, 0.92, 1.20, 1.03, 0.97, 1.02,
                #12   13    14    15    16    17    18    19    20    21    22    23
                1.15, 1.05, 0.99, 0.95, 1.03, 1.22, 1.07, 1.00, 0.95, 0.89, 0.83, 0.78),
    "weekend": (0.80, 0.80, 0.80, 0.80, 0.80, 0.80, 0.70, 0.72, 0.76, 0.88, 0.97, 1.03,
                1.10, 1.06, 1.02, 0.99, 1.03, 1.08, 1.05, 1.02, 0.98, 0.94, 0.88, 0.82),
}
#: Relative night level per hour (used where :func:`day_weight` < 1): declining from the late
#: evening to a minimum at 04:00, then rising (assumption); its mean over 22:00-08:00 is 1, so
#: the night level of a cell is its seed-004 off-peak mean.
NIGHT_SHAPE = (1.10, 1.00, 0.92, 0.86, 0.82, 0.86, 0.94, 1.04, 1.10, 1.10, 1.10, 1.10,
               1.10, 1.10, 1.10, 1.10, 1.10, 1.10, 1.10, 1.10, 1.10, 1.10, 1.22, 1.16)

#: Demand components of a cell and what drives them (all visible context layers): weekday
#: day-time mean session arrivals per minute contributed by one unit of each attribute
#: (inhabitant, PoI, fraction of cell area, metre of road). Assumptions, scaled so that the
#: station-sized (3 x 3 cells) day-time loads of inhabited cells span seed 004's base-station
#: load deciles (see docs/demo_world.md).
DEMAND_WEIGHTS: dict[str, dict[str, float]] = {
    "home": {"population": 0.0056},
    "work": {"poi_office": 0.25, "landuse_industrial_commercial": 1.75, "landuse_air_sea_ports": 2.1,
             "landuse_continuous_urban": 0.7, "poi_post_police": 0.14},
    "retail": {"poi_shop": 0.042, "poi_restaurant": 0.084, "poi_cafe": 0.07},
    "transit": {"poi_public_transport": 0.175, "poi_railway_stations": 25.0, "poi_tram_stops": 0.14,
                "poi_traffic_signals": 0.035, "poi_primary_roads": 0.08e-3, "poi_motorways": 0.2e-3,
                "poi_parking": 0.035},
    "leisure": {"poi_tourism": 0.21, "landuse_leisure_facilities": 1.05, "landuse_green_urban": 0.21,
                "poi_parking": 0.035},
}
COMPONENTS: tuple[str, ...] = tuple(DEMAND_WEIGHTS)
#: Session arrivals per minute of a land cell with nothing in it (hikers, farm machinery): next
#: to nothing, a few thousandths of an inhabited cell's mean (assumption).
BACKGROUND_RATE = 0.002
#: Agglomeration: a cell's demand is scaled by (its total / DEMAND_PIVOT) ** (DEMAND_EXPONENT - 1)
#: (sessions/min), so busy places draw more than the sum of their parts (assumption; makes the
#: busiest cells stand out from the rest as stations and centres do in real maps).
DEMAND_EXPONENT, DEMAND_PIVOT = 1.2, 5.0
#: Base-station coverage: the 3 x 3 kernel spreading a cell's demand onto its neighbours (cells
#: carry the traffic of the antennas that serve them); centre, edge and corner weights.
COVERAGE_KERNEL = (0.2, 0.12, 0.08)
#: Log-std of each city's own multiplier per demand component (its context-traffic relation
#: differs from other cities', AppShot Fig. 3, 5; kept moderate so a held-out city stays predictable).
CITY_RELATION_SIGMA = 0.15

#: Share of the components of demand by hour (weekday, weekend): anchor hour -> (home, work,
#: retail, transit, leisure); linear in between, cyclic over the day.
MIX_ANCHORS = {
    "weekday": {0: (0.84, 0.03, 0.03, 0.04, 0.06), 5: (0.84, 0.03, 0.03, 0.04, 0.06),
                7: (0.55, 0.15, 0.06, 0.18, 0.06), 8: (0.38, 0.24, 0.08, 0.24, 0.06),
                10: (0.27, 0.50, 0.10, 0.07, 0.06), 12: (0.22, 0.38, 0.20, 0.10, 0.10),
                14: (0.27, 0.50, 0.10, 0.07, 0.06), 16: (0.33, 0.40, 0.09, 0.10, 0.08),
                17: (0.36, 0.24, 0.12, 0.20, 0.08), 19: (0.52, 0.12, 0.12, 0.10, 0.14),
                22: (0.76, 0.04, 0.05, 0.05, 0.10)},
    "weekend": {0: (0.72, 0.02, 0.04, 0.06, 0.16), 6: (0.86, 0.02, 0.03, 0.04, 0.05),
                10: (0.62, 0.06, 0.14, 0.06, 0.12), 13: (0.48, 0.08, 0.20, 0.08, 0.16),
                17: (0.50, 0.07, 0.16, 0.10, 0.17), 21: (0.62, 0.04, 0.08, 0.08, 0.18)},
}

#: Per-service leaning towards the components (home, work, retail, transit, leisure) and
#: diurnal tilt (peak hour, amplitude of a log-cosine): video at home in the evening, news and
#: social on the move, app stores overnight. Assumptions shaped after AppShot Fig. 7.
SERVICE_BEHAVIOUR: dict[str, tuple[tuple[float, ...], float, float]] = {
    "youtube": ((1.60, 0.40, 0.70, 1.60, 1.00), 21.0, 0.25),
    "instagram": ((0.60, 0.60, 2.20, 1.00, 2.20), 13.0, 0.15),
    "snapchat": ((0.80, 0.30, 1.60, 2.00, 2.40), 16.0, 0.20),
    "whatsapp": ((2.00, 0.50, 0.40, 1.40, 0.30), 12.0, 0.05),
    "netflix": ((2.60, 0.20, 0.40, 0.30, 0.60), 22.0, 0.45),
    "apple_store": ((1.00, 2.00, 0.80, 0.50, 0.50), 3.0, 0.20),
    "itunes": ((1.00, 0.80, 0.80, 2.20, 0.70), 19.0, 0.20),
    "facebook": ((1.00, 1.30, 1.00, 0.80, 1.00), 9.0, 0.15),
    "twitter": ((0.50, 1.60, 0.80, 2.40, 0.80), 8.0, 0.25),
    "google_play": ((1.20, 0.40, 1.80, 0.40, 1.20), 2.0, 0.25),
}
#: Services whose traffic jumps on app-update days (operating-system and store updates).
UPDATE_SERVICES = ("apple_store", "google_play", "itunes")

# --------------------------------------------------------------------------------------------
# Day-to-day variation (assumptions, calibrated so that the split-half "Data" row of the demo
# world matches AppShot Table II; see docs/demo_world.md).
# --------------------------------------------------------------------------------------------

#: Log-std of the city's day factor (all services; weekday totals vary a few percent).
CITY_DAY_SIGMA = 0.035
#: Drifting service mix: each service's volume trends by a log-slope per week of random sign and
#: magnitude uniform in this range, plus a daily log-normal jitter.
SERVICE_TREND_PER_WEEK = (0.03, 0.10)
SERVICE_DAY_SIGMA = 0.05
#: App-update days: probability per day and service in UPDATE_SERVICES, and the factor range.
UPDATE_DAY_PROBABILITY, UPDATE_DAY_FACTOR = 0.05, (1.4, 2.2)
#: Where people are today: a bounded smooth field per day, 1 + a * tanh(z), drifting from
#: morning to evening, with correlation length DAY_FIELD_LENGTH x sqrt(cells) (a city-scale
#: pattern) and amplitude a = min(0.95, DAY_FIELD_CITY + DAY_FIELD_SPARSE x sparse share):
#: quiet places swing most; it moves traffic and leaves the city total unchanged.
DAY_FIELD_CITY, DAY_FIELD_SPARSE, DAY_FIELD_LENGTH = 0.65, 0.7, 0.12
#: Sparse share of a cell (how far it is from the busy part of its city, in (0, 1]):
#: 1 / (1 + (load / (SPARSE_LOAD_FRACTION x city's 90th-percentile load)) ** SPARSE_POWER), with
#: station-sized (3 x 3) weekday day-time loads.
SPARSE_LOAD_FRACTION, SPARSE_POWER = 0.3, 3.0
#: Cell noise (day-time): relative std (NOISE_SESSIONS_PIVOT / n) ** NOISE_SESSIONS_POWER for a cell
#: with n session arrivals in the hour (capped at 1): it shrinks with volume. Spatially correlated
#: over NOISE_LENGTH cells where stations are dense and NOISE_LONG_LENGTH cells where they are
#: sparse (mixed by the sparse share); it moves traffic, the city total of a service is kept.
NOISE_SESSIONS_PIVOT, NOISE_SESSIONS_POWER = 6.0, 1.0
NOISE_LENGTH, NOISE_LONG_LENGTH = 3.0, 8.0
#: Share of the cell noise common to all services of a cell (the rest is per service).
NOISE_COMMON_SHARE = 0.5
EVENTS_PER_DAY = 0.5
#: Off-peak noise: mean of this many Pareto(SEED004_PARETO_SHAPE) draws, each capped at this
#: multiple of the scale (hourly sums of heavy-tailed per-minute arrivals; caps keep it finite).
NIGHT_DRAWS, NIGHT_CAP = 3, 10.0


def decile_curve(table: dict[float, float], q: np.ndarray) -> np.ndarray:
    """Log-linear interpolation of a per-decile value at quantiles ``q`` (decile i at q = i - 0.05)."""
    deciles = np.array(sorted(table))
    logs = np.log([table[d] for d in deciles])
    return np.exp(np.interp(q, deciles - 0.05, logs))


def decile_position(table: dict[float, float], values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decile_curve`: the quantile (0.05-0.95, clamped) at which the per-decile
    curve of ``table`` reaches ``values`` (> 0)."""
    deciles = np.array(sorted(table))
    logs = np.log([table[d] for d in deciles])
    return np.interp(np.log(np.maximum(values, 1e-12)), logs, deciles - 0.05)


def mix_table(anchors: dict[int, tuple[float, ...]]) -> np.ndarray:
    """[24, C] component mix per hour, linear between anchors (cyclic), rows summing to 1."""
    hours = np.array(sorted(anchors), dtype=float)
    values = np.array([anchors[int(h)] for h in hours])
    hours_ext = np.concatenate([hours - 24, hours, hours + 24])
    values_ext = np.concatenate([values, values, values])
    mix = np.stack([np.interp(np.arange(24), hours_ext, values_ext[:, j]) for j in range(values.shape[1])], axis=1)
    return mix / mix.sum(axis=1, keepdims=True)


def service_target_shares() -> dict[str, float]:
    """Traffic share (fraction) of each AppShot service from seed 004, renormalised over the ten."""
    raw = {s: sum(SEED004_SHARES[app][1] for app in SERVICE_APPS[s]) for s in SERVICES}
    total = sum(raw.values())
    return {s: raw[s] / total for s in SERVICES}


def diurnal_profile(daytype: str, night_ratio: float | np.ndarray = 0.34) -> np.ndarray:
    """Relative traffic per hour of day (last axis of length 24) for a cell whose off-peak/peak
    ratio is ``night_ratio``: seed 004's night level (off-peak Pareto mean / peak Gaussian mean,
    0.31-0.37 over the load deciles) shaped by :data:`NIGHT_SHAPE`, the day level 1 shaped by
    :data:`DAY_SHAPE` between 08:00 and 22:00 (seed 004, section 6.1), with the fast transitions of
    seed 004 section 4.1 (:func:`day_weight`). Not yet scaled to the weekday/weekend ratio."""
    if daytype not in DAY_SHAPE:
        raise AppshotInputError(f"unknown day type {daytype!r}; expected 'weekday' or 'weekend'")
    day = day_weight(daytype)
    night = np.asarray(night_ratio, dtype=float)[..., None] * np.asarray(NIGHT_SHAPE)
    return night * (1.0 - day) + day * np.asarray(DAY_SHAPE[daytype])


def day_weight(daytype: str) -> np.ndarray:
    """[24] weight of the day-time level per hour (0 = night, 1 = day), with one-hour ramps."""
    weight = np.zeros(24)
    weight[DAY_START_HOUR:DAY_END_HOUR] = 1.0
    if daytype == "weekday":
        weight[DAY_START_HOUR - 2] = 0.25
        weight[DAY_START_HOUR - 1] = 0.65
        weight[DAY_END_HOUR] = 0.45
        weight[DAY_END_HOUR + 1] = 0.15
    else:  # later mornings and later nights at the weekend
        weight[DAY_START_HOUR] = 0.55
        weight[DAY_START_HOUR + 1] = 0.85
        weight[DAY_START_HOUR - 1] = 0.2
        weight[DAY_END_HOUR] = 0.7
        weight[DAY_END_HOUR + 1] = 0.4
        weight[0] = 0.15
    return weight

