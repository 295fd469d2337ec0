"""Use case 1 of seed 004 (§6.1, Table 2): capacity of per-service network slices at each antenna.

An operator reserves, per antenna (here: grid cell) and slice (service), the 95th percentile of
the slice's per-minute demand; the SLA holds when all the demand is served at least 95 % of the
time. Measured: the share of minutes with no dropped traffic, averaged over cells and services,
and its std over services (the per-service means), for three ways of planning:

- ``sessions``: each service's per-minute demand distribution from the session models (seed 004
  §5), estimated from ``plan_replicates`` independent expansions of the same hourly volumes
  (the model's CDF; one hour alone gives only 60 minutes per cell);
- ``bm_a`` / ``bm_b``: only category-level shares are known (seed 004 §6.1: Interactive Web,
  Casual Streaming, Movie Streaming, shares 49.30 / 48.46 / 2.24 % from seed 004 Table 1, and
  50 / 42.11 / 7.89 % from the literature): the 95th percentile of the antenna's TOTAL per-minute
  demand (same planning expansions) is split by category share, then uniformly among the
  services of a category.

The SLA is then checked against a separate realisation, the expanded session table itself
(the traffic that "arrives"), minute by minute. The category of each appshot service is our
choice (seed 004 names the categories but not their members), see :data:`SERVICE_CATEGORY`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.plots import plt, png_bytes
from appshot_model.sessions.demand import minute_demand
from appshot_model.sessions.expansion import (BLOCK_CELLS, MINUTES_PER_HOUR, HourSpec, iter_session_blocks,
                                              load_deciles, volumes_in_bytes)
from appshot_model.sessions.models import DURATION_CAP_S, SessionModel

SLA_QUANTILE = 0.95
#: Category of each appshot service (our assumption, after seed 004 §4.3's split between
#: streaming and short-message services): Interactive Web (social feeds, messaging, app stores),
#: Casual Streaming (short user videos, music), Movie Streaming (long-form video).
SERVICE_CATEGORY: dict[str, str] = {
    "facebook": "IW", "snapchat": "IW", "whatsapp": "IW", "twitter": "IW", "apple_store": "IW", "google_play": "IW",
    "youtube": "CS", "instagram": "CS", "itunes": "CS",
    "netflix": "MS",
}
#: Category session shares (percent) of the two benchmarks of seed 004 §6.1.
BENCHMARK_SHARES: dict[str, dict[str, float]] = {
    "bm_a": {"IW": 49.30, "CS": 48.46, "MS": 2.24},
    "bm_b": {"IW": 50.0, "CS": 42.11, "MS": 7.89},
}
METHODS = ("sessions", *BENCHMARK_SHARES)
#: Cells sized per city-hour by default, spread evenly over the load ranks (seed 004 §6.1 used 10 antennas).
SLICING_CELLS = 100
#: Planning expansions per city-hour (each gives 60 minutes per cell and service); the allocation takes the
#: percentile at :func:`planning_level` of them (0.96 for 100 expansions).
PLAN_REPLICATES = 100


def planning_level(quantile: float, replicates: int) -> float:
    """The quantile level a planner uses so that a new hour is covered ``quantile`` of the time although the
    percentile is estimated from ``replicates`` planning expansions: ``ceil((replicates + 1) quantile) /
    replicates`` (capped at 1), the order statistic that covers a new exchangeable draw with probability at
    least ``quantile``. Expansions are the independent units: the minutes of one expansion share its
    reconciliation to the hour's volume. With the plain percentile, coverage approaches 95 % only from below
    (docs/sessions.md)."""
    if replicates < 1:
        raise AppshotInputError(f"planning replicates must be >= 1, got {replicates}")
    return min(1.0, math.ceil((replicates + 1) * quantile - 1e-9) / replicates)


def session_capacity(plan: np.ndarray, quantile: float = SLA_QUANTILE) -> np.ndarray:
    """Per-service allocation ``[cells, services]``: the quantile of each service's per-minute demand
    ``plan [cells, services, minutes]``."""
    return np.quantile(plan, quantile, axis=-1, method="inverted_cdf")


def category_capacity(plan: np.ndarray, services: Sequence[str], shares: Mapping[str, float],
                      categories: Mapping[str, str] = SERVICE_CATEGORY, quantile: float = SLA_QUANTILE) -> np.ndarray:
    """Category-level allocation ``[cells, services]``: the quantile of the cell's total per-minute demand,
    times the service's category share (percent), split uniformly among the category's services."""
    unknown = [s for s in services if s not in categories]
    if unknown:
        raise AppshotInputError(f"no slicing category for service(s) {unknown}; known: {sorted(categories)}")
    members = [categories[s] for s in services]
    missing = [c for c in set(members) if c not in shares]
    if missing:
        raise AppshotInputError(f"benchmark shares lack categories {missing}")
    fraction = np.array([shares[c] / 100.0 / members.count(c) for c in members])
    total = np.quantile(plan.sum(axis=1), quantile, axis=-1)
    return total[:, None] * fraction[None, :]


def sla_met(demand: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Share of minutes ``[cells, services]`` in which ``demand [cells, services, minutes]`` fits within
    ``capacity [cells, services]`` (nothing dropped)."""
    limit = capacity[..., None] * (1 + 1e-9) + 1e-6
    return (demand <= limit).mean(axis=-1)


def block_demand(model: SessionModel, table: pa.Table | None, blocks: Iterable, cells: np.ndarray,
                 hour_start_ms: int = 0, minutes: int = MINUTES_PER_HOUR) -> np.ndarray:
    """Per-minute demand ``[cells, services, minutes]`` (bytes) of the sorted cell ids ``cells``, from a
    session-table slice (``table``; the hour starts at ``hour_start_ms``, UTC epoch ms) or from
    generated ``blocks``."""
    n_services = len(model.services)
    if table is not None:
        services = table["service"].combine_chunks()
        lookup = np.array([model.services.index(s) for s in services.dictionary.to_pylist()], dtype=np.int64)
        start_ms = table["start"].cast(pa.int64()).to_numpy()
        parts = [(table["cell_id"].to_numpy(), lookup[services.indices.to_numpy()],
                  (start_ms - hour_start_ms) / 1000.0, table["duration_s"].to_numpy(), table["bytes"].to_numpy())]
    else:
        parts = [(b.cell_id, b.service.astype(np.int64), b.start_s, b.duration_s, b.bytes) for b in blocks]
    cell, service, start, duration, volume = (np.concatenate(c) for c in zip(*parts, strict=True))
    key = np.searchsorted(cells, cell) * n_services + service
    demand = minute_demand(key, start, duration, volume, len(cells) * n_services, minutes)
    return demand.reshape(len(cells), n_services, minutes)


def sample_cells(total_volume: np.ndarray, max_cells: int | None) -> np.ndarray:
    """Sorted ids of at most ``max_cells`` cells evenly spread over the ranks of ``total_volume`` (so every
    load decile is represented); all cells when ``max_cells`` is None or not smaller."""
    n = total_volume.size
    if max_cells is None or max_cells >= n:
        return np.arange(n)
    if max_cells < 1:
        raise AppshotInputError(f"max_cells must be >= 1, got {max_cells}")
    order = np.argsort(total_volume, kind="stable")
    return np.unique(order[np.linspace(0, n - 1, max_cells).round().astype(np.int64)])


def slicing_capacity(model: SessionModel, snapshot: np.ndarray, units: str, spec: HourSpec,
                     sessions_path: str | os.PathLike, seed: int, plan_replicates: int = PLAN_REPLICATES,
                     cap_s: float = DURATION_CAP_S, max_cells: int | None = None, progress=None) -> dict:
    """Table 2 of seed 004 for one city-hour: plan from ``plan_replicates`` expansions of ``snapshot``,
    check against the session table at ``sessions_path`` (the expansion of the same snapshot), on
    every cell or on ``max_cells`` cells spread over the load ranks.

    Returns per method the per-service sums of the SLA-met share over cells and the cell count
    (additive over city-hours, see :func:`slicing_table`), and the allocated capacity."""
    if plan_replicates < 1:
        raise AppshotInputError(f"plan_replicates must be >= 1, got {plan_replicates}")
    volumes = volumes_in_bytes(snapshot, units)
    deciles = load_deciles(volumes.sum(axis=0))
    n_services = volumes.shape[0]
    start_ms = int(spec.start_utc.value // 1_000_000)
    chosen = sample_cells(volumes.sum(axis=0), max_cells)
    met = {m: np.zeros(n_services) for m in METHODS}
    allocated = dict.fromkeys(METHODS, 0.0)
    for first in range(0, chosen.size, BLOCK_CELLS):
        cells = chosen[first:first + BLOCK_CELLS]
        actual_rows = pq.read_table(sessions_path, columns=["cell_id", "service", "start", "duration_s", "bytes"],
                                    filters=[("cell_id", "in", cells.astype(np.int32).tolist())])
        actual = block_demand(model, actual_rows, (), cells, start_ms)
        plan = np.concatenate([
            block_demand(model, None, iter_session_blocks(model, volumes, deciles, spec.peak, seed,
                                                          (spec.city, spec.hour, "plan", r), cap_s, cells), cells)
            for r in range(plan_replicates)], axis=-1)
        level = planning_level(SLA_QUANTILE, plan_replicates)
        capacities = {"sessions": session_capacity(plan, level)}
        for name, shares in BENCHMARK_SHARES.items():
            capacities[name] = category_capacity(plan, model.services, shares, quantile=level)
        for name, capacity in capacities.items():
            met[name] += sla_met(actual, capacity).sum(axis=0)
            allocated[name] += float(capacity.sum())
        if progress is not None:
            progress(len(cells))
    return {"city": spec.city, "hour": spec.hour, "cells": int(chosen.size), "services": list(model.services),
            "plan_replicates": plan_replicates,
            "met_sum": {m: met[m].tolist() for m in METHODS}, "allocated_bytes_per_minute": allocated}


def slicing_table(results: Sequence[dict]) -> list[dict]:
    """Rows ``method, sla_met, std`` (fractions) over one or more :func:`slicing_capacity` results: the
    SLA-met share averaged over all cells and services, and the std over services of the
    per-service averages; plus each method's per-service averages and capacity relative to ``sessions``."""
    if not results:
        raise AppshotInputError("no slicing results to tabulate")
    services = results[0]["services"]
    if any(r["services"] != services for r in results):
        raise AppshotInputError("slicing results with different service lists cannot be pooled")
    cells = sum(r["cells"] for r in results)
    rows = []
    reference = sum(r["allocated_bytes_per_minute"]["sessions"] for r in results)
    for method in METHODS:
        per_service = np.sum([r["met_sum"][method] for r in results], axis=0) / cells
        rows.append({"method": method, "sla_met": float(per_service.mean()), "std": float(per_service.std()),
                     "per_service": dict(zip(services, per_service.tolist(), strict=True)),
                     "capacity_vs_sessions": sum(r["allocated_bytes_per_minute"][method] for r in results) / reference})
    return rows


def slicing_png(rows: Sequence[dict], title: str = "") -> bytes:
    """SLA-met share per service for each planning method, with the 95 % target."""
    services = list(rows[0]["per_service"])
    x = np.arange(len(services))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for i, row in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, [100 * row["per_service"][s] for s in services], width,
               label=f"{row['method']} (mean {100 * row['sla_met']:.1f} %, std {100 * row['std']:.1f})")
    ax.axhline(100 * SLA_QUANTILE, color="k", linestyle="--", linewidth=0.8)
    ax.set_xticks(x, services, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("time with no dropped traffic (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{title} slice capacity at the 95th percentile (seed 004 §6.1)", fontsize=10)
    return png_bytes(fig)
