"""Cities with context but no traffic (SpectraGAN's Dresden): trained on every city of the world that has
traffic, generated from the context alone, shown as maps (nothing to score them against)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from appshot_model.core.plots import map_grid_png
from appshot_model.evaluation.baselines import Budget, generate_method, train_method
from appshot_model.evaluation.folds import fold_inputs
from appshot_model.evaluation.worlds import ArrayWorld

#: Spearman threshold of the attribute selection (as in the evaluation's folds).
SPEARMAN_THRESHOLD = 0.05


@dataclass(frozen=True)
class UnseenCity:
    """Generated snapshots ``[sample, service, y, x]`` (traffic units) of a context-only city at one hour."""

    city: str
    hour: str
    context: xr.DataArray
    samples: np.ndarray
    training_cities: tuple[str, ...]

    def figure(self, world: str) -> bytes:
        """PNG: the population layer, two generated samples and the mean over samples of the total traffic."""
        total = self.samples.sum(axis=1)
        population = self.context.sel(attribute="population").values
        title = (f"{world}: {self.city} (context only), {self.hour} peak: AppShot trained on "
                 f"{', '.join(self.training_cities)}; generated traffic is SYNTHETIC")
        return map_grid_png({self.city: [population, total[0], total[1], total.mean(axis=0)]},
                            ["population (context)", "sample 0", "sample 1", f"mean of {len(total)} samples"],
                            title=title, shared_scale_per_column=False)


def generate_unseen(world: ArrayWorld, city: str, hour: str, seed: int = 0, samples: int = 10,
                    budget: Budget | None = None) -> UnseenCity:
    """Train AppShot (``budget``: default settings when None; ``seed``) on every city of ``world`` with traffic
    at ``hour`` and generate ``samples`` snapshots of the context-only ``city``."""
    context = world.unseen_context(city)
    snapshots = {c: world.snapshots(c, hour) for c in world.cities}
    contexts = {c: world.context(c) for c in world.cities}
    attributes, normalisation = fold_inputs(contexts, snapshots, list(world.cities), SPEARMAN_THRESHOLD)
    fitted = train_method("appshot", contexts, snapshots, attributes, normalisation, hour, seed=seed, budget=budget)
    return UnseenCity(city, hour, context, generate_method(fitted, context, samples, seed + 1), world.cities)
