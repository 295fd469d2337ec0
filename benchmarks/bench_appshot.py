"""AppShot model benchmark: generation time of a 97 x 123 snapshot and training throughput, today's
defaults against the first implementation's, measured in the same run.

Prints the machine, then

(a) seconds to generate one 97 x 123 snapshot (27 attributes, 10 services): the first implementation
    (one z per stride-1 patch, 10,032 patches stitched by averaging, F = 64, its fast path) against
    the default (one z + noise field per snapshot, one fully convolutional pass, F = 32), and the
    default architecture at the paper's F = 64 to separate the two changes;
(b) training throughput in overlapping 10 x 10 patches per second and cells per second: the first
    implementation (batches of 64 single patches with per-patch noise, F = 64, L1 against one day)
    against the default (4 tiles of 32 x 32 cells per step, 2 noise draws, F = 32), on five random
    cities of the demo's size range. A 32 x 32 tile holds 23 x 23 = 529 patches.

Weights and inputs are random (timings do not depend on their values). Torch uses the threads the
process may use (``configure_torch_threads``). Run ``PYTHONPATH=. python benchmarks/bench_appshot.py``
(a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch
import xarray as xr
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.cube import make_context_cube
from appshot_model.core.grid import Grid
from appshot_model.core.names import ATTRIBUTES, SERVICES
from appshot_model.core.threads import configure_torch_threads
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.networks import Generator
from appshot_model.model.normalise import Normalisation
from appshot_model.model.train import train_gan

K, S = len(ATTRIBUTES), len(SERVICES)
CITY_SIZES = [(33, 33), (50, 60), (70, 80), (80, 100), (97, 123)]
#: The first implementation's configuration (before tile training and snapshot noise).
FIRST = (ModelConfig(features=64, noise_scope="patch", l1_target="sample"),
         TrainConfig(batch_size=64, noise_draws=1))
DEFAULT = (ModelConfig(), TrainConfig())


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def artefact(cfg: ModelConfig) -> ModelArtefact:
    """An untrained artefact of ``cfg`` on every attribute and service (timings only)."""
    torch.manual_seed(0)
    norm = Normalisation(SERVICES, ATTRIBUTES, [1.0] * S, [1.0] * K, context_log1p=[False] * K)
    return ModelArtefact(Generator(K, S, cfg).eval(), cfg, TrainConfig(steps=1), list(ATTRIBUTES), list(SERVICES), norm,
                         "morning", "bit/s", "0" * 64)


def milano_sized_context() -> xr.DataArray:
    rng = np.random.default_rng(0)
    return make_context_cube(rng.random((K, 97, 123)), ATTRIBUTES, Grid("EPSG:32632", 500_000.0, 5_605_000.0, 97, 123))


def generation_seconds(cfg: ModelConfig) -> float:
    model, context = artefact(cfg), milano_sized_context()
    return best_of(2, lambda: generate_snapshots(model, context, 1, seed=0))


def training_rates(model_cfg: ModelConfig, train_cfg: TrainConfig, steps: int) -> tuple[float, float, float]:
    """(patches/s, cells/s, s/step) over ``steps`` steps after a 2-step warm-up."""
    rng = np.random.default_rng(0)
    contexts = [rng.random((K, h, w)).astype(np.float32) for h, w in CITY_SIZES]
    traffic = [rng.random((20, S, h, w)).astype(np.float32) for h, w in CITY_SIZES]
    weights = np.full(S, 1.0 / S, np.float32)
    train_gan(contexts, traffic, weights, model_cfg, train_cfg.model_copy(update={"steps": 2, "bn_batches": 0}))
    cfg = train_cfg.model_copy(update={"steps": steps, "bn_batches": 0})
    seconds = best_of(1, lambda: train_gan(contexts, traffic, weights, model_cfg, cfg))
    side = model_cfg.traffic_patch if model_cfg.noise_scope == "patch" else train_cfg.tile
    patches = (side - model_cfg.traffic_patch + 1) ** 2 * train_cfg.batch_size * steps
    return patches / seconds, side * side * train_cfg.batch_size * steps / seconds, seconds / steps


def main() -> None:
    threads = configure_torch_threads()
    print(f"machine: {cpu_model()}; {os.cpu_count()} logical cores; torch {torch.__version__}; torch threads "
          f"{threads}; python {platform.python_version()}; load average at start {load_average()}")
    first_gen = generation_seconds(FIRST[0])
    default_gen = generation_seconds(DEFAULT[0])
    wide_gen = generation_seconds(ModelConfig(features=64))
    print(f"(a) one 97x123 snapshot: first implementation (per-patch z, F=64) {first_gen:.2f} s; default "
          f"(per-snapshot z + field, F={DEFAULT[0].features}) {default_gen:.3f} s (x{first_gen / default_gen:.0f} "
          f"faster); default design at F=64 {wide_gen:.3f} s (x{first_gen / wide_gen:.0f})")
    first = training_rates(*FIRST, steps=30)
    default = training_rates(*DEFAULT, steps=30)
    for name, (patches, cells, step), (m, t) in (("first implementation", first, FIRST), ("default", default, DEFAULT)):
        print(f"(b) training, {name} (F={m.features}, batch {t.batch_size}, noise draws {t.noise_draws}): "
              f"{patches:,.0f} patches/s, {cells:,.0f} cells/s, {step:.3f} s/step -> {t.steps} steps ~{t.steps * step:.0f} s")
    print(f"    ratio default / first: x{default[0] / first[0]:.1f} patches/s, x{default[1] / first[1]:.1f} cells/s; "
          f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
