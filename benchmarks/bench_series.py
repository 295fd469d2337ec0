"""Hourly series benchmark: a week (168 h) of hourly per-service AppShot series for the largest demo city.

Prints the machine, then the seconds to generate 168 hourly snapshots ``[168, 10, 97, 123]`` of milano
(97 x 123 cells) with one hour-conditioned model at the default architecture (``ModelConfig()``: F = 64,
27 attributes + 9 hour channels, 10 services, 16-channel noise field) and AR(1) noise across hours, on the
cores this process may use (``core.threads.configure_torch_threads``); the goal is under 60 s on 2 cores.
The model carries a series calibration, as a trained one does, with a full-size reference of
``REFERENCE_CELLS`` training cells for the context neighbours (the profile's extra noise draws, the neighbour
search and the rescaling are part of the time; the time without the calibration is printed too).
For reference it also times independent snapshots (``generate_snapshots``, rho = 0) of the same model.
Weights are random (timings do not depend on their values); context is the simulated demo context. Run::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_series.py
"""

from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
import pandas as pd
import torch
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.names import SERVICES
from appshot_model.core.threads import configure_torch_threads
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.hours import CONDITIONED, HOUR_ATTRIBUTES, with_hour_context
from appshot_model.model.networks import Generator
from appshot_model.model.normalise import fit_normalisation
from appshot_model.model.residual import NEIGHBOURS, REFERENCE_CELLS
from appshot_model.series.stitched import generate_hourly_series
from appshot_model.traffic.demo import DEMO_CITIES, simulate_context

HOURS = 168
GOAL_S = 60.0


def conditioned_model(context) -> ModelArtefact:
    """A random-weight hour-conditioned artefact on the city's attributes (default architecture)."""
    torch.manual_seed(0)
    cfg = ModelConfig()
    names = [*map(str, context.attribute.values), *HOUR_ATTRIBUTES]
    gen = Generator(len(names), len(SERVICES), cfg).eval()
    extended = with_hour_context(context, 12, False).values
    norm = fit_normalisation([np.ones((1, len(SERVICES), *extended.shape[1:]), np.float32)], [extended],
                             SERVICES, names)
    return ModelArtefact(gen, cfg, TrainConfig(), names, list(SERVICES), norm, CONDITIONED, "bit/s", "0" * 64)


def main() -> None:
    threads = configure_torch_threads()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cpus, affinity {len(os.sched_getaffinity(0))}, "
          f"load {load_average()}, python {platform.python_version()}, torch {torch.__version__}, "
          f"{threads} torch thread(s)", flush=True)
    city = max(DEMO_CITIES, key=lambda c: c.grid.height * c.grid.width)
    context = simulate_context(city, 0)
    model = conditioned_model(context)
    times = pd.date_range("2026-03-02", periods=HOURS, freq="h")
    generate_hourly_series(model, context, times[:2], seed=0, rho=0.8)  # warm-up (first-call allocations)
    started = time.perf_counter()
    generate_hourly_series(model, context, times, seed=0, rho=0.8)
    raw = time.perf_counter() - started
    model.series_calibration = {"level_edges": [], "weekly": False,  # the shapes of a trained model's
                                "residual_cv": np.full((1, len(SERVICES)), 1.0).tolist(),
                                "day_share": np.full((1, len(SERVICES)), 0.3).tolist(),
                                "day_persistence": np.full((1, len(SERVICES)), 0.5).tolist(),
                                "profile_shape": np.ones((1, 48, len(SERVICES))).tolist(),
                                "level_factor": np.ones((1, len(SERVICES))).tolist(),
                                "neighbours": NEIGHBOURS, "context_mean": [0.0] * context.sizes["attribute"],
                                "context_std": [1.0] * context.sizes["attribute"]}
    rng = np.random.default_rng(0)                        # a full-size reference of context neighbours
    model.series_reference = {
        "context": rng.standard_normal((REFERENCE_CELLS, context.sizes["attribute"])).astype(np.float32),
        "profile_shape": np.ones((REFERENCE_CELLS, 48, len(SERVICES)), np.float32),
        **{key: np.full((REFERENCE_CELLS, len(SERVICES)), value, np.float32)
           for key, value in (("residual_cv", 1.0), ("day_share", 0.3), ("day_persistence", 0.5))}}
    started = time.perf_counter()
    series = generate_hourly_series(model, context, times, seed=0, rho=0.8)
    seconds = time.perf_counter() - started
    print(f"{city.name} {city.grid.height} x {city.grid.width} cells: {HOURS} h x {len(SERVICES)} services "
          f"{tuple(series.shape)} in {seconds:.1f} s ({seconds / HOURS * 1000:.0f} ms per hour); goal < {GOAL_S:.0f} s: "
          f"{'met' if seconds < GOAL_S else 'NOT met'}; without the series calibration {raw:.1f} s "
          f"(with / without = {seconds / raw:.2f})")
    started = time.perf_counter()
    generate_snapshots(model, with_hour_context(context, 12, False), 24, seed=0)
    reference = (time.perf_counter() - started) / 24
    print(f"reference: independent snapshots (generate_snapshots) {reference * 1000:.0f} ms each; stitched series / "
          f"independent = {seconds / HOURS / reference:.2f}")


if __name__ == "__main__":
    sys.exit(main())
