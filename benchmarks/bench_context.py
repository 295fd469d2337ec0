"""Benchmark: context cube of a real region (default: Liechtenstein from its OSM extract, 250 m).

Prints the machine, then for each repeat the total build time and the split by step (OSM read,
PoI/road gridding, population estimate, land use, assembly), then the median per step, plus the
time of the 27 layer PNGs (drawn outside the build). Usage::

    .venv/bin/python benchmarks/bench_context.py                       # examples/regions/liechtenstein.yaml
    .venv/bin/python benchmarks/bench_context.py --region R.yaml --repeats 5 --cell-size 100
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from machine import cpu_model  # noqa: E402  (benchmarks/ is the script's folder)


def machine() -> str:
    import importlib.metadata as md

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("osmium", "shapely", "geopandas", "pyproj", "rasterio"))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu_model()}; {os.cpu_count()} logical CPUs; load average {load}; Python "
            f"{platform.python_version()} on {platform.system()} {platform.release()}; {versions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=Path, default=ROOT / "examples" / "regions" / "liechtenstein.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cell-size", type=float, default=None, help="override the region's cell size (m)")
    args = parser.parse_args()

    from appshot_model.context.build import build_context_cube, layer_pngs
    from appshot_model.context.region import load_region

    print(f"machine: {machine()}")
    region = load_region(args.region)
    if args.cell_size:
        region.cell_size_m = args.cell_size
    grid = region.grid()
    print(f"region: {region.name} ({args.region}), grid {grid.height} x {grid.width} cells of "
          f"{grid.cell_size_m:g} m in {grid.crs}")
    runs = []
    for i in range(args.repeats):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube, meta = build_context_cube(region)
        total = time.perf_counter() - started
        runs.append((total, meta["timings_s"]))
        split = ", ".join(f"{k} {v:.2f}" for k, v in meta["timings_s"].items())
        print(f"run {i + 1}: {total:.2f} s  ({split})")
    steps = list(runs[0][1])
    print(f"median total: {statistics.median(r[0] for r in runs):.2f} s")
    for step in steps:
        print(f"  {step:<10} {statistics.median(r[1][step] for r in runs):6.2f} s")
    started = time.perf_counter()
    pngs = layer_pngs(cube)
    print(f"layer PNGs ({len(pngs)}): {time.perf_counter() - started:.2f} s")
    print(f"missing layers: {meta['missing_layers'] or 'none'}; estimated: {meta['estimated_layers'] or 'none'}")


if __name__ == "__main__":
    main()
