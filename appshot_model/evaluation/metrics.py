"""Fidelity metrics of AppShot §VI-A (Xu et al., IEEE TNSM 2022) and the plots' raw arrays.

Conventions
-----------
- Maps are numpy arrays in traffic units (whatever the cube declares, e.g. bit/s per cell):
  a snapshot is ``[service, y, x]``, a set of snapshots ``[sample, service, y, x]``; one service
  map is ``[y, x]``. Values must be finite and >= 0 (traffic); anything else raises ``ValueError``.
- Distances are in **cell units** (one cell side = 1; multiply by the cell size, 250 m by default,
  for metres). NEMD is a ratio of two EMDs, so it has no unit.

Headline metrics (paper §VI-A; see ``docs/evaluation.md`` for the averaging used by :func:`score`)
-------------------------------------------------------------------------------------------------
- WErr = sum_s r_s |t_s - t~_s| / t_s with r_s = t_s / sum_s' t_s'. Because r_s / t_s = 1 / T,
  this is sum_s |t_s - t~_s| / T (T = total real volume), which is also how services with no real
  traffic are handled (their generated volume counts as error). A fraction (0.179 = 17.9 %).
- NEMD = EMD(mu, nu) / EMD(mu, phi): mu, nu the real and generated maps scaled to unit mass, phi the
  uniform map, ground distance the Euclidean distance between cell centres. Exact (see below).
- SSIM, PSNR: ``skimage.metrics`` on maps divided by a per-service scale (default: the real map's
  maximum, in :func:`score` the maximum over all real snapshots of the city), ``data_range = 1``.
  PSNR in dB. SSIM uses skimage's defaults (7 x 7 uniform window, K1 = 0.01, K2 = 0.03); the window
  shrinks to the largest odd size that fits maps smaller than 7 cells.
- Hotspots (§IV, after the paper's ref. [32]): a cell whose traffic is above a threshold and not
  lower than any of its 8 neighbours. Default threshold: the 0.9 quantile of the map's own values
  (:data:`HOTSPOT_QUANTILE`), i.e. only the top 10 % of cells can be hotspots. A relative threshold
  makes the count depend on the spatial pattern, not on the city's volume (which WErr measures), and
  a quantile rather than a fraction of the maximum is not driven by a single extreme cell.
- HEMD: 1-D EMD (``scipy.stats.wasserstein_distance``) between the distributions of hotspot counts
  over snapshots, real vs generated; in hotspots.

The exact EMD behind NEMD lives in :mod:`appshot_model.evaluation.emd`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from typing import Literal

import numpy as np
from scipy import ndimage, stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from appshot_model.core.cube import grid_of
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import LANDUSE_ATTRIBUTES, POI_ATTRIBUTES
from appshot_model.evaluation.emd import emd_to_uniform, nemd, traffic_array

#: Default hotspot threshold: this quantile of the map's own cell values.
HOTSPOT_QUANTILE = 0.9
HEADLINE_METRICS = ("werr", "nemd", "ssim", "psnr", "hemd")


def _as_sets(real, generated, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Both as ``[n, s, y, x]`` (a single snapshot ``[s, y, x]`` becomes ``n = 1``)."""
    r = traffic_array(real, f"real {what}".strip(), (3, 4))
    g = traffic_array(generated, f"generated {what}".strip(), (3, 4))
    r = r[None] if r.ndim == 3 else r
    g = g[None] if g.ndim == 3 else g
    if r.shape[1:] != g.shape[1:]:
        raise ValueError(f"real snapshots are {r.shape[1:]} [service, y, x] but generated are {g.shape[1:]}")
    return r, g


# --------------------------------------------------------------------------------------------
# WErr and service shares


def service_totals(snapshots) -> np.ndarray:
    """Mean per-snapshot volume of each service, ``[s]`` in traffic units x cells."""
    x = traffic_array(snapshots, "snapshots", (3, 4))
    x = x[None] if x.ndim == 3 else x
    return x.sum(axis=(2, 3)).mean(axis=0)


def werr(real, generated) -> float:
    """Weighted relative error of per-service volume (fraction). Inputs ``[s, y, x]`` or
    ``[n, s, y, x]``; volumes are mean per-snapshot totals, so set sizes may differ.
    ``WErr = sum_s r_s |t_s - t~_s| / t_s = sum_s |t_s - t~_s| / sum_s t_s``."""
    r, g = _as_sets(real, generated)
    t, t_gen = service_totals(r), service_totals(g)
    total = t.sum()
    if total <= 0:
        raise ValueError("real traffic is zero everywhere: WErr is undefined")
    return float(np.abs(t - t_gen).sum() / total)


def service_shares(snapshots) -> np.ndarray:
    """Share of each service in total volume, ``[s]`` (sums to 1)."""
    totals = service_totals(snapshots)
    if totals.sum() <= 0:
        raise ValueError("traffic is zero everywhere: shares are undefined")
    return totals / totals.sum()


def share_errors(real, generated) -> np.ndarray:
    """Relative error of each service's share of total traffic, ``|r~_s - r_s| / r_s`` (``[s]``,
    fractions; ``nan`` for a service absent from the real data). Paper Fig. 12b."""
    r, g = service_shares(real), service_shares(generated)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, np.abs(g - r) / np.where(r > 0, r, 1.0), np.nan)


def _window(height: int, width: int) -> int:
    side = min(7, height, width)
    return side if side % 2 else side - 1


def _scaled_pair(real, generated, scale) -> tuple[np.ndarray, np.ndarray]:
    r = traffic_array(real, "real map", (2, 3))
    g = traffic_array(generated, "generated map", (2, 3))
    if r.shape != g.shape:
        raise ValueError(f"real map is {r.shape} but generated map is {g.shape}")
    r3, g3 = (r[None], g[None]) if r.ndim == 2 else (r, g)
    if scale is None:
        scale = r3.max(axis=(1, 2))
    scale = np.broadcast_to(np.asarray(scale, np.float64), (r3.shape[0],)).copy()
    scale[~(scale > 0)] = 1.0
    return r3 / scale[:, None, None], g3 / scale[:, None, None]


def ssim(real, generated, scale=None) -> float:
    """Mean SSIM over services of ``[y, x]`` or ``[s, y, x]`` maps, each service divided by
    ``scale`` (per service; default the real map's maximum) and compared with ``data_range = 1``."""
    r, g = _scaled_pair(real, generated, scale)
    if min(r.shape[1:]) < 3:
        raise ValueError(f"maps of {r.shape[1:]} cells are too small for SSIM (need >= 3 x 3)")
    win = _window(*r.shape[1:])
    return float(np.mean([structural_similarity(r[s], g[s], data_range=1.0, win_size=win)
                          for s in range(r.shape[0])]))


def psnr(real, generated, scale=None) -> float:
    """Mean PSNR (dB) over services of ``[y, x]`` or ``[s, y, x]`` maps scaled as in :func:`ssim`,
    ``10 log10(1 / MSE)`` with ``data_range = 1``; ``inf`` for identical maps."""
    r, g = _scaled_pair(real, generated, scale)
    values = []
    for s in range(r.shape[0]):
        if np.array_equal(r[s], g[s]):
            values.append(math.inf)
        else:
            values.append(peak_signal_noise_ratio(r[s], g[s], data_range=1.0))
    return float(np.mean(values))


# --------------------------------------------------------------------------------------------
# hotspots


def hotspots(traffic_map, threshold: float | None = None, *, quantile: float = HOTSPOT_QUANTILE) -> np.ndarray:
    """Boolean ``[y, x]`` mask of hotspot cells: value > ``threshold`` (traffic units; default the
    ``quantile`` of the map's values) and >= each of its 8 neighbours (cells outside the map do not
    count). A constant map has none; a single peak gives one."""
    m = traffic_array(traffic_map, "map", (2,))
    if threshold is None:
        if not 0.0 <= quantile < 1.0:
            raise ValueError(f"hotspot quantile must be in [0, 1), got {quantile}")
        threshold = float(np.quantile(m, quantile))
    padded = np.pad(m, 1, mode="constant", constant_values=-np.inf)
    height, width = m.shape
    peak = m > threshold
    for dy, dx in itertools.product((-1, 0, 1), repeat=2):
        if dy or dx:
            peak &= m >= padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    return peak


def hotspot_count(traffic_map, threshold: float | None = None, *, quantile: float = HOTSPOT_QUANTILE) -> int:
    """Number of hotspots of a ``[y, x]`` map (:func:`hotspots`)."""
    return int(hotspots(traffic_map, threshold, quantile=quantile).sum())


def hotspot_counts(snapshots, *, quantile: float = HOTSPOT_QUANTILE, total: bool = False) -> np.ndarray:
    """Hotspot counts of ``[n, s, y, x]`` snapshots: ``[n, s]`` per service, or ``[n]`` of the total
    traffic (sum over services) when ``total``."""
    x = traffic_array(snapshots, "snapshots", (4,))
    if total:
        return np.array([hotspot_count(m, quantile=quantile) for m in x.sum(axis=1)], dtype=np.int64)
    return np.array([[hotspot_count(m, quantile=quantile) for m in snap] for snap in x], dtype=np.int64)


def hemd(real_counts, generated_counts) -> float:
    """1-D EMD (in hotspots) between the empirical distributions of hotspot counts over snapshots."""
    r = np.asarray(real_counts, np.float64).ravel()
    g = np.asarray(generated_counts, np.float64).ravel()
    if r.size == 0 or g.size == 0:
        raise ValueError("HEMD needs at least one real and one generated hotspot count")
    return float(stats.wasserstein_distance(r, g))


# --------------------------------------------------------------------------------------------
# inter-service structure and stochasticity


def mean_pairwise_ssim(snapshot) -> float:
    """Mean SSIM over all pairs of service maps of one ``[s, y, x]`` snapshot, each service divided
    by its own maximum (spatial structure only), ``data_range = 1``. Paper §VII-A, Fig. 12a."""
    x = traffic_array(snapshot, "snapshot", (3,))
    if x.shape[0] < 2:
        raise ValueError("pairwise SSIM needs at least two services")
    top = x.max(axis=(1, 2))
    x = x / np.where(top > 0, top, 1.0)[:, None, None]
    win = _window(*x.shape[1:])
    return float(np.mean([structural_similarity(x[i], x[j], data_range=1.0, win_size=win)
                          for i, j in itertools.combinations(range(x.shape[0]), 2)]))


def pairwise_ssim_error(real, generated) -> float:
    """Relative error of the mean pairwise service SSIM, averaged over each set's snapshots:
    ``|m~ - m| / m`` (fraction; the paper reports AppShot within 0.14)."""
    r, g = _as_sets(real, generated)
    m_real = float(np.mean([mean_pairwise_ssim(s) for s in r]))
    m_gen = float(np.mean([mean_pairwise_ssim(s) for s in g]))
    return abs(m_gen - m_real) / abs(m_real) if m_real else math.nan


def city_totals(snapshots) -> np.ndarray:
    """Total volume (all services, all cells) of each snapshot, ``[n]``."""
    x = traffic_array(snapshots, "snapshots", (4,))
    return x.sum(axis=(1, 2, 3))


def pixel_values(snapshots, service: int | None = None) -> np.ndarray:
    """All cell values of the total traffic (or of service index ``service``) over the snapshots, 1-D."""
    x = traffic_array(snapshots, "snapshots", (4,))
    return (x.sum(axis=1) if service is None else x[:, service]).ravel()


def stochasticity_histograms(real, generated, bins: int = 30, *, quantile: float = HOTSPOT_QUANTILE,
                             log_pixels: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Histograms of city totals, pixel values (total traffic; ``log10(1 + v)`` when ``log_pixels``)
    and hotspot counts (total traffic) of real vs generated ``[n, s, y, x]`` sets, on shared bin
    edges. Returns ``{name: {"edges", "real", "generated"}}`` with densities (area 1)."""
    r, g = _as_sets(real, generated)
    samples = {
        "city_total": (city_totals(r), city_totals(g)),
        "pixel_value": (pixel_values(r), pixel_values(g)),
        "hotspot_count": (hotspot_counts(r, quantile=quantile, total=True).astype(float),
                          hotspot_counts(g, quantile=quantile, total=True).astype(float)),
    }
    if log_pixels:
        samples["pixel_value"] = tuple(np.log10(1.0 + v) for v in samples["pixel_value"])
    out = {}
    for name, (a, b) in samples.items():
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        if name == "hotspot_count":
            edges = np.arange(math.floor(lo), math.ceil(hi) + 2) - 0.5
        else:
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        out[name] = {"edges": edges, "real": np.histogram(a, edges, density=True)[0],
                     "generated": np.histogram(b, edges, density=True)[0]}
    return out


# --------------------------------------------------------------------------------------------
# the paper's five numbers for one city


def _pairs(n_real: int, n_gen: int, pairing: str, max_pairs: int | None) -> list[tuple[int, int]]:
    if pairing == "paired":
        pairs = [(i, i) for i in range(min(n_real, n_gen))]
    elif pairing == "all":
        pairs = list(itertools.product(range(n_real), range(n_gen)))
    else:
        raise ValueError(f"pairing must be 'paired', 'all' or 'mean', got {pairing!r}")
    if max_pairs is not None and len(pairs) > max_pairs:
        pick = np.unique(np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int))
        pairs = [pairs[i] for i in pick]
    return pairs


def score(real_snapshots, generated_samples, *, pairing: Literal["paired", "all", "mean"] = "paired",
          max_pairs: int | None = None, nemd_method: Literal["exact", "coarse"] = "exact", nemd_block: int = 2,
          nemd_max_pairs: int | None = None, hotspot_quantile: float = HOTSPOT_QUANTILE,
          emd_cache: dict | None = None, timings: dict | None = None) -> dict[str, float]:
    """WErr, NEMD, SSIM, PSNR, HEMD (paper §VI-A) of generated samples ``[n, s, y, x]`` against a
    city's real weekday snapshots ``[t, s, y, x]`` (traffic units, same grid and service order).

    - WErr: mean per-snapshot service volumes of each set.
    - NEMD, SSIM, PSNR: per service map and per (real, generated) pair, averaged over services and
      pairs. ``pairing="paired"`` pairs real snapshot i with sample i (i < min(t, n): independent
      draws, so an unbiased estimate of the expected score of a generated map against a real one;
      this is also how the "Data" halves are compared), ``"all"`` every real x generated pair,
      ``"mean"`` the mean real map with the mean generated map. ``max_pairs`` thins evenly;
      ``nemd_max_pairs`` further limits the pairs used for NEMD (the costly metric).
      SSIM/PSNR scale: per service, the maximum over all real snapshots; ``data_range = 1``.
    - HEMD: per service, hotspot counts of all real snapshots vs all samples, averaged over services.
    - also ``pairwise_ssim_error`` (inter-service structure), ``share_error`` (mean over services of
      the relative share error), ``n_pairs``, ``n_nemd_pairs`` and ``n_nemd_undefined`` (service maps
      left out of NEMD because the real or the generated map is all zero).

    ``emd_cache``: a dict shared between calls with the same real snapshots (e.g. one per city, across
    methods) to reuse EMD(real map, uniform), keyed by the map's bytes, method and block. ``timings`` (a
    dict), when given, receives the CPU seconds of this process spent on ``"nemd"`` (numerators and uncached
    denominators) and on everything else (``"other"``), added to what it already holds.
    """
    started = time.process_time()
    r, g = _as_sets(real_snapshots, generated_samples)
    n_services = r.shape[1]
    if pairing == "mean":
        maps = [(-1, r.mean(axis=0), g.mean(axis=0))]
    else:
        maps = [(i, r[i], g[j]) for i, j in _pairs(r.shape[0], g.shape[0], pairing, max_pairs)]
    scale = r.max(axis=(0, 2, 3))
    ssims = [ssim(a, b, scale=scale) for _, a, b in maps]
    psnrs = [psnr(a, b, scale=scale) for _, a, b in maps]
    nemd_maps = maps if nemd_max_pairs is None else [maps[i] for i in np.unique(
        np.linspace(0, len(maps) - 1, max(1, min(nemd_max_pairs, len(maps)))).round().astype(int))]
    nemds, undefined = [], 0
    denominators = {} if emd_cache is None else emd_cache
    nemd_started = time.process_time()
    for _, a, b in nemd_maps:
        for s in range(n_services):
            if a[s].sum() <= 0 or b[s].sum() <= 0:  # no distribution on one side: counted, not scored
                undefined += 1
                continue
            key = (hashlib.sha256(np.ascontiguousarray(a[s]).tobytes()).hexdigest(), a[s].shape, nemd_method,
                   1 if nemd_method == "exact" else int(nemd_block))
            if key not in denominators:
                denominators[key] = emd_to_uniform(a[s], method=nemd_method, block=nemd_block)
            nemds.append(nemd(a[s], b[s], method=nemd_method, block=nemd_block, denominator=denominators[key]))
    nemd_seconds = time.process_time() - nemd_started
    counts_real = hotspot_counts(r, quantile=hotspot_quantile)
    counts_gen = hotspot_counts(g, quantile=hotspot_quantile)
    hemds = [hemd(counts_real[:, s], counts_gen[:, s]) for s in range(n_services)]
    errors = share_errors(r, g)
    result = {
        "werr": werr(r, g),
        "nemd": float(np.nanmean(nemds)) if nemds else math.nan,
        "ssim": float(np.mean(ssims)),
        "psnr": float(np.mean(psnrs)),
        "hemd": float(np.mean(hemds)),
        "pairwise_ssim_error": pairwise_ssim_error(r, g) if n_services > 1 else math.nan,
        "share_error": float(np.nanmean(errors)) if np.isfinite(errors).any() else math.nan,
        "n_pairs": float(len(maps)),
        "n_nemd_pairs": float(len(nemd_maps)),
        "n_nemd_undefined": float(undefined),
    }
    if timings is not None:
        timings["nemd"] = timings.get("nemd", 0.0) + nemd_seconds
        timings["other"] = timings.get("other", 0.0) + time.process_time() - started - nemd_seconds
    return result


# --------------------------------------------------------------------------------------------
# traffic where nothing is


def remote_empty_cells(context_cube, distance_m: float = 2000.0, landuse_min: float = 0.3,
                       inhabited_min: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(remote, inhabited)`` boolean ``[y, x]`` masks of a context cube ``[attribute, y, x]`` (raw units):
    inhabited cells have population >= ``inhabited_min``; remote empty cells are covered by land use (the
    land-use fractions sum to more than ``landuse_min``), lie more than ``distance_m`` (centre to centre)
    from any inhabited cell, and have no PoI and no road (every ``poi_*`` layer 0)."""
    present = {str(a) for a in context_cube.attribute.values}
    needed = ["population", *LANDUSE_ATTRIBUTES, *POI_ATTRIBUTES]
    missing = [a for a in needed if a not in present]
    if missing:
        raise AppshotInputError(f"context cube lacks {missing}: remote empty land needs population, land use and PoIs")
    grid = grid_of(context_cube)
    inhabited = context_cube.sel(attribute="population").values >= inhabited_min
    covered = context_cube.sel(attribute=list(LANDUSE_ATTRIBUTES)).values.sum(axis=0) > landuse_min
    no_poi = (context_cube.sel(attribute=list(POI_ATTRIBUTES)).values == 0).all(axis=0)
    if inhabited.any():
        distance = ndimage.distance_transform_edt(~inhabited, sampling=(grid.cell_height, grid.cell_size_m))
    else:
        distance = np.full(inhabited.shape, np.inf)
    return covered & no_poi & (distance > distance_m), inhabited


def remote_empty_share(context_cube, traffic_map, **options) -> tuple[float, int]:
    """Mean of ``traffic_map [y, x]`` over the remote empty cells (:func:`remote_empty_cells`, ``options``
    go there) as a share of its mean over inhabited cells, and the number of remote empty cells
    (share NaN when there are none)."""
    remote, inhabited = remote_empty_cells(context_cube, **options)
    values = traffic_array(traffic_map, "traffic map", (2,))
    if values.shape != remote.shape:
        raise AppshotInputError(f"traffic map is {values.shape}, context cube is {remote.shape}")
    if not inhabited.any():
        raise AppshotInputError("context cube has no inhabited cell (population >= 1): no reference level")
    if not remote.any():
        return math.nan, 0
    return float(values[remote].mean() / values[inhabited].mean()), int(remote.sum())
