"""AppShot training schedules scored on single held-out folds of the demo world.

The docs/model.md "Default schedule" table: each schedule trains the AppShot model on the fold's training
cities, generates the held-out city and prints WErr / NEMD / SSIM / PSNR / HEMD, the mean hotspot count per
generated service map and the training seconds; the fold's Data row and, with ``--baseline``, the baselines are
printed beside it.

Schedules are ``steps:lr`` pairs (the same Adam learning rate for G and both Ds). Run from the repository root::

    PYTHONPATH=. python benchmarks/appshot_schedule.py --fold porto:morning --fold lyon:midday \\
        --schedule 600:2e-4 --schedule 1000:5e-4 --baseline cnn

One fold and schedule takes 50-130 s on two cores (torch uses the threads the process may use).
"""

from __future__ import annotations

import argparse
import time

from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.core.threads import configure_torch_threads
from appshot_model.evaluation.baselines import generate_method, train_method
from appshot_model.evaluation.baselines.appshot_variants import generate_appshot_variant
from appshot_model.evaluation.loco import Fold, LocoSettings, prepare_fold, real_snapshots
from appshot_model.evaluation.metrics import HEADLINE_METRICS, hotspot_counts, score
from appshot_model.evaluation.worlds import demo_world
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.fit import train_peak_hour_model


def schedule(text: str) -> tuple[int, float]:
    """``"1000:5e-4"`` -> ``(1000, 5e-4)``."""
    try:
        steps, lr = text.split(":")
        return int(steps), float(lr)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"schedule {text!r}: expected steps:learning_rate, e.g. 1000:5e-4") from exc


def fold(text: str) -> Fold:
    """``"porto:morning"`` -> ``Fold("porto", "morning")``."""
    held_out, _, hour = text.partition(":")
    if not held_out or not hour:
        raise argparse.ArgumentTypeError(f"fold {text!r}: expected held_out:hour, e.g. porto:morning")
    return Fold(held_out, hour)


def line(name: str, scores: dict, extra: str = "") -> str:
    """One printed row: the headline metrics of ``scores``, then ``extra``."""
    return f"  {name:<22} " + " / ".join(f"{scores[m]:.3f}" for m in HEADLINE_METRICS) + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", action="append", type=fold, required=True, help="held_out:hour, e.g. porto:morning")
    parser.add_argument("--schedule", action="append", type=schedule, required=True, help="steps:lr")
    parser.add_argument("--baseline", action="append", default=[], help="a baseline method to print beside")
    parser.add_argument("--seed", type=int, default=1, help="training seed (generation uses seed + 100)")
    args = parser.parse_args()
    threads = configure_torch_threads()
    print(f"machine: {cpu_model()}; torch threads {threads}; load average {load_average()}")
    world, settings = demo_world(), LocoSettings(seeds=(0,), nemd_method="coarse")
    print("WErr / NEMD / SSIM / PSNR / HEMD; hotspots per generated service map; training seconds")
    for held_out_fold in args.fold:
        held_out, hour = held_out_fold.held_out, held_out_fold.hour
        reference = prepare_fold(world, held_out_fold, settings)
        real = real_snapshots(world, held_out, hour)
        contexts = {c: world.context(c) for c in reference.training_cities}
        traffic = {c: world.snapshots(c, hour) for c in reference.training_cities}
        print(f"{held_out}, {hour}: real hotspots {hotspot_counts(real).mean():.1f}")
        print(line("data", reference.scores))
        runs = [(f"appshot {steps}:{lr:g}", steps, lr) for steps, lr in args.schedule]
        runs += [(name, None, None) for name in args.baseline]
        for name, steps, lr in runs:
            started = time.perf_counter()
            if steps is None:
                fitted = train_method(name, contexts, traffic, reference.attributes, reference.normalisation, hour,
                                      seed=args.seed)
                samples = generate_method(fitted, world.context(held_out), settings.samples, args.seed + 100)
            else:
                model = train_peak_hour_model(contexts, traffic, list(reference.attributes),
                                              dict(reference.normalisation), ModelConfig(),
                                              TrainConfig(steps=steps, lr_g=lr, lr_d=lr, seed=args.seed), hour=hour)
                samples = generate_appshot_variant(model, world.context(held_out), settings.samples, args.seed + 100)
            seconds = time.perf_counter() - started
            scores = score(real, samples, emd_cache=dict(reference.denominators), **settings.score_options())
            print(line(name, scores, f"  hotspots {hotspot_counts(samples).mean():.1f}  {seconds:.0f} s"), flush=True)


if __name__ == "__main__":
    main()
