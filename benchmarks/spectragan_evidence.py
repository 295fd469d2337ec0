"""Evidence behind the SpectraGAN world's layout (docs/context.md, "The SpectraGAN world").

Prints: what every ``landuse_k`` / ``poi_k`` column looks like in the three cities (share of
non-zero cells / maximum, kind, mean Spearman with population), the best placements of the
traffic window in the context grid (joint cross-validated R2 over aachen and bonn, per mirror),
and the time-axis checks (daily profile and day-of-week totals on the nominal clock). Writes
``docs/figures/spectragan/columns_<city>.png`` (north-up maps of the columns the mapping relies
on) and ``docs/figures/spectragan/mean_traffic.png``. Run from the repository root::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/spectragan_evidence.py   # about 10 s
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from appshot_model.context.pregridded import spectragan_table
from appshot_model.core.plots import plt, png_bytes
from appshot_model.traffic.spectragan import (TRAFFIC_CITIES, day_of_week_totals, hour_of_day_profile,
                                              joint_alignment_scores, read_traffic, spectragan_grid)

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [f"landuse_{k}" for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)] + [f"poi_{k}" for k in range(1, 18)]
SHOWN = ["population", "landuse_1", "landuse_8", "landuse_9", "landuse_12", "poi_7", "poi_9", "poi_10",
         "poi_13", "poi_15", "poi_16", "poi_17"]


def column_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for col in COLUMNS:
        values = pd.concat([t[col] for t in tables.values()]).astype(float)
        kind = "0/1" if set(np.unique(values)) <= {0.0, 1.0} else ("count" if (values == values.round()).all() else "fraction")
        row = {"column": col, "kind": kind}
        row.update({city: f"{(t[col] > 0).mean():.1%} / {t[col].max():.3g}" for city, t in tables.items()})
        rhos = [spearmanr(t[col].astype(float), t["population"])[0] for t in tables.values() if t[col].std() > 0]
        row["spearman_population"] = round(float(np.mean(rhos)), 2) if rhos else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def column_maps(city: str, table: pd.DataFrame, shape: tuple[int, int]) -> bytes:
    fig, axes = plt.subplots(2, 6, figsize=(16, 5.6))
    for ax, col in zip(axes.ravel(), SHOWN, strict=True):
        ax.imshow(np.flipud(np.log1p(table[col].to_numpy(float).clip(0).reshape(shape))), cmap="viridis")
        ax.set_title(col, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"SpectraGAN release, {city}: log(1 + value), north up", fontsize=10)
    return png_bytes(fig)


def main() -> None:
    root = Path(os.environ.get("APPSHOT_SHARED_DATA", REPO.parent / "shared" / "data")) / "spectragan"
    out = REPO / "docs" / "figures" / "spectragan"
    out.mkdir(parents=True, exist_ok=True)
    tables = {c: spectragan_table(root / "context" / c, ["population", *COLUMNS]) for c in ("aachen", "bonn", "dresden")}
    print(column_table(tables).to_markdown(index=False))
    for city, table in tables.items():
        (out / f"columns_{city}.png").write_bytes(column_maps(city, table, spectragan_grid(root / "context" / city).shape))
    scores = joint_alignment_scores(root)
    print("\nbest placements (joint R2 over", ", ".join(TRAFFIC_CITIES), ")")
    print(scores.head(6).round(3).to_markdown(index=False))
    print("\nbest per mirror")
    print(scores.groupby(["flip_rows", "flip_cols"]).head(1).round(3).to_markdown(index=False))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, city in zip(axes, TRAFFIC_CITIES, strict=True):
        cube = read_traffic(root, city)
        print(f"\n{city}: hour-of-day profile", hour_of_day_profile(cube).round(2).tolist())
        print(f"{city}: day-of-week totals (Mon..Sun)", day_of_week_totals(cube).round(3).tolist())
        ax.imshow(np.log(cube.mean("time").values[0]), cmap="magma")
        ax.set_title(f"{city}: log mean traffic (SpectraGAN model output)", fontsize=8)
    (out / "mean_traffic.png").write_bytes(png_bytes(fig))


if __name__ == "__main__":
    sys.exit(main())
