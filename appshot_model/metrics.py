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

Exact EMD on a city grid
------------------------
The EMD with a metric ground distance only depends on the difference of the two distributions
(Kantorovich-Rubinstein), so mass both maps share stays in place: the problem is solved between
``max(mu - nu, 0)`` and ``max(nu - mu, 0)``, whose supports are disjoint (at most N^2 / 4 arcs instead
of N^2 for N cells). Even so a 97 x 123 city has ~30 M arcs, too slow for POT's dense network simplex
(60-80 s, 1.5 GB here). :func:`emd_grid` therefore solves it exactly by column generation with
POT's sparse network simplex: a multiscale pass (2 x 2 block sums, then 4 x 4 ...) gives dual
potentials; the fine problem starts from the arcs whose reduced cost under the interpolated
potentials is small, plus a north-west-corner plan that makes it feasible; after each solve every
one of the ~30 M arcs is priced, the violated ones are added, and the loop stops when none is left.
The result is certified optimal: the returned duals are feasible for the full problem (every
reduced cost >= -tol, ``tol = 1e-9`` cells) and the primal-dual gap is checked, so the value is the
exact EMD up to ``tol`` (x unit mass) and float rounding. A solver status other than optimal raises
:class:`EMDSolverError` after retrying with a 10x larger iteration limit.

``method="coarse"`` (approximate, named as such) stops at ``block x block`` block sums placed at the
block centres; since every cell moves by at most ``(block - 1) / sqrt(2)`` cells, the EMD changes by
at most ``sqrt(2) (block - 1)`` cells (measured error in ``docs/evaluation.md``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import ot
from scipy import ndimage, stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

#: Default hotspot threshold: this quantile of the map's own cell values.
HOTSPOT_QUANTILE = 0.9
#: Reduced-cost tolerance (cell units) of the optimality certificate of :func:`emd_grid`.
EMD_TOLERANCE = 1e-9
#: Default iteration limit of one network-simplex solve (multiplied by 10 on each retry).
EMD_NUM_ITERMAX = 10_000_000
#: The coarsest multiscale level has at most this many cells; a problem with at most this many
#: arcs is solved in one go with every arc present.
COARSEST_CELLS = 1600
FULL_ARCS = 1_500_000
#: Initial arcs of a level: reduced cost (under the coarser level's potentials) below this factor
#: times the coarser block size.
ARC_THRESHOLD_FACTOR = 0.5
#: Elements per pricing block (float64): bounds the pricing memory to ~5 x 8 x this bytes.
PRICING_BLOCK = 2_000_000
HEADLINE_METRICS = ("werr", "nemd", "ssim", "psnr", "hemd")

_RESULT_OPTIMAL, _RESULT_MAX_ITER = 1, 3


class EMDSolverError(RuntimeError):
    """The transport solver did not reach a certified optimum (never a silently wrong EMD)."""


# --------------------------------------------------------------------------------------------
# input checks


def _traffic(array, what: str, ndims: Sequence[int]) -> np.ndarray:
    values = np.asarray(array, dtype=np.float64)
    if values.ndim not in ndims:
        raise ValueError(f"{what} has shape {values.shape}; expected {' or '.join(f'{n}-D' for n in ndims)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what} has {int((~np.isfinite(values)).sum())} NaN/inf values")
    if (values < 0).any():
        raise ValueError(f"{what} has {int((values < 0).sum())} negative values; traffic must be >= 0")
    return values


def _as_sets(real, generated, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Both as ``[n, s, y, x]`` (a single snapshot ``[s, y, x]`` becomes ``n = 1``)."""
    r = _traffic(real, f"real {what}".strip(), (3, 4))
    g = _traffic(generated, f"generated {what}".strip(), (3, 4))
    r = r[None] if r.ndim == 3 else r
    g = g[None] if g.ndim == 3 else g
    if r.shape[1:] != g.shape[1:]:
        raise ValueError(f"real snapshots are {r.shape[1:]} [service, y, x] but generated are {g.shape[1:]}")
    return r, g


# --------------------------------------------------------------------------------------------
# WErr and service shares


def service_totals(snapshots) -> np.ndarray:
    """Mean per-snapshot volume of each service, ``[s]`` in traffic units x cells."""
    x = _traffic(snapshots, "snapshots", (3, 4))
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


# --------------------------------------------------------------------------------------------
# exact EMD between two maps on a grid


def _block_sums(m: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return m
    height, width = m.shape
    padded = np.zeros((-(-height // k) * k, -(-width // k) * k))
    padded[:height, :width] = m
    return padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).sum(axis=(1, 3))


def _block_centres(length: int, k: int) -> np.ndarray:
    """Centre (cell units) of the cells of each ``k``-block along an axis of ``length`` cells."""
    starts = np.arange(0, length, k)
    return (starts + np.minimum(starts + k, length) - 1) / 2.0


def _north_west_corner(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arcs of the north-west-corner plan between ``a`` and ``b`` (same total): a feasible support."""
    ca, cb = np.cumsum(a), np.cumsum(b)
    total = min(ca[-1], cb[-1])
    edges = np.unique(np.concatenate([[0.0], ca[:-1], cb[:-1]]))
    edges = edges[edges < total]
    mids = (edges + np.append(edges[1:], total)) / 2.0
    rows = np.minimum(np.searchsorted(ca, mids, side="right"), len(a) - 1)
    cols = np.minimum(np.searchsorted(cb, mids, side="right"), len(b) - 1)
    return rows.astype(np.int64), cols.astype(np.int64)


def _price(ya, xa, yb, xb, u, v, below: float) -> tuple[np.ndarray, float]:
    """Flat indices ``i * n2 + j`` of arcs with reduced cost ``d_ij - u_i - v_j < below``, and the
    smallest reduced cost (all ``n1 x n2`` arcs, in row blocks)."""
    n1, n2 = len(ya), len(yb)
    step = max(1, PRICING_BLOCK // max(n2, 1))
    found, worst = [], math.inf
    for start in range(0, n1, step):
        stop = min(start + step, n1)
        dy = np.subtract.outer(ya[start:stop], yb)
        dx = np.subtract.outer(xa[start:stop], xb)
        red = np.multiply(dy, dy, out=dy)
        red += np.multiply(dx, dx, out=dx)
        np.sqrt(red, out=red)
        red -= u[start:stop, None]
        red -= v[None, :]
        worst = min(worst, float(red.min()))
        r, c = np.nonzero(red < below)
        if len(r):
            found.append((r + start).astype(np.int64) * n2 + c)
    return (np.concatenate(found) if found else np.zeros(0, np.int64)), worst


from ot.lp.emd_wrap import check_result as _check_result  # noqa: E402

try:  # POT >= 0.9.6: sparse network simplex with warm start
    from ot.lp.emd_wrap import emd_c_sparse as _emd_c_sparse
except ImportError:  # pragma: no cover - older POT: dense fallback below
    _emd_c_sparse = None


def _network_simplex(a, b, rows, cols, costs, u0, v0, num_itermax: int, max_retries: int,
                     dense_shape: tuple[int, int] | None = None):
    """One transport solve on the arcs given; raises unless POT reports an optimal solution."""
    limit = int(num_itermax)
    for attempt in range(max_retries + 1):
        if _emd_c_sparse is not None:
            args = (a, b, rows.astype(np.uint64), cols.astype(np.uint64), costs, limit)
            if u0 is not None:
                args += (np.ascontiguousarray(u0, np.float64), np.ascontiguousarray(v0, np.float64))
            out = _emd_c_sparse(*args)
            src, dst, flow, cost, u, v, code = out
        else:  # pragma: no cover - POT without the sparse solver: dense, every arc given (``full``)
            matrix = np.full(dense_shape, np.inf)
            matrix[rows, cols] = costs
            plan, log = ot.emd(a, b, matrix, numItermax=limit, log=True, center_dual=False)
            src, dst = np.nonzero(plan)
            flow, cost, u, v, code = plan[src, dst], log["cost"], log["u"], log["v"], log["result_code"]
        if code == _RESULT_OPTIMAL:
            return float(cost), np.asarray(u, np.float64), np.asarray(v, np.float64), src, dst, flow
        with warnings.catch_warnings():  # POT warns as well as returning the message
            warnings.simplefilter("ignore")
            message = _check_result(code)
        if code != _RESULT_MAX_ITER:
            raise EMDSolverError(f"network simplex failed ({message}) on {len(a)} x {len(b)} nodes")
        limit *= 10
    raise EMDSolverError(f"network simplex did not converge within numItermax = {limit // 10} "
                         f"({max_retries} retries with 10x more iterations) on {len(a)} x {len(b)} nodes")


def _solve_level(a: np.ndarray, b: np.ndarray, ys: np.ndarray, xs: np.ndarray, f0: np.ndarray | None,
                 threshold: float, tol: float, num_itermax: int, max_retries: int, max_rounds: int,
                 stats_out: list[dict]) -> tuple[float, np.ndarray]:
    """Exact EMD between unit-mass grids ``a`` and ``b`` (same shape) whose cell centres are
    ``ys x xs``; returns the cost and a potential ``f`` on the grid for the next level."""
    started = time.perf_counter()
    height, width = a.shape
    diff = (a - b).ravel()
    supply, demand = np.flatnonzero(diff > 0), np.flatnonzero(diff < 0)
    n1, n2 = len(supply), len(demand)
    if n1 == 0 or n2 == 0:
        stats_out.append({"shape": (height, width), "nodes": (n1, n2), "rounds": 0, "arcs": 0, "seconds": 0.0})
        return 0.0, np.zeros((height, width))
    sa, sb = diff[supply], -diff[demand]
    sb = sb * (sa.sum() / sb.sum())
    ya, xa = ys[supply // width], xs[supply % width]
    yb, xb = ys[demand // width], xs[demand % width]
    full = f0 is None or n1 * n2 <= FULL_ARCS or _emd_c_sparse is None  # old POT: one dense solve
    mask = np.ones(n1 * n2, bool) if full else np.zeros(n1 * n2, bool)
    u = v = None
    if not full:
        u, v = f0.ravel()[supply], -f0.ravel()[demand]
        start_arcs, _ = _price(ya, xa, yb, xb, u, v, threshold)
        mask[start_arcs] = True
        r, c = _north_west_corner(sa, sb)
        mask[r * n2 + c] = True
    for round_ in range(1, max_rounds + 1):
        key = np.flatnonzero(mask)
        rows, cols = key // n2, key % n2
        costs = np.hypot(ya[rows] - yb[cols], xa[rows] - xb[cols])
        cost, u, v, *_ = _network_simplex(sa, sb, rows, cols, costs, u, v, num_itermax, max_retries,
                                          dense_shape=(n1, n2))
        if full:
            worst = 0.0
            violated = np.zeros(0, np.int64)
        else:
            violated, worst = _price(ya, xa, yb, xb, u, v, -tol)
        if len(violated) == 0:
            gap = abs(float(sa @ u + sb @ v) - cost)
            if gap > 1e-9 * max(1.0, cost):
                raise EMDSolverError(f"primal-dual gap {gap:.3g} after an optimal solve; EMD not certified")
            stats_out.append({"shape": (height, width), "nodes": (n1, n2), "rounds": round_, "arcs": len(key),
                              "seconds": round(time.perf_counter() - started, 3), "min_reduced_cost": worst})
            potential = np.zeros(height * width)
            potential[supply], potential[demand] = u, -v
            return cost, _fill_potential(potential.reshape(height, width), diff.reshape(height, width) != 0)
        mask[violated] = True
    raise EMDSolverError(f"column generation did not reach optimality in {max_rounds} rounds "
                         f"({len(violated)} arcs still violate the dual constraints)")


def _fill_potential(potential: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Cells without mass difference take the potential of the nearest cell with one (heuristic
    starting point for the next level only; never used in the returned EMD)."""
    if known.all() or not known.any():
        return potential
    idx = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
    return potential[idx[0], idx[1]]


def _levels(height: int, width: int, stop: int) -> list[int]:
    """Block sizes, coarsest first, ending at ``stop``."""
    levels = [stop]
    while -(-height // levels[-1]) * -(-width // levels[-1]) > COARSEST_CELLS:
        levels.append(levels[-1] * 2)
    return levels[::-1]


def emd_grid(p, q, *, method: Literal["exact", "coarse"] = "exact", block: int = 2, tol: float = EMD_TOLERANCE,
             num_itermax: int = EMD_NUM_ITERMAX, max_retries: int = 2, max_rounds: int = 100,
             info: dict | None = None) -> float:
    """EMD between two non-negative ``[y, x]`` maps scaled to unit mass, Euclidean ground distance
    between cell centres, in **cell units**.

    ``method="exact"``: certified optimum (module docstring). ``method="coarse"``: APPROXIMATE, the
    exact EMD between ``block x block`` block sums at the block centres (error <= sqrt(2) (block - 1)
    cells). Raises :class:`EMDSolverError` when the solver does not converge (after ``max_retries``
    retries, each with 10x ``num_itermax``) and ``ValueError`` for empty or invalid maps. ``info``,
    when given, receives per-level statistics (nodes, arcs, rounds, seconds)."""
    a = _traffic(p, "first map", (2,))
    b = _traffic(q, "second map", (2,))
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("a map with zero total mass has no distribution: EMD is undefined")
    if method not in ("exact", "coarse"):
        raise ValueError(f"method must be 'exact' or 'coarse', got {method!r}")
    stop = 1 if method == "exact" else int(block)
    if stop < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    a, b = a / a.sum(), b / b.sum()
    height, width = a.shape
    level_stats: list[dict] = []
    started = time.perf_counter()
    potential, previous, cost = None, None, 0.0
    for k in _levels(height, width, stop):
        ys, xs = _block_centres(height, k), _block_centres(width, k)
        f0, threshold = None, math.inf
        if potential is not None:
            pys, pxs, pk = previous
            gy, gx = np.meshgrid(np.interp(ys, pys, np.arange(len(pys))), np.interp(xs, pxs, np.arange(len(pxs))),
                                 indexing="ij")
            f0 = ndimage.map_coordinates(potential, [gy, gx], order=1, mode="nearest")
            threshold = ARC_THRESHOLD_FACTOR * pk
        cost, potential = _solve_level(_block_sums(a, k), _block_sums(b, k), ys, xs, f0, threshold, tol,
                                       num_itermax, max_retries, max_rounds, level_stats)
        level_stats[-1]["block"] = k
        previous = (ys, xs, k)
    if info is not None:
        info.update(method=method, block=stop, levels=level_stats, seconds=round(time.perf_counter() - started, 3))
    return float(cost)


def emd_to_uniform(real_map, **kwargs) -> float:
    """EMD (cell units) between a map and the uniform map of the same grid."""
    a = _traffic(real_map, "map", (2,))
    return emd_grid(a, np.ones_like(a), **kwargs)


def nemd(real_map, generated_map, *, method: Literal["exact", "coarse"] = "exact", block: int = 2,
         denominator: float | None = None, **kwargs) -> float:
    """Normalised EMD of one service map ``[y, x]``: EMD(real, generated) / EMD(real, uniform)
    (no unit; 0 = same spatial distribution, 1 = as far as a uniform map). ``denominator`` may pass a
    cached EMD(real, uniform) computed with the same method. ``nan`` when the real map is uniform.
    Keyword arguments go to :func:`emd_grid`."""
    numerator = emd_grid(real_map, generated_map, method=method, block=block, **kwargs)
    if denominator is None:
        denominator = emd_to_uniform(real_map, method=method, block=block, **kwargs)
    if denominator <= 0:
        return math.nan
    return float(numerator / denominator)


# --------------------------------------------------------------------------------------------
# SSIM / PSNR


def _window(height: int, width: int) -> int:
    side = min(7, height, width)
    return side if side % 2 else side - 1


def _scaled_pair(real, generated, scale) -> tuple[np.ndarray, np.ndarray]:
    r = _traffic(real, "real map", (2, 3))
    g = _traffic(generated, "generated map", (2, 3))
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
    m = _traffic(traffic_map, "map", (2,))
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
    x = _traffic(snapshots, "snapshots", (4,))
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
    x = _traffic(snapshot, "snapshot", (3,))
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
    x = _traffic(snapshots, "snapshots", (4,))
    return x.sum(axis=(1, 2, 3))


def pixel_values(snapshots, service: int | None = None) -> np.ndarray:
    """All cell values of the total traffic (or of service index ``service``) over the snapshots, 1-D."""
    x = _traffic(snapshots, "snapshots", (4,))
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
          emd_cache: dict | None = None) -> dict[str, float]:
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
    methods) to reuse EMD(real map, uniform), keyed by the map's bytes, method and block.
    """
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
    counts_real = hotspot_counts(r, quantile=hotspot_quantile)
    counts_gen = hotspot_counts(g, quantile=hotspot_quantile)
    hemds = [hemd(counts_real[:, s], counts_gen[:, s]) for s in range(n_services)]
    errors = share_errors(r, g)
    return {
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
