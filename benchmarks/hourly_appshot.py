"""AppShot for all 24 hours on the demo world: 24 per-hour models vs one hour-conditioned model, temporal
coherence of stitched series (AC-L1) and the slicing use case E(p).

Demo world (simulated, seed ``--seed``, ``--days`` days), training on every city but the held-out ones,
all 27 context attributes, a small budget (``--features``, ``--steps``, batch 4, tile 32, 2 noise draws):

1. ``--compare`` (held-out city ``--held-out[0]``): train (a) one model per hour of day on weekday snapshots
   (only the ``--score-hours``; their cost is scaled to 24 models, unless ``--series-model per-hour`` needs
   all 24) and (b) one model conditioned on the hour (weekday + weekend); time both; score per hour
   (``appshot_model.evaluation.metrics.score``, weekday snapshots of the held-out city against as many
   generated ones) at ``--score-hours``. Writes ``docs/results/hourly_models.csv``.
2. temporal (every held-out city): the hour-conditioned model (or (a) with ``--series-model per-hour``),
   rho calibrated on a training city (``calibrate_rho``), the held-out city's whole period generated with
   independent noise (rho = 0) and with AR(1) noise, ``--noise-seeds`` times each, and an ablation with AR(1)
   noise whose cells take their profile shape and residual targets from their level bin instead of their context
   neighbours (``level-bins``); AC-L1 per service and of the total against the real series (AppShot's: mean over
   the noise seeds), with the naive baseline and the Data halves for reference. Adds the ``appshot`` rows of the
   demo world to ``docs/results/acl1.csv`` (mean over held-out cities; other rows kept).
   Per-hour NEMD histograms of the total (``--nemd-hours`` evenly spaced hours; Data, AppShot, naive) ->
   ``docs/figures/hourly/nemd_per_hour_<city>.png``.
3. slicing: E(p) of the held-out cities' cells (pooled) real vs stitched with AR(1) noise ->
   ``docs/results/slicing_demo.csv`` and ``docs/figures/hourly/slicing_demo.png``.

``--world spectragan`` instead: the SpectraGAN world (``--shared-data``/spectragan; 3 weeks of hourly total
traffic, SpectraGAN model output): the hour-conditioned model trained on one city, rho calibrated on it,
the other city generated; AC-L1 of the total against real, naive and Data, both directions, for each of
``--seeds`` (training, noise and naive seeds); the mean over seeds and directions becomes the
``spectragan,appshot,total`` row of ``acl1.csv``; per-hour NEMD histograms
``nemd_per_hour_spectragan_<city>.png``.

Trained models are cached under ``--cache`` (delete it to retrain). One torch thread. Run from the
repository root::

    APPSHOT_TORCH_THREADS=1 PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/hourly_appshot.py
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from acl1_table import replace_rows  # noqa: E402
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.metrics import score
from appshot_model.evaluation.temporal import ac_l1, acf_png, data_ac_l1, nemd_histogram_png, per_hour_nemds
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.hours import train_hour_conditioned_model, train_hour_model, with_hour_context
from appshot_model.series.data import CellSeries, cell_series
from appshot_model.series.naive import fit_weekly_profile, generate_weekly_profile
from appshot_model.series.stitched import calibrate_rho, generate_hourly_series
from appshot_model.traffic.peaks import hour_snapshots
from appshot_model.usecases.slicing import efficiency_png, efficiency_table

REPO = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cached(path: Path, train) -> tuple[ModelArtefact, float]:
    """The artefact at ``path``, else trained by ``train()`` and saved; with its training seconds."""
    if (path / "model.json").is_file():
        artefact = ModelArtefact.load(path)
        return artefact, float(artefact.history.get("seconds", [np.nan])[0])
    started = time.perf_counter()
    artefact = train()
    seconds = time.perf_counter() - started
    artefact.history["seconds"] = [seconds]
    artefact.save(path)
    return artefact, seconds


def train_models(kind: str, world: dict, train_cities: list[str], attributes: list[str], model_cfg: ModelConfig,
                 train_cfg: TrainConfig, cache: Path, hours: list[int], conditioned_steps: int
                 ) -> tuple[ModelArtefact | dict[int, ModelArtefact], float]:
    """The hour-conditioned model, or the per-hour models of ``hours``; training seconds (for the per-hour
    models: 24 x their mean, the cost of all 24)."""
    contexts = {c: world[c][0] for c in train_cities}
    traffic = {c: world[c][1] for c in train_cities}
    if kind == "conditioned":
        model, seconds = cached(cache / f"conditioned-s{conditioned_steps}", lambda: train_hour_conditioned_model(
            contexts, traffic, attributes, model_cfg, train_cfg.model_copy(update={"steps": conditioned_steps})))
        log(f"  hour-conditioned model: {seconds:.0f} s")
        return model, seconds
    models, total = {}, 0.0
    for hour in hours:
        models[hour], seconds = cached(cache / f"hour{hour:02d}", lambda h=hour: train_hour_model(
            contexts, traffic, attributes, h, model_cfg, train_cfg))
        total += seconds
        log(f"  hour {hour:02d} model: {seconds:.0f} s")
    return models, 24 * total / len(hours)


def compare(world: dict, held_out: str, models: dict, seconds: dict, hours: list[int], seed: int) -> pd.DataFrame:
    """Per-hour fidelity of (a) per-hour models and (b) the hour-conditioned model on weekday snapshots."""
    context, traffic = world[held_out]
    rows = []
    for hour in hours:
        real = hour_snapshots(traffic, hour, "weekday")
        n = real.sizes["time"]
        generated = {
            "per-hour": generate_snapshots(models["per-hour"][hour], context, n, derive_seed(seed, "cmp", hour)),
            "conditioned": generate_snapshots(models["conditioned"], with_hour_context(context, hour, False), n,
                                              derive_seed(seed, "cmp", hour))}
        for method, samples in generated.items():
            metrics = score(real.values, samples.values, nemd_max_pairs=5)
            rows.append({"held_out": held_out, "hour": hour, "method": method, "training_s": round(seconds[method], 1),
                         **{k: metrics[k] for k in ("werr", "nemd", "ssim", "psnr", "hemd")}})
        log(f"  hour {hour:02d}: " + "; ".join(f"{r['method']} werr {r['werr']:.3f} nemd {r['nemd']:.3f} "
                                                f"ssim {r['ssim']:.3f}" for r in rows[-2:]))
    return pd.DataFrame(rows)


def temporal(world: dict, held_out: str, train_cities: list[str], model, seed: int, rho: float,
             naive_cells: int, noise_seeds: int = 1) -> tuple[list[dict], dict[str, np.ndarray]]:
    """AC-L1 rows of one held-out city (AppShot's: mean and std over ``noise_seeds`` series) and the series
    ``[time, service, y, x]`` (real, independent and coherent of the first noise seed, naive)."""
    context, traffic = world[held_out]
    times = traffic.time.values
    series = {"real": traffic.values}
    draws: dict[str, list[np.ndarray]] = {}
    for name, r, neighbours in (("independent", 0.0, True), ("coherent", rho, True), ("level-bins", rho, False)):
        started = time.perf_counter()
        draws[name] = [generate_hourly_series(model, context, times, derive_seed(seed, "series", held_out, *k), r,
                                              context_neighbours=neighbours).values
                       for k in [(), *([n] for n in range(1, noise_seeds))]]
        series[name] = draws[name][0]
        log(f"  {held_out} {name} (rho {r:.2f}): {noise_seeds} x {len(times)} h in "
            f"{time.perf_counter() - started:.0f} s")
    others = [cell_series(*world[c]) for c in train_cities]
    pooled = CellSeries(np.concatenate([c.context for c in others]), np.concatenate([c.values for c in others]),
                        others[0].attributes, others[0].services, np.concatenate([c.rows for c in others]),
                        np.concatenate([c.cols for c in others]), others[0].times)
    train = pooled.sample(naive_cells, np.random.default_rng(derive_seed(seed, "demo", "cells", held_out)))
    target = cell_series(context, traffic)
    naive = generate_weekly_profile(fit_weekly_profile(train), target.context, target.times,
                                    seed=derive_seed(seed, "naive"))                      # [cells, time, services]
    series["naive"] = naive.transpose(1, 2, 0).reshape(traffic.shape)
    services = [str(s) for s in traffic.service.values]
    rows = []
    for service, index in [("total", None), *((s, i) for i, s in enumerate(services))]:
        def pick(v: np.ndarray) -> np.ndarray:
            return v.sum(axis=1) if index is None else v[:, index]
        real = pick(series["real"])
        rows.append({"held_out": held_out, "service": service, "method": "data", "acl1": data_ac_l1(real)})
        for name, generated in draws.items():
            scores = [ac_l1(real, pick(v)) for v in generated]
            rows.append({"held_out": held_out, "service": service, "method": name, "acl1": float(np.mean(scores)),
                         "acl1_sd": float(np.std(scores)), "noise_seeds": len(scores)})
        rows.append({"held_out": held_out, "service": service, "method": "naive",
                     "acl1": ac_l1(real, pick(series["naive"]))})
    return rows, series


def nemd_figure(series: dict[str, np.ndarray], tag: str, out: Path, max_hours: int) -> None:
    """Per-hour NEMD histogram (seed 000 Fig. 15/16) of the total traffic of one held-out city: Data halves,
    AppShot (AR(1) noise, first noise seed) and naive against the real maps, at most ``max_hours`` hours."""
    maps = {"real": series["real"].sum(axis=1), "AppShot": series["coherent"].sum(axis=1),
            "naive": series["naive"].sum(axis=1)}
    nemds = per_hour_nemds(maps, max_hours)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"nemd_per_hour_{tag}.png").write_bytes(nemd_histogram_png(nemds, f"Per-hour NEMD, total traffic, {tag}"))
    log("  per-hour NEMD medians: " + ", ".join(f"{k} {np.nanmedian(v):.3f}" for k, v in nemds.items()))


def spectragan(args, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Both directions of the SpectraGAN world (train on one city, generate the other)."""
    from appshot_model.traffic.spectragan import TRAFFIC_CITIES, context_cube, read_traffic

    root = args.shared_data / "spectragan"
    world = {c: (context_cube(root, c), read_traffic(root, c)) for c in TRAFFIC_CITIES}
    attributes = [str(a) for a in world[TRAFFIC_CITIES[0]][0].attribute.values]
    rows, seeds = [], args.seeds or [args.seed]
    for seed, held_out in itertools.product(seeds, TRAFFIC_CITIES):
        train = [c for c in TRAFFIC_CITIES if c != held_out]
        model, _ = train_models("conditioned", world, train, attributes, model_cfg,
                                train_cfg.model_copy(update={"seed": seed}),
                                args.cache / f"spectragan-{held_out}-f{args.features}-seed{seed}", [],
                                args.conditioned_steps or args.steps)
        rho, target, tried = calibrate_rho(model, world[train[0]][0], world[train[0]][1], derive_seed(seed, "rho"))
        log(f"  seed {seed}: rho: real residual lag-1 of {train[0]} {target:.3f}; generated "
            + ", ".join(f"{r:g}: {v:.3f}" for r, v in tried.items()) + f" -> rho = {rho:g}")
        fold, series = temporal(world, held_out, train, model, seed, rho, args.naive_cells, args.noise_seeds)
        total = list({r["method"]: r for r in fold if r["service"] == "total"}.values())  # the one service repeats it
        rows += [{**r, "seed": seed, "rho": rho} for r in total]
        log("  AC-L1 total: " + ", ".join(f"{r['method']} {r['acl1']:.2f}" for r in total))
        if seed == seeds[0]:
            nemd_figure(series, f"spectragan_{held_out}", args.figures, args.nemd_hours)
    folds = pd.DataFrame(rows)
    print(folds.pivot_table(index=["seed", "held_out"], columns="method", values="acl1").round(2).to_string())
    print("mean over seeds and folds:\n" + folds.groupby("method")["acl1"].mean().round(2).to_string())
    folds.to_csv(args.out / "acl1_hourly_folds_spectragan.csv", index=False, float_format="%.3f")
    write_acl1(folds, args.out / "acl1.csv", "spectragan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="--world spectragan: training seeds (each trains both folds); the acl1.csv row is the "
                             "mean over seeds and folds (default: --seed)")
    parser.add_argument("--world", choices=["demo", "spectragan"], default="demo")
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("APPSHOT_SHARED_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--held-out", nargs="+", default=["liege", "valencia"])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--conditioned-steps", type=int, default=None,
                        help="budget of the hour-conditioned model (default: --steps)")
    parser.add_argument("--compare", action="store_true", help="also train and score the 24 per-hour models")
    parser.add_argument("--series-model", choices=["conditioned", "per-hour"], default="conditioned")
    parser.add_argument("--score-hours", type=int, nargs="+", default=[3, 8, 12, 17, 21])
    parser.add_argument("--naive-cells", type=int, default=2000)
    parser.add_argument("--noise-seeds", type=int, default=4,
                        help="AppShot series per held-out city (noise seeds) whose AC-L1 is averaged")
    parser.add_argument("--nemd-hours", type=int, default=168, help="hours scored for the per-hour NEMD figures")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/appshot-hourly-cache"))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    parser.add_argument("--figures", type=Path, default=REPO / "docs" / "figures" / "hourly")
    args = parser.parse_args(argv)
    from appshot_model.traffic.demo import DEMO_CITIES, simulate_context, simulate_traffic

    torch.set_num_threads(1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cpus, affinity {len(os.sched_getaffinity(0))}, "
          f"load {load_average()}, python {platform.python_version()}, torch {torch.__version__}, 1 thread",
          flush=True)
    model_cfg = ModelConfig(features=args.features)
    train_cfg = TrainConfig(steps=args.steps, batch_size=4, tile=32, noise_draws=2, seed=args.seed)
    if args.world == "spectragan":
        return spectragan(args, model_cfg, train_cfg)
    world = {}
    for city in DEMO_CITIES:
        context = simulate_context(city, args.seed)
        world[city.name] = (context, simulate_traffic(city, context, args.seed, days=args.days))
    attributes = [str(a) for a in next(iter(world.values()))[0].attribute.values]
    args.figures.mkdir(parents=True, exist_ok=True)
    acl1_rows, slicing = [], {"real": [], "generated": []}
    for i, held_out in enumerate(args.held_out):
        train_cities = [c for c in world if c != held_out]
        cache = args.cache / f"{held_out}-f{args.features}-s{args.steps}-seed{args.seed}"
        log(f"held out {held_out}; training on {train_cities}")
        models, seconds = {}, {}
        for kind in (["conditioned", "per-hour"] if args.compare and i == 0 else [args.series_model]):
            hours = args.score_hours if kind == "per-hour" and args.series_model != "per-hour" else list(range(24))
            models[kind], seconds[kind] = train_models(kind, world, train_cities, attributes, model_cfg, train_cfg,
                                                       cache, hours, args.conditioned_steps or args.steps)
        if args.compare and i == 0:
            table = compare(world, held_out, models, seconds, args.score_hours, args.seed)
            table.to_csv(args.out / "hourly_models.csv", index=False, float_format="%.4f")
            print(table.groupby("method")[["training_s", "werr", "nemd", "ssim", "psnr", "hemd"]].mean().round(3))
        model = models[args.series_model]
        smallest = min(train_cities, key=lambda c: world[c][1].sizes["y"] * world[c][1].sizes["x"])
        week = world[smallest][1].isel(time=slice(0, 168))
        rho, target, tried = calibrate_rho(model, world[smallest][0], week, derive_seed(args.seed, "rho"))
        log(f"  rho: real residual lag-1 of {smallest} (first week) {target:.3f}; generated "
            + ", ".join(f"{r:g}: {v:.3f}" for r, v in tried.items()) + f" -> rho = {rho:g}")
        rows, series = temporal(world, held_out, train_cities, model, args.seed, rho, args.naive_cells,
                                args.noise_seeds)
        acl1_rows += [{**r, "rho": rho} for r in rows]
        log("  AC-L1 total: " + ", ".join(f"{r['method']} {r['acl1']:.2f}" for r in rows if r["service"] == "total"))
        (args.figures / f"acf_{held_out}.png").write_bytes(acf_png(
            {k: v.sum(axis=1) for k, v in series.items()}, f"Mean autocorrelation, total traffic, {held_out}"))
        nemd_figure(series, held_out, args.figures, args.nemd_hours)
        for key, name in (("real", "real"), ("generated", "coherent")):
            slicing[key].append(series[name].reshape(*series[name].shape[:2], -1))
    folds = pd.DataFrame(acl1_rows)
    print(folds.pivot_table(index=["held_out", "service"], columns="method", values="acl1").round(2).to_string())
    folds.to_csv(args.out / "acl1_hourly_folds.csv", index=False, float_format="%.3f")
    write_acl1(folds, args.out / "acl1.csv", "demo")
    table = efficiency_table(np.concatenate(slicing["real"], axis=2), np.concatenate(slicing["generated"], axis=2))
    table.to_csv(args.out / "slicing_demo.csv", index=False, float_format="%.4f")
    (args.figures / "slicing_demo.png").write_bytes(efficiency_png(
        table, f"E(p), demo world, held out {', '.join(args.held_out)}: real vs AppShot (AR(1) noise)"))
    print(table.round(4).to_string(index=False))


def write_acl1(folds: pd.DataFrame, path: Path, world: str) -> None:
    """Replace the world's ``appshot`` rows of ``acl1.csv`` by the coherent-noise series' mean over folds."""
    replace_rows(folds[folds.method == "coherent"].groupby("service", sort=False, as_index=False)["acl1"].mean()
                 .assign(world=world, method="appshot"), path)


if __name__ == "__main__":
    sys.exit(main())
