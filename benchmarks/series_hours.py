"""What the series calibration costs single hours: a held-out demo city's weekday maps at a few hours of a
stitched series, with and without the calibration, scored like snapshots against the real ones.

The hour-conditioned model of ``benchmarks/hourly_appshot.py`` (``--model``, a cached model folder, e.g.
``/tmp/appshot-hourly-cache/liege-f16-s300-seed0/conditioned-s1200``) generates the held-out city's whole
period (demo world, seed ``--seed``, ``--days`` days) twice with the same noise (``--noise-seed``, AR(1)
``--rho``): calibrated (context neighbours), calibrated with level-bin shapes, and not. For each ``--hours`` hour, the real weekday maps against the generated ones
at the same time stamps (``appshot_model.evaluation.metrics.score``, paired: each real day with the generated
one of the same date). Prints the machine and a table; nothing is written. Run from the repository root::

    APPSHOT_TORCH_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/series_hours.py --model <folder>
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import pandas as pd
import torch
from machine import cpu_model, load_average  # noqa: E402  (benchmarks/ is the script's folder)

from appshot_model.evaluation.metrics import score
from appshot_model.model.artefact import ModelArtefact
from appshot_model.series.stitched import generate_hourly_series
from appshot_model.traffic.peaks import hour_snapshots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="hour-conditioned model folder")
    parser.add_argument("--held-out", default="liege")
    parser.add_argument("--seed", type=int, default=0, help="demo world seed")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--noise-seed", type=int, default=1)
    parser.add_argument("--rho", type=float, default=0.4)
    parser.add_argument("--hours", type=int, nargs="+", default=[3, 8, 17])
    args = parser.parse_args(argv)
    from appshot_model.traffic.demo import DEMO_CITIES, simulate_context, simulate_traffic

    print(f"machine: {cpu_model()}, {os.cpu_count()} cpus, affinity {len(os.sched_getaffinity(0))}, "
          f"load {load_average()}, python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    city = next(c for c in DEMO_CITIES if c.name == args.held_out)
    context = simulate_context(city, args.seed)
    real = simulate_traffic(city, context, args.seed, days=args.days)
    model = ModelArtefact.load(args.model)
    series = {name: generate_hourly_series(model, context, real.time.values, args.noise_seed, args.rho,
                                           calibrated=calibrated, context_neighbours=neighbours)
              for name, calibrated, neighbours in (("calibrated", True, True), ("level bins", True, False),
                                                   ("uncalibrated", False, False))}
    rows = []
    for hour in args.hours:
        snapshots = hour_snapshots(real, hour, "weekday")
        for name, cube in series.items():
            generated = cube.sel(time=snapshots.time.values).sel(service=list(snapshots.service.values))
            rows.append({"hour": hour, "series": name, **score(snapshots.values, generated.values)})
    table = pd.DataFrame(rows).set_index(["hour", "series"])
    print(f"{args.held_out}: weekday maps of {args.days} days, noise seed {args.noise_seed}, rho {args.rho}")
    print(table.round(3).to_string())
    print("calibrated - uncalibrated:\n" + (table.xs("calibrated", level=1) - table.xs("uncalibrated", level=1))
          .round(3).to_string())


if __name__ == "__main__":
    sys.exit(main())
