"""Simulated context layers of a demo city (27 attributes: population, 12 land uses, 14 PoI kinds)."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.ndimage import binary_dilation, gaussian_filter

from appshot_model.core.cube import make_context_cube
from appshot_model.core.names import ATTRIBUTES
from appshot_model.traffic.demo.cities import DemoCity, city_rng, random_field, sigmoid


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


#: Urbanity below which a cell is countryside: farmland or forest (outside the 12 land-use
#: classes), lakes, quarries, mountain rock; no inhabitants, streets or PoIs (assumption).
SETTLED_URBANITY = 0.12
#: Villages (small settled clusters) per 1,000 cells of flat countryside (assumption).
VILLAGES_PER_1000_CELLS = 2.5


def simulate_context(city: DemoCity, seed: int) -> xr.DataArray:
    """Simulated context cube [attribute, y, x] over all 27 :data:`ATTRIBUTES` of ``city``.

    Structure: population around ``n_centres`` centres (exponential decay of density, Clark's
    law) and a few villages, with smooth random perturbations; beyond the built-up area the
    countryside: farmland and forest (outside the 12 land-use classes, as OpenStreetMap and
    Urban Atlas farmland/forest are), quarries, lakes, and on the ``mountains`` side bare rock and
    scree, all without inhabitants, streets or PoIs. Land-use fractions per cell (12 classes,
    summing to at most 1); PoI counts as Poisson draws whose intensities depend on urbanity,
    population and land use; road lengths (metres per cell) from rasterised radial, connecting and
    bypass roads that avoid mountain interiors and lakes. Seeded by ``seed`` and the city.
    """
    rng = city_rng(seed, city, "context")
    sea = _sea(rng, city)
    relief = _relief(rng, city)
    centres = _centres(rng, city, (1.0 - sea) * (relief < 0.2))
    urban, settled, core = _urbanity(rng, city, centres, sea, relief)
    layers = _landuse(rng, city, urban, settled, core, sea, relief)
    _population(rng, city, layers)
    primary, secondary, motorways = _roads(rng, city, centres, urban)
    passable = (1.0 - layers["landuse_sea"]) * (relief < 0.5)
    layers["poi_primary_roads"] = primary * passable
    layers["poi_secondary_roads"] = secondary * settled * passable
    layers["poi_motorways"] = motorways * passable
    _pois(rng, city, layers, urban, settled, core, centres)
    values = np.stack([layers[name] for name in ATTRIBUTES]).astype(np.float32)
    return make_context_cube(
        values, ATTRIBUTES, city.grid, label="simulated", city=city.name, seed=int(seed),
        source="appshot demo world (appshot_model.traffic.demo.simulate_context)",
        landuse_units="fraction of cell area", population_units="inhabitants per cell",
        poi_units="count per cell; poi_primary_roads, poi_secondary_roads, poi_motorways in metres per cell")


def _side_depth(city: DemoCity, side: str) -> tuple[np.ndarray, int, int]:
    """Distance (cells) of every cell centre from the ``side`` edge, and the grid's extent along
    and across that side."""
    height, width = city.grid.shape
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    depth = {"north": rows, "south": height - rows, "west": cols, "east": width - cols}[side]
    along, across = (width, height) if side in ("north", "south") else (height, width)
    return depth, along, across


def _relief(rng: np.random.Generator, city: DemoCity) -> np.ndarray:
    """Mountain-ness in [0, 1]: ~1 inside the mountain band on the ``mountains`` side, 0 on the
    plain, with a wiggly foothill line a few cells wide."""
    height, width = city.grid.shape
    if city.mountains is None or city.mountain_fraction <= 0:
        return np.zeros((height, width))
    depth, along, across = _side_depth(city, city.mountains)
    wiggle = gaussian_filter(rng.standard_normal(along), 3.0, mode="reflect")
    wiggle = 2.5 * (wiggle - wiggle.mean()) / max(wiggle.std(), 1e-12)
    line = city.mountain_fraction * across + (wiggle[None, :] if city.mountains in ("north", "south")
                                              else wiggle[:, None])
    return sigmoid((line - depth) / 1.2)


def _urbanity(rng: np.random.Generator, city: DemoCity, centres, sea: np.ndarray, relief: np.ndarray):
    """Urbanity u in [0, 1] (centres and villages), the settled weight in [0, 1] (0 = countryside)
    and the historic core of the main centre."""
    height, width = city.grid.shape
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    urban = np.zeros((height, width))
    for row, col, weight, radius in centres:
        reach = radius * city.urban_reach
        urban = np.maximum(urban, weight * np.exp(-np.hypot(rows - row, cols - col) / reach))
    urban *= np.exp(0.35 * random_field(rng, (height, width), 2.5))
    urban = np.clip(urban / np.quantile(urban, 0.995), 0.0, 1.0)
    flat = (1.0 - sea) * (1.0 - relief)
    countryside = np.flatnonzero(((urban < 0.03) & (flat > 0.9)).ravel())
    n_villages = rng.poisson(VILLAGES_PER_1000_CELLS * height * width / 1000.0) if countryside.size else 0
    for cell in rng.choice(countryside, size=min(n_villages, countryside.size), replace=False):
        r0, c0 = divmod(int(cell), width)
        bump = rng.uniform(0.18, 0.4) * np.exp(-np.hypot(rows - r0 - 0.5, cols - c0 - 0.5) / rng.uniform(0.7, 1.2))
        urban = np.maximum(urban, bump)
    urban *= flat
    noisy = np.clip(urban + 0.04 * random_field(rng, (height, width), 1.0), 0.0, 1.0)
    settled = np.clip((noisy - SETTLED_URBANITY) / 0.04, 0.0, 1.0)
    main_row, main_col, _, main_radius = centres[0]
    core = np.exp(-np.hypot(rows - main_row, cols - main_col) / (0.5 * main_radius))
    return noisy, settled, core


def _lakes(rng: np.random.Generator, city: DemoCity, allowed: np.ndarray) -> np.ndarray:
    """Fraction of each cell covered by inland lakes (wobbly discs in the countryside)."""
    height, width = city.grid.shape
    lakes = np.zeros((height, width))
    candidates = np.flatnonzero(allowed.ravel())
    if min(height, width) < 16 or not candidates.size:
        return lakes
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    for _ in range(city.n_lakes):
        r0, c0 = divmod(int(rng.choice(candidates)), width)
        radius = rng.uniform(1.5, 3.5) * (1.0 + 0.25 * random_field(rng, (height, width), 2.0))
        stretch = rng.uniform(0.6, 1.6)
        distance = np.hypot((rows - r0 - 0.5) * stretch, (cols - c0 - 0.5) / stretch)
        lakes = np.maximum(lakes, np.clip(radius - distance + 0.5, 0.0, 1.0))
    return lakes * allowed


def _landuse(rng: np.random.Generator, city: DemoCity, urban: np.ndarray, settled: np.ndarray, core: np.ndarray,
             sea: np.ndarray, relief: np.ndarray) -> dict[str, np.ndarray]:
    """The 12 land-use fractions: patch classes first (parks, industry, leisure, quarries and
    mountain rock, one airport or port, lakes), residential classes share the rest of the
    settled land by urbanity; countryside outside these classes is farmland or forest."""
    shape = urban.shape

    def patches(sigma: float, threshold: float, gain: float = 5.0) -> np.ndarray:
        return sigmoid(gain * (random_field(rng, shape, sigma) - threshold))

    near_town = np.clip(urban / (2 * SETTLED_URBANITY), 0.0, 1.0)
    lakes = _lakes(rng, city, (urban < 0.05) & (sea == 0) & (relief < 0.5))
    water = np.clip(sea + lakes, 0.0, 1.0)
    rock = relief * np.clip(0.55 + 0.45 * random_field(rng, shape, 1.5), 0.0, 1.0)
    quarries = 0.8 * patches(2.0, 1.6) * (1.0 - settled) * (1.0 - relief)
    classes = {
        "landuse_green_urban": 0.9 * patches(2.0, 1.1) * (0.4 + 0.6 * (1 - urban)) * near_town,
        "landuse_industrial_commercial": 0.9 * patches(2.5, 1.0) * np.clip(1.6 * urban + 0.1, 0, 1)
        * (1 - 0.7 * core) * near_town,
        "landuse_leisure_facilities": 0.8 * patches(1.2, 1.6) * np.clip(urban + 0.3, 0, 1) * near_town,
        "landuse_barren_lands": np.maximum(rock, quarries),
        "landuse_air_sea_ports": _airport_or_port(rng, city, urban + relief, sea),
    }
    over = np.maximum(sum(classes.values()), 1.0)
    coverage = (1.0 - water) * (1.0 - 0.12 * sigmoid(random_field(rng, shape, 1.5)))
    layers = {name: value / over * coverage for name, value in classes.items()}
    rest = np.clip(1.0 - sum(classes.values()) / over, 0.0, 1.0)
    kernels = np.stack([np.exp(-0.5 * ((urban - centre) / 0.09) ** 2) for _, centre, _ in _RESIDENTIAL])
    kernels /= kernels.sum(axis=0, keepdims=True) + 1e-12
    for k, (name, _, _) in enumerate(_RESIDENTIAL):
        layers[name] = kernels[k] * rest * coverage * settled
    layers["landuse_sea"] = water
    return layers


def _population(rng: np.random.Generator, city: DemoCity, layers: dict[str, np.ndarray]) -> None:
    """Inhabitants per cell: residential fractions times class densities, log-normal cell factor."""
    cell_km2 = (city.grid.cell_size_m / 1000.0) ** 2
    density = sum(layers[name] * relative for name, _, relative in _RESIDENTIAL) + 0.005 * layers[
        "landuse_industrial_commercial"]
    noise = np.exp(0.3 * random_field(rng, density.shape, 1.5) + 0.12 * rng.standard_normal(density.shape) - 0.05)
    layers["population"] = city.peak_density * cell_km2 * density * noise


def _pois(rng: np.random.Generator, city: DemoCity, layers: dict[str, np.ndarray], u: np.ndarray,
          settled: np.ndarray, core: np.ndarray, centres) -> None:
    """PoI counts: Poisson with intensities tied to urbanity, population and land use, each with its
    own smooth log-normal modulation so that no category copies another; none in the countryside
    (but on its main roads: signals, parking). Railway stations: one near the main centre, one near
    each other centre half the time."""
    shape = u.shape
    height, width = shape
    land = (1.0 - layers["landuse_sea"]) * np.maximum(settled, layers["landuse_air_sea_ports"] > 0)
    pop_k = layers["population"] / 1000.0
    comm = layers["landuse_industrial_commercial"]
    port = layers["landuse_air_sea_ports"]
    prim = layers["poi_primary_roads"] / city.grid.cell_size_m
    leis = layers["landuse_leisure_facilities"]
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
        modulation = np.exp(0.4 * random_field(rng, shape, 1.5) - 0.08)
        layers[name] = rng.poisson(np.clip(lam * modulation * land, 0.0, None)).astype(float)
    stations = layers["poi_railway_stations"]
    for k, (row, col, _, radius) in enumerate(centres):
        if k == 0 or rng.random() < 0.5:
            r = int(np.clip(round(row + rng.normal(0, max(1.0, radius / 4))), 0, height - 1))
            c = int(np.clip(round(col + rng.normal(0, max(1.0, radius / 4))), 0, width - 1))
            if land[r, c] > 0.5:
                stations[r, c] += 1


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
    secondary = cell_m * (0.6 + 5.0 * urban ** 0.8) * np.exp(0.3 * random_field(rng, urban.shape, 1.0))
    secondary *= rng.uniform(0.6, 1.0, urban.shape) * (urban > 0.02)
    return primary, secondary, motorways


