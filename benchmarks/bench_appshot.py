"""AppShot model benchmark: generation time per snapshot and training throughput.

Prints the machine, then
(a) seconds to generate one 97 x 123 snapshot (stride-1 patches, F = 64, 27 attributes, 10 services)
    with the fast path, and fast vs naive (generator run patch by patch) on a 40 x 40 map as the
    baseline ratio measured in the same run;
(b) training throughput (patches / second) at the default ModelConfig / TrainConfig on five
    random cities of the demo's size range.

Weights and inputs are random (timings do not depend on their values). Run:
``python benchmarks/bench_appshot.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch
from machine import cpu_model  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_fast, generate_naive
from appshot_model.model.networks import Generator
from appshot_model.model.patches import patch_origins
from appshot_model.model.train import train_gan

K, S = 27, 10
CITY_SIZES = [(33, 33), (50, 60), (70, 80), (80, 100), (97, 123)]


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_generation(gen: Generator, nz: int, height: int, width: int, naive: bool) -> float:
    rng = np.random.default_rng(0)
    context = rng.random((K, height, width)).astype(np.float32)
    rows, cols = patch_origins(height), patch_origins(width)
    z = torch.randn(len(rows) * len(cols), nz, generator=torch.Generator().manual_seed(0))
    path = generate_naive if naive else generate_fast
    return best_of(2, lambda: path(gen, context, z, rows, cols, 10, 3))


def main() -> None:
    print(f"machine: {cpu_model()}; {os.cpu_count()} logical cores; torch {torch.__version__}; "
          f"torch threads {torch.get_num_threads()}; python {platform.python_version()}")
    cfg = ModelConfig()
    torch.manual_seed(0)
    gen = Generator(K, S, cfg).eval()
    fast_full = bench_generation(gen, cfg.nz, 97, 123, naive=False)
    print(f"(a) one 97x123 snapshot, stride 1 ({88 * 114} patches), F=64, K={K}, S={S}: "
          f"fast path {fast_full:.2f} s (best of 2)")
    fast_small = bench_generation(gen, cfg.nz, 40, 40, naive=False)
    naive_small = bench_generation(gen, cfg.nz, 40, 40, naive=True)
    print(f"    40x40 map ({31 * 31} patches): fast {fast_small:.2f} s, naive patch-by-patch {naive_small:.2f} s, "
          f"speed-up x{naive_small / fast_small:.1f}")
    rng = np.random.default_rng(0)
    contexts = [rng.random((K, h, w)).astype(np.float32) for h, w in CITY_SIZES]
    traffic = [rng.random((20, S, h, w)).astype(np.float32) for h, w in CITY_SIZES]
    train_cfg = TrainConfig(steps=40, device="cpu")
    weights = np.full(S, 1.0 / S, np.float32)
    train_gan(contexts, traffic, weights, cfg, train_cfg.model_copy(update={"steps": 3}))  # warm-up
    start = time.perf_counter()
    train_gan(contexts, traffic, weights, cfg, train_cfg)
    seconds = time.perf_counter() - start
    rate = train_cfg.steps * train_cfg.batch_size / seconds
    default = TrainConfig()
    print(f"(b) training at the default config (batch {train_cfg.batch_size}, F=64, D1+D2): "
          f"{rate:.0f} patches/s, {seconds / train_cfg.steps:.3f} s/step; "
          f"the default {default.steps} steps would take ~{default.steps * seconds / train_cfg.steps:.0f} s")


if __name__ == "__main__":
    main()
