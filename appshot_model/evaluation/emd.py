"""Exact earth mover's distance between two maps of a grid, and NEMD (AppShot §VI-A).

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

import math
import time
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import ot
from scipy import ndimage

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

_RESULT_OPTIMAL, _RESULT_MAX_ITER = 1, 3


class EMDSolverError(RuntimeError):
    """The transport solver did not reach a certified optimum (never a silently wrong EMD)."""


# --------------------------------------------------------------------------------------------
# input checks


def traffic_array(array, what: str, ndims: Sequence[int]) -> np.ndarray:
    """``array`` as float64 after checking its rank (one of ``ndims``), finiteness and sign."""
    values = np.asarray(array, dtype=np.float64)
    if values.ndim not in ndims:
        raise ValueError(f"{what} has shape {values.shape}; expected {' or '.join(f'{n}-D' for n in ndims)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what} has {int((~np.isfinite(values)).sum())} NaN/inf values")
    if (values < 0).any():
        raise ValueError(f"{what} has {int((values < 0).sum())} negative values; traffic must be >= 0")
    return values


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
    a = traffic_array(p, "first map", (2,))
    b = traffic_array(q, "second map", (2,))
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
    a = traffic_array(real_map, "map", (2,))
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
