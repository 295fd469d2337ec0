"""Leave-one-city-out evaluation benchmark: wall time of the full demo-world evaluation, per-method seconds,
and the cost and error of exact vs coarse NEMD on demo-world maps.

Modes (the machine and its load average are printed first):

- default: run a representative subset of folds (``--cities``, ``--hours``) with every method asked for and
  ``--seeds`` seeds through :func:`appshot_model.evaluation.loco.run_loco` on ``--workers`` processes and print
  its wall time and, per method, the CPU seconds of training, generation and scoring (of which NEMD) in the
  worker (one thread each). With ``--scan-steps N`` every trained method is also run with N steps on the
  smallest city asked for, and training CPU seconds are fitted as ``a + b * steps`` (BN re-estimation and set-up
  are the ``a``). Then it EXTRAPOLATES to the full evaluation (every city x 3 peak hours x ``--full-seeds``
  seeds at each method's default steps): training from that fit (training cost does not depend on the
  held-out city: fixed batches of tiles/patches), generation and scoring as a power law in the held-out city's
  cell count fitted to the measured cities, tasks scheduled longest first on ``--full-workers`` workers (the
  driver's own order) on an otherwise idle machine. The printout says which figures are measured and which
  are extrapolated.
- ``--nemd-study``: for held-out-sized real maps of the demo world, time and value of exact NEMD and of
  the coarse block-2 / block-4 approximations on three kinds of pairs (real day vs another real day: the
  Data row; real day vs a smoothed mean of other days: a smooth model output; real day vs its cells
  shuffled: an i.i.d. output like FDaS), errors relative to exact.

Run from the repository root, e.g.
``PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/bench_evaluation.py --cities milano liege --steps 20
--scan-steps 60``
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
from machine import cpu_model, load_average

from appshot_model.core.names import PEAK_HOURS
from appshot_model.core.threads import available_cores
from appshot_model.evaluation.baselines import METHODS
from appshot_model.evaluation.emd import emd_grid, emd_to_uniform
from appshot_model.evaluation.loco import DEFAULT_METHODS, Fold, LocoSettings, run_loco, time_table
from appshot_model.evaluation.worlds import demo_world


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
    """``seconds = c * cells ** p`` fitted in log space (one city size: p = 1)."""
    keep = seconds > 0
    if keep.sum() >= 2 and len(np.unique(cells[keep])) >= 2:
        p, logc = np.polyfit(np.log(cells[keep]), np.log(seconds[keep]), 1)
        return float(np.exp(logc)), float(p)
    if keep.any():
        return float(seconds[keep].mean() / cells[keep].mean()), 1.0
    return 0.0, 1.0


def training_model(rows: pd.DataFrame, method: str) -> tuple[float, float]:
    """CPU seconds of training = ``a + b * steps`` fitted to the measured rows of ``method`` (one budget
    measured: ``b = 0`` and ``a`` its mean, i.e. no extrapolation in steps)."""
    part = rows[rows["method"] == method]
    steps = part["steps"].to_numpy(float)
    if len(np.unique(steps)) >= 2:
        b, a = np.polyfit(steps, part["train_seconds"].to_numpy(float), 1)
        return float(a), float(b)
    return float(part["train_seconds"].mean()), 0.0


def extrapolate(rows: pd.DataFrame, cells: dict[str, int], hours: int, seeds: int, workers: int) -> tuple[dict, pd.DataFrame]:
    """Full-run estimate from measured CPU seconds (see module docstring); also the per-task model by method
    for the largest and smallest city."""
    tasks, table = [], []
    for method, part in rows.groupby("method", sort=False):
        n = part["held_out"].map(cells).to_numpy(float)
        a, b = training_model(rows, method)
        steps = 0 if method == "data" else (0 if METHODS[method].family == "fdas" else METHODS[method].default_steps)
        train = a + b * steps
        after = part[["generate_seconds", "score_seconds"]].fillna(0).sum(axis=1).to_numpy(float)
        c, p = power_law(n, after)
        nemd_c, nemd_p = power_law(n, part["nemd_seconds"].to_numpy(float))
        for city, size in cells.items():
            count = hours * (1 if method == "data" else seeds)
            tasks += [(train + c * size ** p, nemd_c * size ** nemd_p)] * count
        for city in (max(cells, key=cells.get), min(cells, key=cells.get)):
            table.append({"method": method, "held_out": city, "default_steps": steps, "train_cpu_s": train,
                          "generate_and_score_cpu_s": c * cells[city] ** p, "of_which_nemd_s": nemd_c * cells[city] ** nemd_p})
    loads = [0.0] * workers
    for seconds, _ in sorted(tasks, reverse=True):
        loads[loads.index(min(loads))] += seconds
    total = sum(t for t, _ in tasks)
    nemd = sum(n for _, n in tasks)
    return ({"tasks": len(tasks), "cpu_seconds": total, "nemd_seconds": nemd, "makespan_seconds": max(loads)},
            pd.DataFrame(table))


def measure(world, methods: list[str], folds: list[Fold], args, steps: int | None) -> pd.DataFrame:
    """One measured run (``args.seeds`` seeds); rows with the steps each model was trained for."""
    settings = LocoSettings(methods=tuple(methods), seeds=tuple(range(args.seeds)), steps=steps, samples=args.samples,
                            nemd_pairs=args.nemd_pairs, nemd_method=args.nemd)
    run = run_loco(world, settings, folds, workers=args.workers,
                   on_progress=lambda p: print(f"  {p.fold.key}: {p.what} done ({p.done}/{p.total})", flush=True))
    record = run.record
    print(f"\nMEASURED: {len(folds)} fold(s) {[f.key for f in folds]} x {len(methods)} methods x {args.seeds} "
          f"seed(s), steps {steps or 'method defaults'}, {args.samples} samples, NEMD {args.nemd} on "
          f"{args.nemd_pairs} pair(s) per service: wall {record['wall_seconds']:.0f} s on {record['workers']} "
          f"worker(s), CPU in tasks {record['task_cpu_seconds']:.0f} s; load average start "
          f"{record['machine']['load_average_start']}, end {record['machine']['load_average_end']}")
    print("CPU seconds per step and wall seconds per task (mean over the measured folds and seeds; "
          "'data' = fold preparation + Data row):")
    print(time_table(run.rows).round(2).to_markdown())
    rows = run.rows.copy()
    rows["steps"] = [0 if m == "data" or METHODS[m].family == "fdas" else (steps or METHODS[m].default_steps)
                     for m in rows["method"]]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nemd-study", action="store_true", help="exact vs coarse NEMD on demo-world maps")
    parser.add_argument("--cities", nargs="+", default=["milano", "liege"])
    parser.add_argument("--hours", nargs="+", default=["morning"])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--seeds", type=int, default=1, help="seeds measured per method and fold")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per model (default: each method's)")
    parser.add_argument("--scan-steps", type=int, default=None,
                        help="also train every method with this many steps on the smallest city asked for, fit "
                             "CPU seconds = a + b * steps and extrapolate training to each method's default steps")
    parser.add_argument("--scan-methods", nargs="+", default=None,
                        help="methods of the --scan-steps run (default: every trained method asked for)")
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
    cells = {c: int(world.context(c).sizes["y"] * world.context(c).sizes["x"]) for c in world.cities}
    rows = measure(world, args.methods, [Fold(c, h) for h in args.hours for c in args.cities], args, args.steps)
    if args.scan_steps:
        smallest = min(args.cities, key=cells.get)
        scanned = args.scan_methods or [m for m in args.methods if METHODS[m].family != "fdas"]
        scan = measure(world, scanned,
                       [Fold(smallest, args.hours[0])], args, args.scan_steps)
        rows = pd.concat([rows, scan[scan["method"] != "data"]], ignore_index=True)
    estimate, table = extrapolate(rows, cells, len(PEAK_HOURS), args.full_seeds, args.full_workers)
    scanned = set(rows.loc[rows["steps"] == args.scan_steps, "method"]) if args.scan_steps else set()
    how = (f"training CPU seconds linear in steps, fitted to the two budgets measured, for {sorted(scanned)}; "
           if scanned else "") + "training CPU seconds as measured (NOT scaled to the default steps) for the others"
    print(f"\nEXTRAPOLATED per task at each method's default steps ({how}; generation + scoring as a power law "
          "of the held-out city's cells):")
    print(table.round(1).to_markdown(index=False))
    print(f"\nEXTRAPOLATED full evaluation ({len(cells)} cities x {len(PEAK_HOURS)} hours x {len(args.methods)} "
          f"methods x {args.full_seeds} seeds = {estimate['tasks']} tasks incl. the Data rows): "
          f"{estimate['cpu_seconds'] / 60:.0f} CPU minutes, of which NEMD {estimate['nemd_seconds'] / 60:.0f} "
          f"({100 * estimate['nemd_seconds'] / estimate['cpu_seconds']:.0f} %); longest-first on "
          f"{args.full_workers} workers: {estimate['makespan_seconds'] / 60:.0f} min wall on an otherwise idle "
          "machine (CPU seconds measured under the load printed above)")
    print(machine_line())


if __name__ == "__main__":
    main()
