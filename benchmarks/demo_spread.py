"""Sample-to-sample spread of generated city totals against real weekdays, per demo city and peak hour.

For each peak hour: the default AppShot model (``train_method("appshot", ...)``, noise calibrated) trained on
all six demo cities (``demo_world``, seed ``--seed``), then per city the spread (std / mean, ddof 1) of the
city total over ``--samples`` generated snapshots against the spread over the real weekdays (issue 10 asks
for a ratio within 2x). Use 100 samples or more: with 20, the generated spread of one city moved between
0.07 and 0.15 from one noise seed to the next (midday model, liege). Models are saved under ``--out/<hour>``
so that ``benchmarks/empty_land.py --model`` can read them. One torch thread. Run from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/demo_spread.py --out /tmp/demo-spread
    PYTHONPATH=. .venv/bin/python benchmarks/empty_land.py --model /tmp/demo-spread/morning \\
        --model /tmp/demo-spread/midday --model /tmp/demo-spread/evening
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

os.environ.setdefault("APPSHOT_TORCH_THREADS", "1")

from appshot_model.core.names import PEAK_HOURS  # noqa: E402
from appshot_model.evaluation.baselines import train_method  # noqa: E402
from appshot_model.evaluation.folds import fold_inputs  # noqa: E402
from appshot_model.evaluation.metrics import city_totals  # noqa: E402
from appshot_model.evaluation.worlds import demo_world  # noqa: E402
from appshot_model.model.generate import generate_snapshots  # noqa: E402


def spread(totals: np.ndarray) -> float:
    """std / mean (ddof 1) of city totals."""
    return float(totals.std(ddof=1) / totals.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", nargs="+", default=list(PEAK_HOURS))
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the trained models (one per hour)")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}; {os.cpu_count()} cpus; load average {load_average()}", flush=True)
    for hour in args.hours:
        world = demo_world(hours=[hour])
        contexts = {c: world.context(c) for c in world.cities}
        snapshots = {c: world.snapshots(c, hour) for c in world.cities}
        attributes, norm = fold_inputs(contexts, snapshots, list(world.cities), 0.05)
        started = time.perf_counter()
        model = train_method("appshot", contexts, snapshots, attributes, norm, hour, seed=args.seed).model
        model.save(args.out / hour)
        print(f"{hour}: trained in {time.perf_counter() - started:.0f} s, z x{model.noise_calibration['z_scale']:.3f}",
              flush=True)
        ratios = []
        for city in world.cities:
            real = spread(city_totals(snapshots[city].transpose("time", "service", "y", "x").values))
            generated = spread(city_totals(generate_snapshots(model, contexts[city], args.samples, seed=11).values))
            ratios.append(generated / real)
            print(f"  {city}: real {real:.4f} ({snapshots[city].sizes['time']} weekdays), generated {generated:.4f} "
                  f"({args.samples} samples), ratio {generated / real:.2f}", flush=True)
        print(f"{hour}: generated / real spread {min(ratios):.2f} .. {max(ratios):.2f}", flush=True)


if __name__ == "__main__":
    main()
