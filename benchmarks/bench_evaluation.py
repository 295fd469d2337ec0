"""Leave-one-city-out evaluation benchmark: wall time of the full demo-world evaluation, per-method seconds,
and the cost and error of exact vs coarse NEMD on demo-world maps.

Modes (the machine and its load average are printed first):

- default: run a representative subset of folds (``--cities``, ``--hours``) with every method asked for and
  ``--seeds`` seeds through :func:`appshot_model.evaluation.loco.run_loco` on ``--workers`` processes, print
  its wall time and the per-method train / generate / score (of which NEMD) seconds and CPU seconds of each
  task, then EXTRAPOLATE to the full evaluation (every city x 3 peak hours x ``--full-seeds`` seeds): a
  task's CPU seconds are modelled as the method's measured training seconds (training cost does not depend
  on the held-out city's size: fixed batches of tiles/patches) plus generation and scoring seconds scaled
  to each held-out city by a power law in its cell count fitted to the measured cities, and the tasks are
  scheduled longest first on ``--full-workers`` workers (the driver's own order). The printout says which
  figures are measured and which are extrapolated.
- ``--nemd-study``: for held-out-sized real maps of the demo world, time and value of exact NEMD and of
  the coarse block-2 / block-4 approximations on three kinds of pairs (real day vs another real day: the
  Data row; real day vs a smoothed mean of other days: a smooth model output; real day vs its cells
  shuffled: an i.i.d. output like FDaS), errors relative to exact.

Run from the repository root, e.g.
``PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/bench_evaluation.py --cities milano liege --hours morning``
and ``... benchmarks/bench_evaluation.py --nemd-study --cities milano munich liege``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.names import PEAK_HOURS  # noqa: E402
from appshot_model.evaluation.emd import emd_grid, emd_to_uniform  # noqa: E402
from appshot_model.evaluation.loco import (DEFAULT_METHODS, Fold, LocoSettings, available_cores,  # noqa: E402
                                           run_loco, time_table)
from appshot_model.evaluation.worlds import demo_world  # noqa: E402


def machine_line() -> str:
    return (f"machine: {cpu_model()}, {os.cpu_count()} CPUs ({len(available_cores())} available), "
            f"load average {load_average()}")


def nemd_study(cities: list[str], hour: str, services: int) -> None:
    """Exact vs coarse NEMD on demo-world maps (see module docstring)."""
    torch.set_num_threads(1)
    world = demo_world()
    rows = []
    for city in cities:
        real = world.snapshots(city, hour).transpose("time", "service", "y", "x").values.astype(np.float64)
        rng = np.random.default_rng(0)
        for s in range(min(services, real.shape[1])):
            a = real[0, s]
            smooth = ndimage.gaussian_filter(real[1:].mean(axis=0)[s], 1.5)
            shuffled = rng.permutation(a.ravel()).reshape(a.shape)
            timing = {}
            for label, kwargs in (("exact", {"method": "exact"}), ("coarse2", {"method": "coarse", "block": 2}),
                                  ("coarse4", {"method": "coarse", "block": 4})):
                t = time.process_time()
                timing[label] = [emd_to_uniform(a, **kwargs)]
                timing[f"{label}_den_s"] = time.process_time() - t
            for pair, b in (("real_vs_real", real[10, s]), ("real_vs_smooth", smooth), ("real_vs_shuffled", shuffled)):
                row = {"city": city, "cells": a.size, "service": s, "pair": pair}
                for label, kwargs in (("exact", {"method": "exact"}), ("coarse2", {"method": "coarse", "block": 2}),
                                      ("coarse4", {"method": "coarse", "block": 4})):
                    t = time.process_time()
                    numerator = emd_grid(a, b, **kwargs)
                    row[f"{label}_num_s"] = time.process_time() - t
                    row[f"{label}_den_s"] = timing[f"{label}_den_s"] / 3  # one denominator serves 3 pairs here
                    row[f"nemd_{label}"] = numerator / timing[label][0]
                rows.append(row)
                print(f"{city} service {s} {pair}: NEMD exact {row['nemd_exact']:.5f}, coarse2 "
                      f"{row['nemd_coarse2'] - row['nemd_exact']:+.2e}, coarse4 {row['nemd_coarse4'] - row['nemd_exact']:+.2e}; "
                      f"numerator CPU s exact {row['exact_num_s']:.2f}, coarse2 {row['coarse2_num_s']:.2f}, "
                      f"coarse4 {row['coarse4_num_s']:.3f}", flush=True)
    frame = pd.DataFrame(rows)
    for label in ("coarse2", "coarse4"):
        frame[f"{label}_abs_err"] = (frame[f"nemd_{label}"] - frame["nemd_exact"]).abs()
        frame[f"{label}_rel_err"] = frame[f"{label}_abs_err"] / frame["nemd_exact"]
    print("\nper city and pair kind: mean exact NEMD, max |error| and max relative error of coarse NEMD, mean CPU "
          "seconds per numerator and per denominator")
    summary = frame.groupby(["city", "cells", "pair"]).agg(
        nemd_exact=("nemd_exact", "mean"), coarse2_max_abs=("coarse2_abs_err", "max"),
        coarse2_max_rel=("coarse2_rel_err", "max"), coarse4_max_abs=("coarse4_abs_err", "max"),
        coarse4_max_rel=("coarse4_rel_err", "max"), exact_num_s=("exact_num_s", "mean"),
        coarse2_num_s=("coarse2_num_s", "mean"), coarse4_num_s=("coarse4_num_s", "mean"))
    print(summary.to_string(float_format=lambda v: f"{v:.3g}"))
    dens = frame.groupby("city")[["exact_den_s", "coarse2_den_s", "coarse4_den_s"]].mean() * 3
    print("\nmean CPU seconds per denominator EMD(real, uniform):")
    print(dens.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"\nover all {len(frame)} map pairs: coarse2 max |NEMD error| {frame['coarse2_abs_err'].max():.2e} "
          f"(max relative {frame['coarse2_rel_err'].max():.2e}), coarse4 {frame['coarse4_abs_err'].max():.2e} "
          f"({frame['coarse4_rel_err'].max():.2e})")
    print(machine_line())


def power_law(cells: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """``seconds = c * cells ** p`` fitted in log space (one point: p = 1)."""
    keep = seconds > 0
    if keep.sum() >= 2 and len(np.unique(cells[keep])) >= 2:
        p, logc = np.polyfit(np.log(cells[keep]), np.log(seconds[keep]), 1)
        return float(np.exp(logc)), float(p)
    if keep.any():
        return float(seconds[keep].mean() / cells[keep].mean()), 1.0
    return 0.0, 1.0


def extrapolate(rows: pd.DataFrame, cells: dict[str, int], hours: int, seeds: int, workers: int) -> dict:
    """Full-run estimate from measured task CPU seconds (see module docstring)."""
    tasks = []
    for method, part in rows.groupby("method"):
        n = part["held_out"].map(cells).to_numpy(float)
        train = float(part["train_seconds"].mean())
        other = (part["cpu_seconds"] - part["train_seconds"]).clip(lower=0).to_numpy(float)
        c, p = power_law(n, other)
        nemd_c, nemd_p = power_law(n, part["nemd_seconds"].to_numpy(float))
        for city, size in cells.items():
            per_task = train + c * size ** p
            count = hours * (1 if method == "data" else seeds)
            tasks += [(per_task, method, nemd_c * size ** nemd_p)] * count
    loads = [0.0] * workers
    for seconds, _, _ in sorted(tasks, reverse=True):
        loads[loads.index(min(loads))] += seconds
    total = sum(t for t, _, _ in tasks)
    nemd = sum(n for _, _, n in tasks)
    return {"tasks": len(tasks), "cpu_seconds": total, "nemd_seconds": nemd, "makespan_seconds": max(loads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nemd-study", action="store_true", help="exact vs coarse NEMD on demo-world maps")
    parser.add_argument("--cities", nargs="+", default=["milano", "liege"])
    parser.add_argument("--hours", nargs="+", default=["morning"])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--seeds", type=int, default=1, help="seeds measured per method and fold")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per model (default: each method's)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--nemd", choices=["exact", "coarse"], default="exact")
    parser.add_argument("--nemd-pairs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: cores available)")
    parser.add_argument("--full-seeds", type=int, default=3)
    parser.add_argument("--full-workers", type=int, default=2)
    parser.add_argument("--services", type=int, default=10, help="--nemd-study: services per city")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    if args.nemd_study:
        nemd_study(args.cities, args.hours[0], args.services)
        return
    world = demo_world()
    settings = LocoSettings(methods=tuple(args.methods), seeds=tuple(range(args.seeds)), steps=args.steps,
                            samples=args.samples, nemd_pairs=args.nemd_pairs, nemd_method=args.nemd)
    folds = [Fold(c, h) for h in args.hours for c in args.cities]
    run = run_loco(world, settings, folds, workers=args.workers,
                   on_progress=lambda p: print(f"  {p.fold.key}: {p.what} done ({p.done}/{p.total})", flush=True))
    record = run.record
    print(f"\nMEASURED subset: {len(folds)} fold(s) {[f.key for f in folds]} x {len(settings.methods)} methods x "
          f"{args.seeds} seed(s), budget steps {args.steps or 'method defaults'}, {args.samples} samples, NEMD "
          f"{args.nemd} on {args.nemd_pairs} pair(s) per service: wall {record['wall_seconds']:.0f} s on "
          f"{record['workers']} worker(s), CPU in tasks {record['task_cpu_seconds']:.0f} s; load average start "
          f"{record['machine']['load_average_start']}, end {record['machine']['load_average_end']}")
    print("\nseconds per task (mean over the measured folds and seeds; 'data' = fold preparation + Data row):")
    print(time_table(run.rows).round(2).to_markdown())
    print("\nper fold and method (CPU seconds of the task):")
    print(run.rows.pivot_table(index="method", columns="held_out", values="cpu_seconds", sort=False)
          .round(1).to_markdown())
    cells = {c: int(world.context(c).sizes["y"] * world.context(c).sizes["x"]) for c in world.cities}
    estimate = extrapolate(run.rows, cells, len(PEAK_HOURS), args.full_seeds, args.full_workers)
    print(f"\nEXTRAPOLATED full evaluation ({len(cells)} cities x {len(PEAK_HOURS)} hours x {len(settings.methods)} "
          f"methods x {args.full_seeds} seeds = {estimate['tasks']} tasks incl. the Data rows): "
          f"{estimate['cpu_seconds'] / 60:.0f} CPU minutes, of which NEMD {estimate['nemd_seconds'] / 60:.0f} "
          f"({100 * estimate['nemd_seconds'] / estimate['cpu_seconds']:.0f} %); longest-first on "
          f"{args.full_workers} workers: {estimate['makespan_seconds'] / 60:.0f} min wall on an otherwise idle "
          "machine (CPU seconds measured under the load printed above)")
    print(machine_line())


if __name__ == "__main__":
    main()
