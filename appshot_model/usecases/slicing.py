"""Radio-network slicing: multiplexing efficiency of per-service slices (AppShot, seed 000 section
VIII, Table VI; after Marquez et al., MobiCom 2018, the paper's ref. [3]).

Every grid cell is a small cell and every service a slice. Over a reconfiguration period t of
``period_h`` consecutive hours, slice s in cell i needs r_{i,s}(p, t), the p-quantile of its
hourly demand in that period: enough to serve the slice in a fraction p of the hours. Without
slicing the cell needs R_i(p, t), the p-quantile of the summed demand. The efficiency is

    E(p) = sum_t sum_i R_i(p, t) / sum_t sum_i sum_s r_{i,s}(p, t)   (<= 1; 1 = slicing costs nothing)

Quantiles are empirical: the smallest hourly value whose share of hours at or below it is at
least p (numpy's ``inverted_cdf``), so the resource really covers p of the hours. Periods are
consecutive windows from the first hour; an incomplete last window is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.plots import plt, png_bytes

#: Coverage probabilities and reconfiguration periods (hours) of the paper's Table VI.
COVERAGES = (0.95, 0.99)
PERIODS_H = (2, 4, 8, 12, 16, 20, 24, 36)


def _demand(series) -> np.ndarray:
    """``[time, service, ...cells]`` -> float64 ``[time, service, cells]``, checked."""
    arr = np.asarray(series, dtype=np.float64)
    if arr.ndim < 2:
        raise AppshotInputError(f"slicing needs demand [time, service, ...cells], got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise AppshotInputError("slicing demand must be finite and >= 0")
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def slicing_efficiency(series, p: float, period_h: int) -> float:
    """E(p) of hourly demand ``[time, service, ...cells]`` for reconfiguration periods of ``period_h`` hours."""
    demand = _demand(series)
    if not 0.0 < p <= 1.0:
        raise AppshotInputError(f"coverage p must lie in (0, 1], got {p}")
    n_periods = demand.shape[0] // int(period_h)
    if period_h < 1 or n_periods < 1:
        raise AppshotInputError(f"{demand.shape[0]} hours hold no whole period of {period_h} h")
    windows = demand[: n_periods * period_h].reshape(n_periods, period_h, *demand.shape[1:])
    sliced = np.quantile(windows, p, axis=1, method="inverted_cdf").sum()
    shared = np.quantile(windows.sum(axis=2), p, axis=1, method="inverted_cdf").sum()
    if sliced <= 0:
        raise AppshotInputError("no demand to slice: every per-slice quantile is 0")
    return float(shared / sliced)


def efficiency_table(real, generated, coverages: Sequence[float] = COVERAGES,
                     periods_h: Sequence[int] = PERIODS_H) -> pd.DataFrame:
    """E(p) on real and on generated demand per coverage and period, with the relative error
    ``|E_generated - E_real| / E_real`` (columns ``p, period_h, e_real, e_generated, rel_error``)."""
    rows = []
    for p in coverages:
        for period in periods_h:
            e_real, e_gen = slicing_efficiency(real, p, period), slicing_efficiency(generated, p, period)
            rows.append({"p": float(p), "period_h": int(period), "e_real": e_real, "e_generated": e_gen,
                         "rel_error": abs(e_gen - e_real) / e_real})
    return pd.DataFrame(rows)


def efficiency_png(table: pd.DataFrame, title: str = "Slicing multiplexing efficiency") -> bytes:
    """E(p) against the reconfiguration period, real (solid) and generated (dashed), PNG bytes."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for p, part in table.groupby("p"):
        line, = ax.plot(part.period_h, part.e_real, marker="o", label=f"real, p = {p:g}")
        ax.plot(part.period_h, part.e_generated, marker="x", linestyle="--", color=line.get_color(),
                label=f"generated, p = {p:g} (max error {part.rel_error.max():.1%})")
    ax.set_xlabel("reconfiguration period (hours)")
    ax.set_ylabel("E(p)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return png_bytes(fig)
