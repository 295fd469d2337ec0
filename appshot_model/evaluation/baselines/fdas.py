"""FDaS, "fit distribution and sample" (paper §VI-B, after its ref. [19]).

Per service, a log-normal distribution is fitted by maximum likelihood to the cell values of all
training cities' weekday snapshots (traffic units): ``mu`` and ``sigma`` are the mean and the
(ddof = 0) standard deviation of ``log(x)`` over the cells that carry traffic. Empty cells cannot
come from a log-normal, so their fraction ``p0`` is kept as a point mass at zero (a zero-inflated
log-normal). "Empty" means below :data:`EMPTY_FRACTION` of the service's mean cell value, not just
zero: land without people carries next-to-nothing (1e-5 of the mean) rather than exactly 0, and
fitted together with the inhabited cells those values stretched ``sigma`` to ~3.7 on the demo world,
so the fitted distribution's mean was ~20x the data's (WErr ~1900 %). With the floor it is ~1.6x.
A synthetic snapshot draws every cell of every service independently: 0 with probability ``p0``,
else ``exp(mu + sigma N)``.
The context is ignored except for the grid size: the method knows nothing about space, which is
the limitation the paper points out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appshot_model.evaluation.baselines.common import TrainingData

#: Cells below this fraction of a service's mean cell value count as empty (the zero point mass).
EMPTY_FRACTION = 0.01


@dataclass
class FDaSModel:
    """Fitted per-service zero-inflated log-normal parameters."""

    services: list[str]
    mu: np.ndarray
    sigma: np.ndarray
    p_zero: np.ndarray

    def as_dict(self) -> dict:
        return {s: {"mu": float(m), "sigma": float(g), "p_zero": float(p)}
                for s, m, g, p in zip(self.services, self.mu, self.sigma, self.p_zero, strict=True)}


def fit_fdas(data: TrainingData) -> FDaSModel:
    """Maximum-likelihood log-normal per service over all training cells and snapshots."""
    n_services = len(data.normalisation.services)
    mu, sigma, p_zero = np.zeros(n_services), np.zeros(n_services), np.zeros(n_services)
    for s in range(n_services):
        values = np.concatenate([t[:, s].ravel() for t in data.traffic]).astype(np.float64)
        positive = values[values > max(EMPTY_FRACTION * values.mean(), 0.0)]
        p_zero[s] = 1.0 - positive.size / values.size
        if positive.size:
            logs = np.log(positive)
            mu[s], sigma[s] = logs.mean(), logs.std()
        else:
            p_zero[s] = 1.0
    return FDaSModel(list(data.normalisation.services), mu, sigma, p_zero)


def sample_fdas(model: FDaSModel, height: int, width: int, n_samples: int, seed: int) -> np.ndarray:
    """``[n, S, H, W]`` float32 i.i.d. cell values; the same seed gives the same array."""
    rng = np.random.default_rng(seed)
    shape = (n_samples, len(model.services), height, width)
    values = np.exp(model.mu[None, :, None, None] + model.sigma[None, :, None, None] * rng.standard_normal(shape))
    zero = rng.random(shape) < model.p_zero[None, :, None, None]
    values[zero] = 0.0
    return values.astype(np.float32)
