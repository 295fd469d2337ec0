"""Session expansion benchmark: a demo city's peak hour -> Parquet sessions, in bounded memory.

For each city (default liege, 33 x 33, and milano, 97 x 123, the largest demo city), in a fresh
process: simulate the city's first day (``appshot_model.traffic.demo``), take the weekday snapshot
of the peak hour (``--hour``, default evening), or sample 0 of a generated cube given with
``--cube``, and expand it with :func:`appshot_model.sessions.expansion.expand_hour` into a
temporary folder. Printed per city: sessions, seconds, rows/s, the process's RSS before the
expansion and its peak RSS (``ru_maxrss``; flat in the number of rows means bounded memory), the
Parquet size, then the checks read back from the written files:

- per-cell volume mismatch: max over cells of |sum of the cell's session bytes - given| / given
  (target < 1 %);
- service session shares against ``sessions_share.csv`` (renormalised over the mapped apps),
  max error in percentage points (target < 2 pp);
- the arrival model's implied volume over the given one (the reconciliation factor's inverse).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_sessions.py`` (about a minute of CPU on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(city_name: str, hour: str, cube_path: str | None) -> dict:
    """One expansion and its read-back checks (called in a child process)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from appshot_model.core.cube import grid_of, read_cube
    from appshot_model.sessions.expansion import HourSpec, expand_hour
    from appshot_model.sessions.models import StandInWarning
    from appshot_model.sessions.run import DEFAULT_DATE, grid_timezone, load_model, select_snapshot
    from appshot_model.traffic.demo import DEMO_CITIES, simulate_context, simulate_traffic
    from appshot_model.traffic.peaks import peak_snapshots

    warnings.simplefilter("ignore", StandInWarning)
    if cube_path:
        cube = read_cube(cube_path)
        snapshot, start, label = select_snapshot(cube, 0, hour, DEFAULT_DATE)
        grid, source = grid_of(cube), f"sample 0 of {cube_path}"
    else:
        city = {c.name: c for c in DEMO_CITIES}[city_name]
        traffic = simulate_traffic(city, simulate_context(city, seed=0), seed=0, days=1)
        peak = peak_snapshots(traffic, hour).isel(time=0)
        snapshot, start, label = peak.transpose("service", "y", "x").values, pd.Timestamp(peak.time.values), hour
        grid, cube, source = city.grid, traffic, "simulated demo world, first Monday"
    model = load_model([str(s) for s in cube.service.values])
    spec = HourSpec(city_name, label, start, grid_timezone(grid))
    before = rss_mb()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = expand_hour(model, snapshot, cube.attrs.get("units", "bit/s"), grid, spec, out, seed=0,
                              label=cube.attrs.get("label", ""))
        seconds = time.perf_counter() - started
        peak = rss_mb()
        size = sum(os.path.getsize(p) for p in summary["paths"].values())
        given = pq.read_table(summary["paths"]["cells"], columns=["cell_id", "given_bytes"])
        carried = np.zeros(given.num_rows)
        counts = np.zeros(len(model.services))
        file = pq.ParquetFile(summary["paths"]["sessions"])
        for batch in file.iter_batches(columns=["cell_id", "service", "bytes"], batch_size=1 << 20):
            carried += np.bincount(batch.column("cell_id").to_numpy(), batch.column("bytes").to_numpy(),
                                   carried.size)
            service = batch.column("service")
            lookup = np.array([model.services.index(s) for s in service.dictionary.to_pylist()])
            counts += np.bincount(lookup[service.indices.to_numpy()], minlength=counts.size)
    target = given.column("given_bytes").to_numpy()
    mismatch = np.abs(carried - target) / np.where(target > 0, target, 1.0)
    share_error = 100 * np.abs(counts / counts.sum() - model.service_session_share())
    return {"city": city_name, "hour": label, "source": source, "cells": int(target.size),
            "sessions": summary["sessions"], "seconds": seconds, "rows_per_s": summary["sessions"] / seconds,
            "rss_before_mb": before, "rss_peak_mb": peak, "parquet_mb": size / 1e6,
            "max_cell_volume_mismatch": float(mismatch.max()),
            "max_session_share_error_pp": float(share_error.max()),
            "worst_share_service": model.services[int(share_error.argmax())],
            "implied_over_given": summary["implied_over_given_drawn"],
            "implied_over_given_expected": summary["implied_over_given_expected"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--cities", default="liege,milano", help="demo cities, comma separated")
    parser.add_argument("--hour", default="evening", help="peak hour (morning, midday, evening)")
    parser.add_argument("--cube", help="a generated cube [sample, service, y, x] to expand instead (one case)")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.hour, args.cube)))
        return
    import pyarrow

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}, pyarrow {pyarrow.__version__}, "
          f"load average {load_average()}")
    print(f"peak hour: {args.hour}; each city in a fresh process\n")
    header = (f"{'city':<8} {'cells':>6} {'sessions':>11} {'seconds':>8} {'rows/s':>9} {'RSS before':>11} "
              f"{'peak RSS':>9} {'Parquet':>8} {'cell mismatch':>14} {'share err':>10} {'implied/given':>14}")
    print(header)
    cities = [args.cube and "generated"] if args.cube else args.cities.split(",")
    for city in cities:
        command = [sys.executable, __file__, "--case", city, "--hour", args.hour]
        command += ["--cube", args.cube] if args.cube else []
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['city']:<8} {r['cells']:>6} {r['sessions']:>11,} {r['seconds']:>8.1f} {r['rows_per_s']:>9,.0f} "
              f"{r['rss_before_mb']:>8.0f} MB {r['rss_peak_mb']:>6.0f} MB {r['parquet_mb']:>5.0f} MB "
              f"{r['max_cell_volume_mismatch']:>14.1e} {r['max_session_share_error_pp']:>7.3f} pp "
              f"{r['implied_over_given']:>14.1f}")
    print("\ncell mismatch: max over cells of |session bytes - given| / given (target < 1 %); share err: max "
          "over services of |session share - sessions_share.csv| (target < 2 pp); implied/given: volume the "
          "arrival model's sessions carry before reconciliation over the given volume.")


if __name__ == "__main__":
    main()
