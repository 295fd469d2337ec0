"""Temporal fidelity of generated traffic series: AC-L1 and the per-hour NEMD histogram.

AC-L1 (AppShot, seed 000 section VII-B, Table IV; after SpectraGAN and DoppelGANger, its refs.
[21], [22]): per pixel, the L1 distance between the autocorrelation functions of the real and
the synthetic series, averaged over pixels; lower is better. The paper does not state the lag
range. Its values (46.8-94.6) are sums over many lags (an L1 distance of two correlation
functions is at most 2 per lag), so we sum over lags 1..:data:`DEFAULT_MAX_LAG` (one week of
hours, which holds the daily and weekly cycles). Our numbers are therefore of the paper's kind
but not comparable with its figures.

The autocorrelation of a series x_1..x_n at lag k is the usual estimator
``sum_t (x_t - m)(x_{t+k} - m) / sum_t (x_t - m)^2`` (m the series mean; as statsmodels' ``acf``).
A constant series has no autocorrelation; it is given 0 at every lag (documented convention).

Per-hour NEMD (seed 000 Fig. 15/16): NEMD (:func:`appshot_model.evaluation.emd.nemd`) between the
real and the generated map of each hour, gathered over the whole period into a histogram.

The "Data" reference splits the real period into two halves of whole days (the first and the
second ``floor(T/2 / 24)`` days) and scores one half against the other: AC-L1 of the halves'
series, and per-hour NEMD between the same hour offset in each half.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.plots import plt, png_bytes
from appshot_model.evaluation.emd import nemd

#: Largest lag (hours) summed by AC-L1: one week.
DEFAULT_MAX_LAG = 168


def _series_matrix(series, what: str) -> np.ndarray:
    """``[time, ...]`` -> float64 ``[time, pixels]``, checked finite."""
    arr = np.asarray(series, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[0] < 2:
        raise AppshotInputError(f"{what}: expected an array [time, ...] with at least 2 time steps, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise AppshotInputError(f"{what}: series hold NaN/inf values")
    return arr.reshape(arr.shape[0], -1)


def autocorrelation(series, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Autocorrelation at lags 1..``max_lag`` of each series: ``[time, ...]`` -> ``[max_lag, ...]``.

    Needs ``max_lag < time``. Computed for all pixels at once through the FFT."""
    arr = np.asarray(series, dtype=np.float64)
    x = _series_matrix(arr, "series")
    n = x.shape[0]
    if not 1 <= max_lag < n:
        raise AppshotInputError(f"max_lag must lie in 1..{n - 1} for series of {n} steps, got {max_lag}")
    x = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, n=size, axis=0)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[: max_lag + 1]
    var = acov[0]
    acf = np.divide(acov[1:], var, out=np.zeros_like(acov[1:]), where=var > 1e-12 * max(float(var.max()), 1e-300))
    return acf.reshape((max_lag,) + arr.shape[1:])


def ac_l1_per_pixel(real, generated, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
    """Per pixel, sum over lags 1..``max_lag`` of |ACF_real - ACF_generated|.

    ``real`` and ``generated`` are ``[time, ...]`` with the same trailing (pixel) shape; their
    lengths may differ (each ACF is estimated on its own series)."""
    r, g = np.asarray(real), np.asarray(generated)
    if r.shape[1:] != g.shape[1:]:
        raise AppshotInputError(f"real series {r.shape} and generated series {g.shape} differ in pixel shape")
    return np.abs(autocorrelation(r, max_lag) - autocorrelation(g, max_lag)).sum(axis=0)


def ac_l1(real, generated, max_lag: int = DEFAULT_MAX_LAG) -> float:
    """AC-L1: mean over pixels of :func:`ac_l1_per_pixel` (no unit; 0 = same autocorrelation)."""
    return float(ac_l1_per_pixel(real, generated, max_lag).mean())


def split_halves(series, hours_per_day: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """The first and the second ``floor(T / 2 / hours_per_day)`` whole days of ``[time, ...]``."""
    arr = np.asarray(series)
    half = (arr.shape[0] // 2) // hours_per_day * hours_per_day
    if half < 1:
        raise AppshotInputError(f"cannot split {arr.shape[0]} time steps into two halves of whole days")
    return arr[:half], arr[half:2 * half]


def data_ac_l1(real, max_lag: int = DEFAULT_MAX_LAG) -> float:
    """The Data reference of AC-L1: the two halves of the real period against each other."""
    first, second = split_halves(real)
    return ac_l1(first, second, max_lag)


def per_hour_nemd(real, generated, method: str = "exact") -> np.ndarray:
    """NEMD of every hour: ``real`` and ``generated`` ``[time, y, x]`` maps of one service, paired
    by time index -> ``[time]`` (NaN where the real map is uniform)."""
    r, g = np.asarray(real, dtype=np.float64), np.asarray(generated, dtype=np.float64)
    if r.ndim != 3 or r.shape != g.shape:
        raise AppshotInputError(f"per-hour NEMD needs two [time, y, x] arrays of one shape, got {r.shape} and {g.shape}")
    return np.array([nemd(r[t], g[t], method=method) for t in range(r.shape[0])])


def evenly_spaced_hours(n_hours: int, max_hours: int) -> np.ndarray:
    """At most ``max_hours`` indices spread evenly over ``0 .. n_hours - 1``."""
    return np.unique(np.linspace(0, n_hours - 1, min(max_hours, n_hours)).round().astype(int))


def per_hour_nemds(maps: Mapping[str, np.ndarray], max_hours: int, method: str = "exact") -> dict[str, np.ndarray]:
    """Per-hour NEMD (seed 000 Fig. 15/16) of maps ``[time, y, x]``: ``data`` = the two halves of ``maps["real"]``
    against each other, and every other entry against the real maps of the same hours; at most ``max_hours``
    evenly spaced hours each (exact NEMD costs one optimal-transport problem per hour)."""
    first, second = split_halves(maps["real"])
    pick = evenly_spaced_hours(len(first), max_hours)
    nemds = {"data": per_hour_nemd(first[pick], second[pick], method=method)}
    pick = evenly_spaced_hours(len(maps["real"]), max_hours)
    nemds.update({name: per_hour_nemd(maps["real"][pick], generated[pick], method=method)
                  for name, generated in maps.items() if name != "real"})
    return nemds


def nemd_histogram_png(values: Mapping[str, np.ndarray], title: str, bins: int = 30) -> bytes:
    """Histograms of per-hour NEMD, one outline per method (seed 000 Fig. 15/16), as PNG bytes."""
    finite = {k: np.asarray(v, dtype=float)[np.isfinite(v)] for k, v in values.items()}
    top = max((float(v.max()) for v in finite.values() if v.size), default=1.0)
    edges = np.linspace(0.0, max(top, 1e-6) * 1.02, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, v in finite.items():
        ax.hist(v, bins=edges, histtype="step", linewidth=1.3, label=f"{name} (median {np.median(v):.3f})"
                if v.size else name)
    ax.set_xlabel("NEMD per hour")
    ax.set_ylabel("hours")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return png_bytes(fig)


def acf_png(series: Mapping[str, np.ndarray], title: str, max_lag: int = DEFAULT_MAX_LAG) -> bytes:
    """Mean autocorrelation over pixels against the lag (hours), one curve per entry, PNG bytes."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    lags = np.arange(1, max_lag + 1)
    for name, s in series.items():
        acf = autocorrelation(s, max_lag)
        ax.plot(lags, acf.reshape(max_lag, -1).mean(axis=1), linewidth=1, label=name)
    ax.set_xlabel("lag (hours)")
    ax.set_ylabel("mean autocorrelation")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return png_bytes(fig)
