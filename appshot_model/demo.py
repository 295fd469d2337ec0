"""The demo world: seeded simulated cities with context layers and hourly per-service traffic.

No real per-service traffic can be shipped with appshot, so this module simulates it. Every
array it returns is labelled ``label="simulated"``. The simulator aims at the properties the
AppShot paper measured on real operator data (Xu et al., "Generating Realistic City-Scale,
Service-Level Mobile Traffic Snapshots", IEEE TNSM 2022, sections III-IV; "AppShot" below):

- city grids of 250 m cells from 33 x 33 to 97 x 123 cells (section III);
- traffic varies from day to day at a fixed context, and no single context attribute explains
  it (section IV, Fig. 1-2);
- the services are spatially similar but not identical (pairwise SSIM 0.55-0.95, Fig. 4);
- cities differ several-fold in volume and in their context-traffic relation (Fig. 3, 5);
- three daily peaks, 08-09, 12-13 and 17-18 (Fig. 6); weekdays about 20 % above weekends
  (Fig. 5); service proportions that change with the hour (Fig. 7); hotspots that move (Fig. 8).

Published numbers used as parameters come from the session-level study of Zanella et al.,
"Characterizing and Modeling Session-Level Mobile Traffic Demands from Large-Scale
Measurements", ACM IMC 2023 ("seed 004" below), through its coefficient release
``nds-group/MobileTrafficDists``:

- ``sessions_share.csv`` (the release's version of Table 1): percent of sessions and of traffic
  per app, used as the services' traffic shares (:data:`SEED004_SHARES`, :data:`SERVICE_APPS`);
- ``arrival_coefs.csv`` (section 5.1): per base-station load decile, the mean peak-hour session
  arrival rate (Gaussian, std = mean / 10) and the off-peak Pareto scale (shape 1.765). They set
  the spread of cell loads across a city, the night/day ratio of each cell, the day-time noise
  (coefficient of variation 0.1) and the heavy-tailed night-time noise
  (:data:`SEED004_PEAK_RATE`, :data:`SEED004_NONPEAK_SCALE`, :data:`SEED004_PARETO_SHAPE`);
- the peak window of section 6.1 (all hours except 22:00-08:00) marks day-time hours.

Everything else (urban form, land-use mix, PoI intensities, how context drives the home, work
and leisure components of demand, service tilts) is an assumption of this simulator, documented
next to its constant and in ``docs/demo_world.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter

from appshot_model.cube import make_context_cube, make_traffic_cube
from appshot_model.errors import AppshotInputError
from appshot_model.grid import Grid
from appshot_model.names import ATTRIBUTES, SERVICES
from appshot_model.seeds import derive_seed

# --------------------------------------------------------------------------------------------
# Published parameters (seed 004) -- checked against the CSV files by the tests.
# --------------------------------------------------------------------------------------------

#: Rows of ``sessions_share.csv`` (seed 004, Table 1 as released in nds-group/MobileTrafficDists):
#: app -> (percent of sessions, percent of traffic volume). Only the apps used here.
SEED004_SHARES: dict[str, tuple[float, float]] = {
    "Facebook": (36.72693753080527, 2.7512148179869858),
    "Facebook Live": (1.3591626155277197, 18.03939905871361),
    "Instagram (main)": (13.3780770483262, 0.0620114851142113),
    "Instagram (videos)": (6.629046169035986, 11.67174331452272),
    "SnapChat": (17.80675994898767, 0.6013820060979026),
    "WhatsApp": (1.028294852769864, 0.1181189812260191),
    "Netflix": (3.0151292345581204, 14.213501516847678),
    "Twitter (main)": (1.0744706779872726, 0.4252929739274635),
    "Twitter (videos)": (0.3190297258008376, 10.539879790545228),
    "Apple iCloud": (1.4991296400691794, 11.23519370224616),
    "Deezer": (1.243534309262434, 2.9357465049572893),
    "Amazon": (1.0626309892077066, 0.4015616109673625),
    "Twitch": (0.8839472333946528, 13.237985047619285),
}

#: Which seed-004 apps stand for each AppShot service. Same-name apps are summed over their
#: variants (main + videos, Facebook + Facebook Live). The release has no YouTube, Apple Store,
#: iTunes or Google Play rows; the nearest kind of app stands in (assumption): the live/video
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
SEED004_PEAK_RATE: dict[float, float] = {
    0.1: 1.2178623325453113, 0.2: 2.304096453900709, 0.3: 4.180275413711584,
    0.4: 6.782704885736801, 0.5: 9.98395996847912, 0.6: 13.885063593380615,
    0.7: 18.90952143420016, 0.8: 25.616492237982666, 0.9: 36.74025307328605,
    1.0: 71.06549231678487,
}
#: ``arrival_coefs.csv``: load decile -> off-peak (night) Pareto scale, sessions per minute.
SEED004_NONPEAK_SCALE: dict[float, float] = {
    0.1: 0.16386524822695037, 0.2: 0.3381205673758865, 0.3: 0.6630851063829787,
    0.4: 1.135354609929078, 0.5: 1.616063829787234, 0.6: 2.1042198581560285,
    0.7: 2.6567375886524824, 0.8: 3.416843971631206, 0.9: 4.762163120567376,
    1.0: 10.849716312056737,
}
#: Off-peak Pareto shape, the same for every decile (seed 004, section 5.1; ``alpha`` column).
SEED004_PARETO_SHAPE = 1.765
#: Peak-hour Gaussian std / mean (seed 004, section 5.1: sigma ~ mu / 10).
SEED004_PEAK_CV = 0.1
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

#: Share of the home, work and leisure/transit components of demand by hour (weekday, weekend):
#: anchor hour -> (home, work, leisure); linear in between, cyclic over the day.
MIX_ANCHORS = {
    "weekday": {0: (0.84, 0.03, 0.13), 5: (0.84, 0.03, 0.13), 7: (0.55, 0.15, 0.30),
                8: (0.38, 0.24, 0.38), 10: (0.27, 0.50, 0.23), 12: (0.22, 0.38, 0.40),
                14: (0.27, 0.50, 0.23), 16: (0.33, 0.40, 0.27), 17: (0.36, 0.24, 0.40),
                19: (0.52, 0.12, 0.36), 22: (0.76, 0.04, 0.20)},
    "weekend": {0: (0.72, 0.02, 0.26), 6: (0.86, 0.02, 0.12), 10: (0.62, 0.06, 0.32),
                13: (0.48, 0.08, 0.44), 17: (0.50, 0.07, 0.43), 21: (0.62, 0.04, 0.34)},
}

#: Per-service spatial leaning towards (home, work, leisure) and diurnal tilt (peak hour,
#: amplitude of a log-cosine): video at home in the evening, news/social while commuting,
#: app stores overnight. Assumptions shaped after AppShot Fig. 7 (shares move with the hour).
SERVICE_BEHAVIOUR: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "youtube": ((1.25, 0.75, 1.00), 21.0, 0.25),
    "instagram": ((0.90, 0.95, 1.25), 13.0, 0.15),
    "snapchat": ((1.00, 0.75, 1.35), 16.0, 0.20),
    "whatsapp": ((1.00, 1.00, 1.00), 12.0, 0.05),
    "netflix": ((1.45, 0.60, 0.85), 22.0, 0.45),
    "apple_store": ((1.05, 1.20, 0.85), 3.0, 0.20),
    "itunes": ((1.10, 1.05, 0.95), 19.0, 0.20),
    "facebook": ((1.00, 1.10, 1.00), 9.0, 0.15),
    "twitter": ((0.85, 1.15, 1.20), 8.0, 0.25),
    "google_play": ((1.10, 1.00, 0.90), 2.0, 0.25),
}

#: Noise and variability (assumptions): spatial std (log) of the persistent per-service field,
#: of the day field, day-to-day std of the city volume, hour-cell common noise, mean events/day.
SERVICE_FIELD_SIGMA = 0.30
DAY_FIELD_SIGMA = 0.16
CITY_DAY_SIGMA = 0.05
CELL_HOUR_SIGMA = 0.08
EVENTS_PER_DAY = 1.5
#: Off-peak noise: mean of this many Pareto(SEED004_PARETO_SHAPE) draws, each capped at this
#: multiple of the scale (hourly sums of heavy-tailed per-minute arrivals; caps keep it finite).
NIGHT_DRAWS, NIGHT_CAP = 3, 10.0

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COASTS = ("north", "south", "east", "west")


@dataclass(frozen=True)
class DemoCity:
    """A simulated city: name (a Dagster partition key), its grid and its simulation parameters.

    ``volume_scale`` multiplies every cell's traffic (cities differ several-fold in volume,
    AppShot Fig. 5); ``n_centres`` population centres; ``coast`` puts sea on one side of the grid
    (``sea_fraction`` of its width or height); ``has_tram`` adds tram stops; ``peak_density`` is
    the inhabitants per km2 of continuous urban fabric.
    """

    name: str
    grid: Grid
    seed_offset: int = 0
    volume_scale: float = 1.0
    n_centres: int = 3
    coast: str | None = None
    sea_fraction: float = 0.0
    has_tram: bool = True
    peak_density: float = 16000.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise AppshotInputError(
                f"demo city name {self.name!r} must be lowercase ascii letters, digits or '_' (a partition key)")
        if not self.volume_scale > 0:
            raise AppshotInputError(f"city {self.name}: volume_scale must be > 0, got {self.volume_scale}")
        if self.n_centres < 1:
            raise AppshotInputError(f"city {self.name}: n_centres must be >= 1, got {self.n_centres}")
        if self.coast is not None and self.coast not in _COASTS:
            raise AppshotInputError(f"city {self.name}: coast {self.coast!r} is not one of {_COASTS} or None")
        if not 0.0 <= self.sea_fraction <= 0.5:
            raise AppshotInputError(f"city {self.name}: sea_fraction must lie in [0, 0.5], got {self.sea_fraction}")
        if not self.peak_density > 0:
            raise AppshotInputError(f"city {self.name}: peak_density must be > 0, got {self.peak_density}")

    @property
    def cells(self) -> int:
        return self.grid.height * self.grid.width


def _city(name: str, epsg: int, left: float, top: float, height: int, width: int, seed_offset: int,
          **params) -> DemoCity:
    return DemoCity(name, Grid(f"EPSG:{epsg}", left, top, height, width), seed_offset, **params)


#: The six demo cities: grids centred on real cities in their UTM zone (WGS 84 / UTM north),
#: north-west corners on a 250 m lattice. 30,684 cells in all, from 33 x 33 to 97 x 123 (the
#: range of AppShot's ten cities). Only the placement is real; all content is simulated.
DEMO_CITIES: tuple[DemoCity, ...] = (
    _city("milano", 32632, 499500, 5046750, 97, 123, 0, volume_scale=2.4, n_centres=6, peak_density=18000),
    _city("lyon", 32631, 631500, 5079500, 80, 90, 1, volume_scale=1.2, n_centres=5),
    _city("munich", 32632, 682500, 5342750, 64, 72, 2, volume_scale=1.6, n_centres=4),
    _city("porto", 32629, 523500, 4563250, 56, 60, 3, volume_scale=0.7, n_centres=3, coast="west",
          sea_fraction=0.22, has_tram=False, peak_density=12000),
    _city("valencia", 32630, 719250, 4378250, 48, 52, 4, volume_scale=0.9, n_centres=3, coast="east",
          sea_fraction=0.14, peak_density=20000),
    _city("liege", 32631, 678250, 5616250, 33, 33, 5, volume_scale=0.45, n_centres=2, has_tram=False,
          peak_density=11000),
)


def small_demo_city(name: str, height: int, width: int, seed_offset: int = 0, **params) -> DemoCity:
    """A small simulated city for tests and examples (UTM 32N near Milan; extra ``params`` go to
    :class:`DemoCity`, e.g. ``volume_scale``)."""
    params.setdefault("n_centres", max(1, min(4, round(math.sqrt(height * width) / 15))))
    grid = Grid("EPSG:32632", 500000.0 + 25000.0 * seed_offset, 5050000.0, int(height), int(width))
    return DemoCity(name, grid, int(seed_offset), **params)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _rng(seed: int, city: DemoCity, *names: str | int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, "demo", city.name, city.seed_offset, *names))


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit std (correlation length ~sigma cells)."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    std = field.std()
    return (field - field.mean()) / (std if std > 0 else 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _add_polyline(lengths: np.ndarray, points: np.ndarray, cell_m: float) -> None:
    """Add the length (metres) of a polyline given in (row, col) cell units to ``lengths``."""
    height, width = lengths.shape
    for p0, p1 in zip(points[:-1], points[1:], strict=True):
        span = float(np.hypot(*(p1 - p0)))
        if span == 0:
            continue
        n = max(1, int(math.ceil(span * 10)))
        t = (np.arange(n) + 0.5) / n
        rows = np.floor(p0[0] + t * (p1[0] - p0[0])).astype(int)
        cols = np.floor(p0[1] + t * (p1[1] - p0[1])).astype(int)
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        np.add.at(lengths, (rows[inside], cols[inside]), span * cell_m / n)


def _wiggly_line(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, wiggle: float) -> np.ndarray:
    n = max(2, int(np.hypot(*(end - start)) / 3) + 2)
    t = np.linspace(0.0, 1.0, n)[:, None]
    points = start + t * (end - start)
    normal = np.array([-(end - start)[1], (end - start)[0]]) / max(1e-9, float(np.hypot(*(end - start))))
    offsets = np.cumsum(rng.normal(0.0, wiggle, n))
    offsets -= np.linspace(offsets[0], offsets[-1], n)  # keep both ends in place
    return points + offsets[:, None] * normal


def _quantile_ranks(values: np.ndarray) -> np.ndarray:
    """Mid-rank quantiles in (0, 1) of a flat array (ties broken by position, deterministic)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    return (ranks + 0.5) / values.size


def _decile_curve(table: dict[float, float], q: np.ndarray) -> np.ndarray:
    """Log-linear interpolation of a per-decile value at quantiles ``q`` (decile i at q = i - 0.05)."""
    deciles = np.array(sorted(table))
    logs = np.log([table[d] for d in deciles])
    return np.exp(np.interp(q, deciles - 0.05, logs))


def _mix_table(anchors: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """[24, 3] component mix per hour, linear between anchors (cyclic), rows summing to 1."""
    hours = np.array(sorted(anchors), dtype=float)
    values = np.array([anchors[int(h)] for h in hours])
    hours_ext = np.concatenate([hours - 24, hours, hours + 24])
    values_ext = np.concatenate([values, values, values])
    mix = np.stack([np.interp(np.arange(24), hours_ext, values_ext[:, j]) for j in range(3)], axis=1)
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


# --------------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------------

#: Inhabitants per km2 of each residential land-use class relative to continuous urban fabric
#: (assumption; the Urban Atlas classes are defined by soil sealing 80/50/30/10 %).
_RESIDENTIAL = (
    ("landuse_continuous_urban", 0.85, 1.00),
    ("landuse_high_dense_urban", 0.62, 0.65),
    ("landuse_medium_dense_urban", 0.42, 0.38),
    ("landuse_low_dense_urban", 0.25, 0.16),
    ("landuse_very_low_dense_urban", 0.13, 0.06),
    ("landuse_isolated_structures", 0.04, 0.015),
)


def _centres(rng: np.random.Generator, city: DemoCity, land: np.ndarray) -> list[tuple[float, float, float, float]]:
    """(row, col, weight, radius in cells) of the population centres; the first is the main one."""
    height, width = city.grid.shape
    size = math.sqrt(height * width)
    jitter = np.clip(rng.normal(0.0, 1.0 / 20, 2), -0.08, 0.08)
    centres = [(height * (0.5 + jitter[0]), width * (0.5 + jitter[1]), 1.0, size * rng.uniform(0.09, 0.13))]
    if city.coast is not None:  # move the main centre towards the coast, as harbour cities grow
        shift = city.sea_fraction * 0.6
        row, col, w, r = centres[0]
        row += {"north": -shift * height, "south": shift * height}.get(city.coast, 0.0)
        col += {"west": -shift * width, "east": shift * width}.get(city.coast, 0.0)
        centres[0] = (row, col, w, r)
    attempts = 0
    while len(centres) < city.n_centres and attempts < 500:
        attempts += 1
        row, col = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        if land[int(row), int(col)] < 0.9:
            continue
        if min(math.hypot(row - r0, col - c0) for r0, c0, _, _ in centres) < size * 0.18:
            continue
        centres.append((row, col, rng.uniform(0.55, 0.9), size * rng.uniform(0.05, 0.085)))
    return centres


def _sea(rng: np.random.Generator, city: DemoCity) -> np.ndarray:
    """Fraction of each cell's area that is sea (a wiggly coastline on one side of the grid)."""
    height, width = city.grid.shape
    sea = np.zeros((height, width))
    if city.coast is None or city.sea_fraction <= 0:
        return sea
    along = width if city.coast in ("north", "south") else height
    across = height if city.coast in ("north", "south") else width
    wiggle = gaussian_filter(rng.standard_normal(along), 4.0, mode="reflect")
    line = city.sea_fraction * across + 1.5 * (wiggle - wiggle.mean()) / max(wiggle.std(), 1e-12)
    depth = np.arange(across)[:, None] + 0.5  # distance of cell centres from the sea-side edge
    frac = np.clip(line[None, :] - depth + 0.5, 0.0, 1.0)  # partial cells along the coast
    if city.coast == "north":
        sea = frac
    elif city.coast == "south":
        sea = frac[::-1]
    elif city.coast == "west":
        sea = frac.T
    else:
        sea = frac.T[:, ::-1]
    return sea


def simulate_context(city: DemoCity, seed: int) -> xr.DataArray:
    """Simulated context cube [attribute, y, x] over all 27 :data:`ATTRIBUTES` of ``city``.

    Structure: population around ``n_centres`` centres (exponential decay of density, Clark's
    law) with smooth random perturbations; land-use fractions per cell (12 classes, summing to
    at most 1: residential classes by urbanity, patches of green, industry, leisure and barren
    land, one airport or port, sea on the coast side); PoI counts as Poisson draws whose
    intensities depend on urbanity, population and land use; road lengths (metres per cell)
    from rasterised radial, connecting and bypass roads. Seeded by ``seed`` and the city.
    """
    rng = _rng(seed, city, "context")
    height, width = city.grid.shape
    shape = (height, width)
    cell_km2 = (city.grid.cell_size_m / 1000.0) ** 2
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    size = math.sqrt(height * width)
    layers: dict[str, np.ndarray] = {}

    sea = _sea(rng, city)
    land = 1.0 - sea
    centres = _centres(rng, city, land)

    # Urbanity in [0, 1]: exponential decay from each centre, perturbed by a smooth field.
    urban = np.zeros(shape)
    for row, col, weight, radius in centres:
        urban = np.maximum(urban, weight * np.exp(-np.hypot(rows - row, cols - col) / radius))
    urban *= np.exp(0.35 * _field(rng, shape, 2.5))
    urban = np.clip(urban / np.quantile(urban, 0.995), 0.0, 1.0) * land
    main_row, main_col, _, main_radius = centres[0]
    core = np.exp(-np.hypot(rows - main_row, cols - main_col) / (0.5 * main_radius))

    # Land use: patch classes first, residential classes share the rest by urbanity.
    def patches(sigma: float, threshold: float, gain: float = 5.0) -> np.ndarray:
        return _sigmoid(gain * (_field(rng, shape, sigma) - threshold))

    green = 0.9 * patches(2.0, 1.1) * (0.4 + 0.6 * (1 - urban))
    industrial = 0.9 * patches(2.5, 1.0) * np.clip(1.6 * urban + 0.1, 0, 1) * (1 - 0.7 * core)
    leisure = 0.8 * patches(1.2, 1.6) * np.clip(urban + 0.3, 0, 1)
    barren = 0.8 * patches(3.0, 1.0) * (1 - urban) ** 2
    ports = _airport_or_port(rng, city, urban, sea)
    patch = green + industrial + leisure + barren + ports
    over = np.maximum(patch, 1.0)
    green, industrial, leisure, barren, ports = (a / over for a in (green, industrial, leisure, barren, ports))
    rest = np.clip(1.0 - (green + industrial + leisure + barren + ports), 0.0, 1.0)
    noisy_urban = np.clip(urban + 0.06 * _field(rng, shape, 1.0), 0.0, 1.0)
    kernels = np.stack([np.exp(-0.5 * ((noisy_urban - centre) / 0.09) ** 2) for _, centre, _ in _RESIDENTIAL])
    kernels /= kernels.sum(axis=0, keepdims=True) + 1e-12
    # Unclassified remainder (streets, water bodies inland, ...): 0-12 % of each land cell.
    coverage = land * (1.0 - 0.12 * _sigmoid(_field(rng, shape, 1.5)))
    # Away from the centres much land is farmland or forest, outside the 12 classes.
    built = 0.3 + 0.7 * np.clip(noisy_urban / 0.25, 0.0, 1.0)
    for k, (name, _, _) in enumerate(_RESIDENTIAL):
        layers[name] = kernels[k] * rest * coverage * built
    layers["landuse_green_urban"] = green * coverage
    layers["landuse_industrial_commercial"] = industrial * coverage
    layers["landuse_air_sea_ports"] = ports * coverage
    layers["landuse_leisure_facilities"] = leisure * coverage
    layers["landuse_barren_lands"] = barren * coverage
    layers["landuse_sea"] = sea

    # Population: class densities times a log-normal cell factor.
    density = sum(layers[name] * relative for name, _, relative in _RESIDENTIAL) + 0.005 * layers[
        "landuse_industrial_commercial"]
    population = city.peak_density * cell_km2 * density * np.exp(0.35 * rng.standard_normal(shape) - 0.06)
    layers["population"] = population

    # Roads (metres per cell).
    primary, secondary, motorways = _roads(rng, city, centres, urban)
    layers["poi_primary_roads"] = primary * land
    layers["poi_secondary_roads"] = secondary * land
    layers["poi_motorways"] = motorways * land

    # PoI counts: Poisson with intensities tied to urbanity, population and land use, each with
    # its own smooth log-normal modulation so that no category copies another.
    pop_k = population / 1000.0
    comm = layers["landuse_industrial_commercial"]
    port = layers["landuse_air_sea_ports"]
    prim = layers["poi_primary_roads"] / city.grid.cell_size_m
    leis = layers["landuse_leisure_facilities"]
    u = urban
    tram_line = (prim > 0) & (u > 0.3) if city.has_tram else np.zeros(shape, dtype=bool)
    intensity = {
        "poi_tourism": 10.0 * core ** 1.5 + 0.8 * leis + 0.4 * layers["landuse_green_urban"] * u,
        "poi_cafe": 9.0 * u ** 2.5 + 3.0 * core + 0.4 * pop_k,
        "poi_parking": 1.2 * u + 6.0 * comm + 8.0 * port + 1.5 * leis,
        "poi_restaurant": 16.0 * u ** 2.5 + 6.0 * core + 0.6 * pop_k,
        "poi_post_police": 0.25 * u + 0.3 * pop_k,
        "poi_traffic_signals": 4.0 * prim * (0.3 + u) + 1.5 * (layers["poi_secondary_roads"] / 1000.0) * u ** 1.5,
        "poi_office": 14.0 * u ** 3 + 5.0 * comm * u + 2.0 * core,
        "poi_public_transport": 2.5 * u + 0.8 * pop_k + 1.2 * prim,
        "poi_shop": 30.0 * u ** 2.5 + 4.0 * comm + 2.0 * pop_k,
        "poi_railway_stations": 0.01 * u,
        "poi_tram_stops": 1.5 * u * tram_line,
    }
    for name, lam in intensity.items():
        modulation = np.exp(0.4 * _field(rng, shape, 1.5) - 0.08)
        layers[name] = rng.poisson(np.clip(lam * modulation * land, 0.0, None)).astype(float)
    # Railway stations: a main station near the main centre, one per other centre half the time.
    stations = layers["poi_railway_stations"]
    for k, (row, col, _, radius) in enumerate(centres):
        if k == 0 or rng.random() < 0.5:
            r = int(np.clip(round(row + rng.normal(0, max(1.0, radius / 4))), 0, height - 1))
            c = int(np.clip(round(col + rng.normal(0, max(1.0, radius / 4))), 0, width - 1))
            if land[r, c] > 0.5:
                stations[r, c] += 1

    values = np.stack([layers[name] for name in ATTRIBUTES]).astype(np.float32)
    return make_context_cube(
        values, ATTRIBUTES, city.grid, label="simulated", city=city.name, seed=int(seed),
        source="appshot demo world (appshot_model.demo.simulate_context)",
        landuse_units="fraction of cell area", population_units="inhabitants per cell",
        poi_units="count per cell; poi_primary_roads, poi_secondary_roads, poi_motorways in metres per cell")


def _airport_or_port(rng: np.random.Generator, city: DemoCity, urban: np.ndarray, sea: np.ndarray) -> np.ndarray:
    """Fraction of air/sea port: a port strip along the coast, or an airport rectangle on the
    least urban side of the city."""
    height, width = urban.shape
    ports = np.zeros_like(urban)
    if city.coast is not None and sea.any():
        wet = sea > 0.5
        coastal = binary_dilation(wet) & ~wet
        idx = np.argwhere(coastal)
        if len(idx):
            start = idx[rng.integers(len(idx))]
            along_rows = city.coast in ("east", "west")
            for k in range(-3, 4):
                r, c = (start[0] + k, start[1]) if along_rows else (start[0], start[1] + k)
                if 0 <= r < height and 0 <= c < width:
                    ports[r, c] = 0.7 * (1 - sea[r, c])
        return ports
    if min(height, width) < 12:
        return ports
    h, w = max(2, height // 14), max(3, width // 8)
    best = None
    for _ in range(20):
        r = int(rng.integers(1, height - h - 1))
        c = int(rng.integers(1, width - w - 1))
        score = urban[r:r + h, c:c + w].mean()
        if best is None or score < best[0]:
            best = (score, r, c)
    _, r, c = best
    ports[r:r + h, c:c + w] = 0.85
    return ports


def _roads(rng: np.random.Generator, city: DemoCity, centres, urban: np.ndarray):
    """Primary, secondary and motorway lengths (metres per cell)."""
    height, width = urban.shape
    cell_m = city.grid.cell_size_m
    primary = np.zeros_like(urban)
    motorways = np.zeros_like(urban)
    main = np.array(centres[0][:2])
    far = 1.5 * math.hypot(height, width)
    # Radial primary roads from the main centre, and links from the other centres to it.
    n_radial = int(rng.integers(5, 9))
    first = rng.uniform(0, 2 * math.pi)
    jitter = rng.normal(0, 0.2, n_radial)
    for angle in first + np.arange(n_radial) * 2 * math.pi / n_radial + jitter:
        end = main + far * np.array([math.sin(angle), math.cos(angle)])
        _add_polyline(primary, _wiggly_line(rng, main, end, 0.4), cell_m)
    for row, col, _, _ in centres[1:]:
        _add_polyline(primary, _wiggly_line(rng, np.array([row, col]), main, 0.4), cell_m)
    # An inner ring of primary roads.
    radius = centres[0][3] * 1.2
    angles = np.linspace(0, 2 * math.pi, 40)
    wobble = 1 + 0.1 * rng.standard_normal(40)
    ring = main + radius * wobble[:, None] * np.stack([np.sin(angles), np.cos(angles)], axis=1)
    ring[-1] = ring[0]
    _add_polyline(primary, ring, cell_m)
    # Motorways: one or two bypasses crossing the grid away from the centre.
    for _ in range(1 if min(height, width) < 40 else 2):
        offset = rng.uniform(0.25, 0.4) * min(height, width) * rng.choice([-1, 1])
        angle = rng.uniform(0, math.pi)
        direction = np.array([math.sin(angle), math.cos(angle)])
        normal = np.array([-direction[1], direction[0]])
        mid = main + offset * normal
        _add_polyline(motorways, _wiggly_line(rng, mid - far * direction, mid + far * direction, 0.2), cell_m)
    # Secondary roads: a street network whose density follows urbanity.
    secondary = cell_m * (0.6 + 5.0 * urban ** 0.8) * np.exp(0.3 * _field(rng, urban.shape, 1.0))
    secondary *= rng.uniform(0.6, 1.0, urban.shape) * (urban > 0.02)
    return primary, secondary, motorways


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
    hidden = [coef["hidden_sigma"] * _field(rng, shape, rng.uniform(1.5, 3.5)) for _ in range(3)]
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
    setup = _rng(seed, city, "traffic", "setup")

    comps, _ = _components(setup, city, layers)
    land_frac = 1.0 - np.clip(layers["landuse_sea"], 0.0, 1.0)
    land = land_frac > 0.5 if (land_frac > 0.5).any() else np.ones((height, width), dtype=bool)

    # Map the cells' static load ranks onto the published per-decile arrival rates.
    static_mix = _mix_table(MIX_ANCHORS["weekday"])[DAY_START_HOUR:DAY_END_HOUR].mean(axis=0)
    load = np.tensordot(static_mix, comps, axes=1).ravel()
    q = _quantile_ranks(load)
    rate = _decile_curve(SEED004_PEAK_RATE, q)  # sessions / minute at the peak level
    pareto_mean = SEED004_PARETO_SHAPE / (SEED004_PARETO_SHAPE - 1.0)
    night_ratio = (_decile_curve(SEED004_NONPEAK_SCALE, q) * pareto_mean / rate).reshape(height, width)
    cell_scale = (_with_sea_spill(rate.reshape(height, width), land_frac) / load.reshape(height, width))
    comps = comps * cell_scale[None]
    rate_total = float((cell_scale.ravel() * load).sum())  # sessions/min over the city's cells
    volume = city.volume_scale * SESSION_BYTES * 8.0 / 60.0  # bit/s per (session / minute)

    # Per-service persistent spatial fields, spatial leanings and diurnal tilts.
    service_field = np.stack([np.exp(SERVICE_FIELD_SIGMA * _field(setup, (height, width), setup.uniform(1.0, 2.5))
                                     - 0.5 * SERVICE_FIELD_SIGMA ** 2) for _ in SERVICES])
    lean = np.array([SERVICE_BEHAVIOUR[s][0] for s in SERVICES])  # [S, 3]
    city_tilt = np.exp(0.08 * setup.standard_normal(n_services))

    # Expected maps per (daytype, hour, service): [2, 24, S, cells].
    daytypes = ("weekday", "weekend")
    base = np.empty((2, 24, n_services, n_cells), dtype=np.float32)
    hour_weights = np.empty((2, 24))
    fractions = _service_fractions(city_tilt)  # [2, 24, S]
    for d, daytype in enumerate(daytypes):
        mix = _mix_table(MIX_ANCHORS[daytype])  # [24, 3]
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
    events_rng = _rng(seed, city, "traffic", "events")
    leisure_weight = (comps[2] * land).ravel()
    leisure_weight = leisure_weight / leisure_weight.sum()
    hours = np.arange(24)
    peak_hours = (hours >= DAY_START_HOUR) & (hours < DAY_END_HOUR)
    for k in range(days):
        rng = _rng(seed, city, "traffic", "day", k)
        weekend = times[24 * k].day_of_week >= 5
        block = base[int(weekend)].copy()  # [24, S, cells]
        # Day-level: city volume factor and a smooth field drifting between morning and evening.
        fields = [np.exp(DAY_FIELD_SIGMA * _field(rng, (height, width), 1.5) - 0.5 * DAY_FIELD_SIGMA ** 2).ravel()
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
