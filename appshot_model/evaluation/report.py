"""Results tables and figures of the leave-one-city-out evaluation (paper §VI-§VII).

- :func:`results_table` averages the per-city records over test cities (as the paper's tables do)
  into a ``(hour, method) x metric`` DataFrame; :func:`write_results` writes it as CSV (full
  precision, :func:`read_results` reads it back) and Markdown (one table per hour), atomically.
- Figures return PNG bytes (matplotlib Agg, as :mod:`appshot_model.core.plots`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.core.plots import map_grid_png, png_bytes
from appshot_model.evaluation.baselines import METHODS
from appshot_model.evaluation.metrics import HEADLINE_METRICS, city_totals, hotspot_counts, pixel_values, share_errors
from appshot_model.evaluation.reference import DATA

EXTRA_METRICS = ("pairwise_ssim_error", "share_error")
METRIC_LABELS = {"werr": "WErr ↓", "nemd": "NEMD ↓", "ssim": "SSIM ↑", "psnr": "PSNR (dB) ↑",
                 "hemd": "HEMD ↓", "pairwise_ssim_error": "pairwise SSIM err ↓", "share_error": "share err ↓"}
#: Paper Table II, morning peak (10 real cities; WErr as a fraction): for side-by-side reading only.
PAPER_TABLE_II_MORNING = {
    "appshot": {"werr": 0.1793, "nemd": 0.35, "ssim": 0.84, "psnr": 34.88, "hemd": 2.09},
    DATA: {"werr": 0.1510, "nemd": 0.23, "ssim": 0.96, "psnr": 39.24, "hemd": 0.60},
    "independent": {"werr": 0.2485, "nemd": 0.44, "ssim": 0.85, "psnr": 36.15, "hemd": 3.90},  # CartaGenie
    "pix2pix": {"werr": 0.3881, "nemd": 0.52, "ssim": 0.78, "psnr": 34.07, "hemd": 4.31},
    "cnn": {"werr": 0.4207, "nemd": 0.58, "ssim": 0.76, "psnr": 34.88, "hemd": 5.79},
    "fdas": {"werr": 0.6367, "nemd": 0.99, "ssim": 0.44, "psnr": 29.33, "hemd": 9.20},
}


# --------------------------------------------------------------------------------------------
# tables


def _method_order(methods: Iterable[str]) -> list[str]:
    known = [DATA, *METHODS]
    present = list(dict.fromkeys(methods))
    return [m for m in known if m in present] + sorted(m for m in present if m not in known)


def results_table(records: Iterable[Mapping] | pd.DataFrame, metrics: Sequence[str] = HEADLINE_METRICS + EXTRA_METRICS
                  ) -> pd.DataFrame:
    """Mean over test cities (``city`` or ``held_out``) of each metric: index ``(hour, method)`` (hours in first-seen order,
    methods "data", then :data:`~appshot_model.evaluation.baselines.METHODS` order), columns ``metrics`` plus
    ``n_cities``. NaN values (e.g. NEMD of an all-zero service) are skipped in the means."""
    frame = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if "city" not in frame.columns and "held_out" in frame.columns:  # driver rows name the city "held_out"
        frame = frame.rename(columns={"held_out": "city"})
    missing = {"method", "city", "hour"} - set(frame.columns)
    if frame.empty or missing:
        raise ValueError(f"records need method, city and hour fields (missing {sorted(missing)}) and at least one row")
    columns = [m for m in metrics if m in frame.columns]
    frame[columns] = frame[columns].astype(float).replace([np.inf], np.nan)
    grouped = frame.groupby(["hour", "method"], sort=False)
    table = grouped[columns].mean()
    table["n_cities"] = grouped["city"].nunique()
    hours = list(dict.fromkeys(frame["hour"]))
    order = [(h, m) for h in hours for m in _method_order(frame.loc[frame["hour"] == h, "method"])]
    return table.loc[order]


def seed_summary(records: Iterable[Mapping] | pd.DataFrame, metrics: Sequence[str] = HEADLINE_METRICS + EXTRA_METRICS
                 ) -> pd.DataFrame:
    """Table II-style summary of per-seed rows: for each seed the mean over held-out cities
    (:func:`results_table`), then the mean and the standard deviation (ddof 1) of those means over seeds.
    Index ``(hour, method)``; columns ``metrics``, ``<metric>_sd``, ``n_cities``, ``n_seeds``. Rows without a
    seed (the Data reference) form one group, so their ``_sd`` is NaN."""
    frame = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if "seed" not in frame.columns:
        raise ValueError("records need a seed field (empty for the data row)")
    overall = results_table(frame.drop(columns="seed"), metrics)
    group = pd.to_numeric(frame["seed"], errors="coerce").fillna(-1)
    per_seed = pd.concat({key: results_table(part.drop(columns="seed"), metrics)
                          for key, part in frame.groupby(group, sort=True)}, names=["seed"])
    columns = [m for m in metrics if m in per_seed.columns]
    grouped = per_seed.groupby(level=["hour", "method"], sort=False)[columns]
    summary = grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd"))
    summary["n_cities"] = overall["n_cities"]
    summary["n_seeds"] = grouped.size()
    summary.loc[summary.index.get_level_values("method") == DATA, "n_seeds"] = 0  # the reference has no seed
    return summary.loc[overall.index, [*columns, *[f"{c}_sd" for c in columns], "n_cities", "n_seeds"]]


def _fmt(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in ("werr", "pairwise_ssim_error", "share_error"):
        return f"{100 * value:.1f} %"
    if metric == "psnr":
        return f"{value:.1f}"
    if metric in ("n_cities", "n_seeds"):
        return f"{int(value)}"
    return f"{value:.2f}"


def _cell(table: pd.DataFrame, column: str, row: str) -> str:
    text = _fmt(column, table.at[row, column])
    spread = table.at[row, f"{column}_sd"] if f"{column}_sd" in table.columns else math.nan
    return text if not np.isfinite(spread) else f"{text} ± {_fmt(column, spread)}"


def results_markdown(table: pd.DataFrame, title: str = "Fidelity (mean over test cities)") -> str:
    """One Markdown table per hour: methods x metrics, WErr and errors in %, PSNR in dB. A ``<metric>_sd``
    column (:func:`seed_summary`) is shown as ``mean ± sd``."""
    lines = [f"# {title}", ""]
    for hour in dict.fromkeys(table.index.get_level_values("hour")):
        part = table.loc[hour]
        columns = [c for c in part.columns if not c.endswith("_sd")]

        shown = pd.DataFrame({METRIC_LABELS.get(c, c): [_cell(part, c, r) for r in part.index] for c in columns},
                             index=part.index)
        lines += [f"## {hour}", "", shown.to_markdown(), ""]
    return "\n".join(lines)


def write_results(table: pd.DataFrame, csv_path: str | os.PathLike, markdown_path: str | os.PathLike | None = None,
                  title: str = "Fidelity (mean over test cities)") -> tuple[Path, Path | None]:
    """Write the table as CSV (full precision) and, when asked, Markdown; each file atomically."""
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, float_format="%.17g")
    md = None
    if markdown_path is not None:
        md = Path(markdown_path)
        with atomic_path(md) as tmp:
            tmp.write_text(results_markdown(table, title), encoding="utf-8")
    return csv_path, md


def read_results(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by :func:`write_results` (same index and columns)."""
    table = pd.read_csv(csv_path, index_col=["hour", "method"], dtype={"hour": str, "method": str})
    if "n_cities" in table.columns:
        table["n_cities"] = table["n_cities"].astype(np.int64)
    return table


def write_scores(rows: pd.DataFrame, csv_path: str | os.PathLike) -> Path:
    """Per-row scores as CSV (no index, floats in full precision, an empty cell for a missing seed or a NaN),
    atomically."""
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        rows.to_csv(tmp, index=False, float_format="%.17g")
    return csv_path


def read_scores(csv_path: str | os.PathLike, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV written by :func:`write_scores` back to the same values (``seed`` as nullable integers);
    with ``columns``, the file must have exactly those columns."""
    path = Path(csv_path)
    if not path.is_file():
        raise AppshotInputError(f"scores file {path} does not exist")
    frame = pd.read_csv(path, dtype={"world": str, "held_out": str, "hour": str, "method": str, "seed": "Int64"})
    if columns is not None and list(frame.columns) != list(columns):
        raise AppshotInputError(f"{path} has columns {list(frame.columns)}; expected {list(columns)}")
    return frame


def compare_scores(rows: pd.DataFrame, reference: pd.DataFrame, keys: Sequence[str], values: Sequence[str]
                   ) -> list[str]:
    """Differences between ``rows`` and the rows of ``reference`` with the same ``keys``: a missing row or any
    value in ``values`` that is not bit-for-bit equal (NaN equals NaN). Empty when every row is reproduced."""
    def key_of(row) -> tuple:
        return tuple(None if pd.isna(row[k]) else row[k] for k in keys)

    known = {key_of(row): row for _, row in reference.iterrows()}
    problems = []
    for _, row in rows.iterrows():
        key = key_of(row)
        label = " ".join(f"{k}={'' if v is None else v}" for k, v in zip(keys, key, strict=True))
        if key not in known:
            problems.append(f"{label}: no such row in the reference")
            continue
        for column in values:
            new, old = float(row[column]), float(known[key][column])
            if not (new == old or (math.isnan(new) and math.isnan(old))):
                problems.append(f"{label}: {column} {new!r} != reference {old!r}")
    return problems


# --------------------------------------------------------------------------------------------
# figures


def maps_figure(real_snapshot: np.ndarray, generated: Mapping[str, np.ndarray], services: Sequence[str],
                shown: Sequence[str] | None = None, title: str = "") -> bytes:
    """Real ``[s, y, x]`` vs one sample ``[s, y, x]`` of each method, for a few services (default: the
    four with the most real traffic). Each service column uses the real map's colour scale (0 to its
    maximum); larger generated values saturate, so one outlier cannot darken the whole column."""
    real = np.asarray(real_snapshot)
    services = list(services)
    if shown is None:
        shown = [services[i] for i in np.argsort(-real.sum(axis=(1, 2)))[:4]]
    index = [services.index(s) for s in shown]
    top = [float(real[i].max()) for i in index]  # colour scale of each column: the real map's maximum
    rows = {"real": [real[i] for i in index]}
    rows.update({name: [np.minimum(np.asarray(sample)[i], t) for i, t in zip(index, top, strict=True)]
                 for name, sample in generated.items()})
    return map_grid_png(rows, list(shown), title=title)


def stochasticity_figure(real_snapshots: np.ndarray, generated: Mapping[str, np.ndarray], bins: int = 30,
                         title: str = "") -> bytes:
    """Histograms (densities, bin edges shared by all curves) of city-level totals, pixel values
    (log10(1 + v)) and hotspot counts of total traffic: the real snapshots vs each method's samples
    (paper Fig. 14)."""
    def samples(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"city_total": city_totals(x), "pixel_value": np.log10(1.0 + pixel_values(x)),
                "hotspot_count": hotspot_counts(x, total=True).astype(float)}

    sets = {"real": samples(np.asarray(real_snapshots, np.float64))}
    sets.update({name: samples(np.asarray(x, np.float64)) for name, x in generated.items()})
    labels = {"city_total": "city total (traffic units x cells)", "pixel_value": "log10(1 + pixel value)",
              "hotspot_count": "hotspots per snapshot"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, key in zip(axes, labels, strict=True):
        lo = min(float(v[key].min()) for v in sets.values())
        hi = max(float(v[key].max()) for v in sets.values())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        for name, values in sets.items():
            density = np.histogram(values[key], edges, density=True)[0]
            style = {"color": "black", "linewidth": 1.6} if name == "real" else {"linewidth": 1}
            ax.stairs(density, edges, label=name, **style)
        ax.set_xlabel(labels[key], fontsize=8)
    axes[0].set_ylabel("density")
    axes[-1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def share_error_figure(real_snapshots: np.ndarray, generated: Mapping[str, np.ndarray],
                       services: Sequence[str], title: str = "") -> bytes:
    """Relative error of each service's share of total traffic, per method (paper Fig. 12b)."""
    services = list(services)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(services) * max(1, len(generated)) / 2), 3.4))
    width = 0.8 / max(1, len(generated))
    x = np.arange(len(services))
    for k, (name, samples) in enumerate(generated.items()):
        ax.bar(x + k * width, 100 * share_errors(real_snapshots, samples), width, label=name)
    ax.set_xticks(x + width * (len(generated) - 1) / 2, services, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share error (%)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)


def metrics_figure(table: pd.DataFrame, hour: str, metrics: Sequence[str] = HEADLINE_METRICS,
                   title: str = "") -> bytes:
    """One bar panel per metric: each method's mean over test cities at ``hour``."""
    part = table.loc[hour]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = part[metric].to_numpy(dtype=float)
        colours = ["black" if m == DATA else "tab:red" if m == "appshot" else "tab:blue" for m in part.index]
        ax.barh(list(part.index), np.where(np.isfinite(values), values, 0.0), color=colours)
        ax.invert_yaxis()
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return png_bytes(fig)
