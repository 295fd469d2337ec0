"""Scaling of chunked generation: seconds and peak RSS for square regions of 250 ... 2000 cells a side.

Prints the machine, then one line per region size, and writes ``docs/results/scaling.csv``
(``cells_side,seconds,peak_rss_mb``). Steps:

1. a tiny model at the DEFAULT architecture of ``ModelConfig`` (``--features`` overrides F) trained for a
   few steps on a small simulated demo city (timings do not depend on how well it is trained);
2. for every size, a SYNTHETIC context written by this script to a Zarr store, chunk by chunk (population as
   Gaussian blobs, land-use fractions as a softmax of blob fields, PoI counts Poisson around the
   population, every other attribute of the model a blob field; seeded, seamless across chunks);
3. for every size, a fresh Python process that loads the model, opens the context lazily, generates one
   snapshot (all services) with ``appshot_model.model.chunked`` on a ``dask.distributed`` LocalCluster and
   writes it to a Zarr store; it reports the wall time of those steps and its own peak RSS
   (``getrusage(RUSAGE_SELF).ru_maxrss``: the LocalCluster runs in the process, threads only).

Run: ``nice -n 10 python benchmarks/bench_scaling.py`` (``--sizes 250 500`` for a quick look).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import torch
import xarray as xr
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.grid import Grid
from appshot_model.core.seeds import derive_seed
from appshot_model.core.threads import available_cores

ROOT = Path(__file__).resolve().parents[1]
SIZES = (250, 500, 1000, 2000)
HOUR = "morning"
#: Blobs per cell of each synthetic field (one per ~40 x 40 cells, as towns in a countryside).
BLOBS_PER_CELL = 1 / 1600


def train_tiny_model(features: int, out: Path) -> Path:
    """A default-architecture model (F = ``features``) trained for 3 steps on a 48 x 48 simulated city."""
    from appshot_model.model.config import ModelConfig, TrainConfig
    from appshot_model.model.fit import train_peak_hour_model
    from appshot_model.model.normalise import fit_normalisation_to_cubes
    from appshot_model.traffic.demo.cities import small_demo_city
    from appshot_model.traffic.demo.context import simulate_context
    from appshot_model.traffic.demo.traffic import simulate_traffic
    from appshot_model.traffic.peaks import peak_snapshots

    city = small_demo_city("bench", 48, 48)
    context = simulate_context(city, seed=0)
    peaks = peak_snapshots(simulate_traffic(city, context, seed=0, days=7), HOUR)
    attributes = [str(a) for a in context.attribute.values]
    norm = fit_normalisation_to_cubes({"bench": context}, {"bench": peaks}, ["bench"], attributes).to_dict()
    artefact = train_peak_hour_model({"bench": context}, {"bench": peaks}, attributes, norm,
                                     ModelConfig(features=features), TrainConfig(steps=3, batch_size=4, bn_batches=1),
                                     hour=HOUR)
    return artefact.save(out)


def _blob_field(seed: int, name: str, side: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sum of seeded Gaussian blobs (centres anywhere in the region, widths 3-25 cells) at cells ``rows x cols``;
    the blob list depends on the region only, so chunks join without seams."""
    rng = np.random.default_rng(derive_seed(seed, "blobs", name, side))
    n = max(1, round(side * side * BLOBS_PER_CELL))
    centre_r, centre_c = rng.uniform(0, side, n), rng.uniform(0, side, n)
    width, height = rng.uniform(3, 25, n), rng.lognormal(0.0, 1.0, n)
    out = np.zeros((len(rows), len(cols)))
    near = ((centre_r + 4 * width > rows[0]) & (centre_r - 4 * width < rows[-1])
            & (centre_c + 4 * width > cols[0]) & (centre_c - 4 * width < cols[-1]))
    for r, c, w, h in zip(centre_r[near], centre_c[near], width[near], height[near], strict=True):
        out += h * np.exp(-0.5 * ((rows[:, None] - r) ** 2 + (cols[None, :] - c) ** 2) / w ** 2)
    return out


def _context_block(block: np.ndarray, attributes: list[str], side: int, seed: int,
                   block_info: dict | None = None) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[None]["array-location"][1:]
    rows, cols = np.arange(r0, r1, dtype=float), np.arange(c0, c1, dtype=float)
    population = 400.0 * _blob_field(seed, "population", side, rows, cols)
    landuse = [a for a in attributes if a.startswith("landuse_")]
    logits = np.stack([_blob_field(seed, a, side, rows, cols) for a in landuse]) if landuse else None
    shares = np.exp(logits - logits.max(axis=0)) / np.exp(logits - logits.max(axis=0)).sum(axis=0) if landuse else None
    rng = np.random.default_rng(derive_seed(seed, "poi", side, r0, c0))
    values = []
    for name in attributes:
        if name == "population":
            values.append(population)
        elif name in landuse:
            values.append(shares[landuse.index(name)])
        elif name.startswith("poi_"):
            values.append(rng.poisson(population / 500.0).astype(float))
        else:
            values.append(_blob_field(seed, name, side, rows, cols))
    return np.stack(values).astype(np.float32)


def write_synthetic_context(attributes: list[str], side: int, path: Path, seed: int = 0, chunk: int = 512) -> Path:
    """A SYNTHETIC ``side x side`` context cube with the model's attributes, written chunk by chunk to Zarr."""
    grid = Grid("EPSG:32632", 300_000.0, 5_300_000.0, side, side)
    lazy = da.zeros((len(attributes), side, side), chunks=(-1, chunk, chunk), dtype=np.float32)
    lazy = lazy.map_blocks(_context_block, attributes, side, seed, dtype=np.float32)
    cube = xr.DataArray(lazy, dims=("attribute", "y", "x"),
                        coords={"attribute": attributes, "y": grid.y_centres(), "x": grid.x_centres()},
                        name="context", attrs={"label": "synthetic benchmark context"})
    cube = cube.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    cube.to_dataset().to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def measure(model_dir: Path, context_store: Path, out: Path, chunk_cells: int) -> dict:
    """Inside the fresh process: load, generate one snapshot chunked on a LocalCluster, write Zarr."""
    from appshot_model.model.artefact import ModelArtefact
    from appshot_model.model.chunked import dask_client, generate_lazy, write_snapshots_zarr

    start = time.perf_counter()
    artefact = ModelArtefact.load(model_dir)
    context = xr.open_zarr(context_store, decode_coords="all")["context"]
    with dask_client():
        write_snapshots_zarr(generate_lazy(artefact, context, n_samples=1, seed=0, chunk_cells=chunk_cells), out)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="region sides in cells")
    parser.add_argument("--features", type=int, default=None, help="base width F (default: ModelConfig's)")
    parser.add_argument("--chunk-cells", type=int, default=None, help="chunk side (default: CHUNK_CELLS)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "scaling.csv")
    parser.add_argument("--measure", nargs=3, type=Path, help=argparse.SUPPRESS)  # model, context, output
    args = parser.parse_args()
    from appshot_model.model.chunked import CHUNK_CELLS

    chunk_cells = args.chunk_cells or CHUNK_CELLS
    if args.measure:
        print(json.dumps(measure(*args.measure, chunk_cells)))
        return
    from appshot_model.model.artefact import ModelArtefact
    from appshot_model.model.config import ModelConfig

    torch.set_num_threads(1)
    features = args.features or ModelConfig().features
    print(f"machine: {cpu_model()}; {os.cpu_count()} logical cores ({len(available_cores())} available); "
          f"load {load_average()}; torch {torch.__version__}; python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        tmp = Path(tmp)
        model_dir = train_tiny_model(features, tmp / "model")
        artefact = ModelArtefact.load(model_dir)
        print(f"model: F={features}, Nz={artefact.model_cfg.nz}, {len(artefact.attributes)} attributes, "
              f"{len(artefact.services)} services, noise field {artefact.model_cfg.field_channels} channels; "
              f"generation on a LocalCluster with {len(available_cores())} threads, chunks of {chunk_cells} cells")
        for side in args.sizes:
            context_store = write_synthetic_context(list(artefact.attributes), side, tmp / f"context-{side}.zarr")
            command = [sys.executable, __file__, "--measure", str(model_dir), str(context_store),
                       str(tmp / f"traffic-{side}.zarr"), "--chunk-cells", str(chunk_cells)]
            result = subprocess.run(command, check=True, capture_output=True, text=True,
                                    env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append({"cells_side": side, "seconds": round(figures["seconds"], 2),
                         "peak_rss_mb": round(figures["peak_rss_mb"], 1)})
            per_cell = figures["seconds"] / side ** 2 * 1e6
            print(f"{side:>5} x {side:<5} {figures['seconds']:8.1f} s  ({per_cell:6.2f} us/cell)  "
                  f"peak RSS {figures['peak_rss_mb']:7.1f} MB", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["cells_side", "seconds", "peak_rss_mb"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
