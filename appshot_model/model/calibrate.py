"""Noise calibration after training (beyond the paper; ``ModelConfig.calibrate_noise``, ablation
``appshot_uncalibrated_noise``).

Adversarial training at the default budget leaves the global noise too strong: measured on the demo models,
generated city totals varied 1.4-3.8x more from sample to sample than real weekdays (``z`` moves every cell
of a snapshot together, and no discriminator sees a whole city). After training, ``z`` is multiplied by one
scalar ``z_scale`` chosen on the training cities so that the spread (std / mean over snapshots) of city
totals matches the real weekdays': the mean over training cities of ``log(generated / real)`` = 0, solved by
secant steps in ``log2(z_scale)`` with the same noise draws at every trial. Changing the noise moves the mean
through the non-linearities, so at every trial each service's output bias is shifted (in logit space, by
Newton steps) until the mean generated level over the training cells equals the real one.

The spatial noise field keeps its trained strength: matching the real per-cell variation as well (median
coefficient of variation ~0.4 on the demo world, ~0.09 generated) needed fields x8 and more, which broke the
maps (HEMD 20, PSNR 22 dB on a held-out city; docs/model.md). Both statistics are recorded.

``z`` enters FiLM's 1x1 convolutions (or the concatenated inputs) linearly, so the scale is folded into the
generator's weights (:meth:`Generator.scale_noise`) and the shifts into its output bias: every generation
path (in memory, chunked, hourly series) uses them without knowing. Statistics are computed on a central
window of at most :data:`WINDOW` x :data:`WINDOW` cells per city, the same for real and generated snapshots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from appshot_model.core.seeds import derive_seed
from appshot_model.model.config import ModelConfig
from appshot_model.model.networks import Generator
from appshot_model.model.noise import noise_field
from appshot_model.model.patches import pad_context

#: Side (cells) of the largest window per city the statistics are computed on.
WINDOW = 64
#: Generated snapshots per training city and trial.
SAMPLES = 24
#: Training entries (cities; or city x hour x day type of an hour-conditioned model) calibrated on at most: a seeded
#: subset beyond (a conditioned model has 240 entries on the demo world: ~400 s for all, measured).
MAX_ENTRIES = 24
#: Cells whose mean is below this fraction of the window's mean cell do not enter the per-cell variation.
INHABITED_FRACTION = 0.1
#: Search range of log2(z_scale), trials at most, and the tolerance on the mean log ratio of the spreads.
LOG2_RANGE = (-7.0, 3.0)
TRIALS = 6
TOLERANCE = 0.03
#: Newton steps of the level shifts.
NEWTON_STEPS = 6


@dataclass(frozen=True)
class NoiseCalibration:
    """The scale and shifts folded into the generator and the statistics they were chosen on (means over cities)."""

    z_scale: float
    level_shift: list[float]        # logit shift of each service's output bias
    real_spread: float              # std / mean of real city totals over weekdays
    generated_spread: float         # the same over generated snapshots, after calibration
    uncalibrated_spread: float      # ... and before
    real_cell_cv: float             # median per-cell coefficient of variation (city total removed)
    generated_cell_cv: float
    uncalibrated_cell_cv: float

    def to_dict(self) -> dict:
        return asdict(self)


def variation(totals: np.ndarray) -> tuple[float, float]:
    """``(spread of the window totals, median per-cell CV)`` of snapshots ``totals [n, H, W]`` (traffic units)."""
    sums = totals.sum(axis=(1, 2), dtype=np.float64)
    spread = float(sums.std(ddof=1) / sums.mean()) if sums.mean() > 0 else 0.0
    rescaled = totals * (sums.mean() / np.where(sums > 0, sums, 1.0))[:, None, None]
    mean = rescaled.mean(axis=0)
    inhabited = mean >= INHABITED_FRACTION * mean.mean()
    if not inhabited.any():
        return spread, 0.0
    cell_cv = float(np.median(rescaled.std(axis=0, ddof=1)[inhabited] / mean[inhabited]))
    return spread, cell_cv


def central_window(height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns of the central window of at most :data:`WINDOW` x :data:`WINDOW` cells."""
    top, left = max(0, (height - WINDOW) // 2), max(0, (width - WINDOW) // 2)
    return slice(top, top + min(height, WINDOW)), slice(left, left + min(width, WINDOW))


def context_window(context: np.ndarray, cfg: ModelConfig, rows: slice, cols: slice) -> np.ndarray:
    """The normalised context ``[K, H, W]`` of the traffic cells ``rows x cols`` with the first kernel's halo
    (edge-padded as for generation): ``[K, h + k - 1, w + k - 1]`` float32."""
    padded = pad_context(np.asarray(context, np.float32), cfg.first_kernel)
    halo = cfg.first_kernel - 1
    return np.ascontiguousarray(padded[:, rows.start:rows.stop + halo, cols.start:cols.stop + halo])


def window_features(gen: Generator, window: np.ndarray) -> torch.Tensor:
    """The generator's first-layer features ``[1, 8F, h, w]`` of a :func:`context_window` (eval mode)."""
    with torch.inference_mode():
        return gen.features(torch.from_numpy(window)[None])


class _CityTrials:
    """One training city's window: first-layer features (computed once), fixed noise draws and real targets."""

    def __init__(self, gen: Generator, context: np.ndarray, traffic: np.ndarray, weights: np.ndarray,
                 cfg: ModelConfig, noise: torch.Generator) -> None:
        rows, cols = central_window(*traffic.shape[-2:])
        self.features = window_features(gen, context_window(context, cfg, rows, cols))
        self.weights = weights
        real = np.asarray(traffic[:, :, rows, cols], np.float64)
        self.real = variation(np.tensordot(real, weights, axes=([1], [0])))
        self.real_level = real.mean(axis=(0, 2, 3))
        height, width = self.features.shape[-2:]
        self.z = torch.randn(SAMPLES, cfg.nz, generator=noise)
        self.field = (noise_field(noise, SAMPLES, cfg.field_channels, height, width, cfg.noise_correlation_cells)
                      if cfg.field_channels else None)

    def generate(self, gen: Generator, z_scale: float) -> torch.Tensor:
        """Normalised snapshots ``[SAMPLES, S, h, w]`` with ``z`` scaled."""
        with torch.inference_mode():
            return gen.head(self.features.expand(SAMPLES, -1, -1, -1), self.z * z_scale, self.field)


def level_shifts(logits: list[torch.Tensor], targets: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Logit shift per service making the cell-weighted mean of ``sigmoid(logits + shift)`` over the cities
    equal ``targets [S]`` (Newton steps on a monotone function)."""
    shifts = np.zeros(len(targets))
    for _ in range(NEWTON_STEPS):
        levels, slopes = np.zeros(len(targets)), np.zeros(len(targets))
        for lg, w in zip(logits, cells / cells.sum(), strict=True):
            values = torch.sigmoid(lg + torch.as_tensor(shifts)[None, :, None, None])
            levels += w * values.mean(dim=(0, 2, 3)).numpy()
            slopes += w * (values * (1 - values)).mean(dim=(0, 2, 3)).numpy()
        shifts -= np.clip((levels - targets) / np.maximum(slopes, 1e-12), -2.0, 2.0)
    return shifts


class _Trials:
    """Generated statistics of the training cities as a function of ``z_scale`` (output levels restored)."""

    def __init__(self, cities: list[_CityTrials], gen: Generator) -> None:
        self.cities, self.gen = cities, gen
        self.cells = np.array([c.features.shape[-1] * c.features.shape[-2] for c in cities], np.float64)
        self.targets = np.average([c.real_level for c in cities], axis=0, weights=self.cells)

    def run(self, z_scale: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """``(level shifts [S], [(spread, cell CV)] per city)`` at ``z_scale``."""
        logits = [torch.logit(c.generate(self.gen, z_scale).double(), eps=1e-7) for c in self.cities]
        shifts = level_shifts(logits, self.targets, self.cells)
        stats = [variation(np.tensordot(torch.sigmoid(lg + torch.as_tensor(shifts)[None, :, None, None]).numpy(),
                                        c.weights, axes=([1], [0])))
                 for lg, c in zip(logits, self.cities, strict=True)]
        return shifts, stats

    def log_ratio(self, stats: list[tuple[float, float]]) -> float:
        """Mean over cities of ``log(generated spread / real spread)`` for generated ``stats`` of :meth:`run`."""
        return float(np.mean([np.log(max(g[0], 1e-12) / max(c.real[0], 1e-12))
                              for g, c in zip(stats, self.cities, strict=True)]))

    def spread_log_ratio(self, z_scale: float) -> float:
        """:meth:`log_ratio` at ``z_scale``."""
        return self.log_ratio(self.run(z_scale)[1])


def _solve(objective, at_one: float) -> float:
    """Scale ``2^x`` with ``objective(2^x)`` ~ 0, ``objective`` increasing in ``x`` (a log ratio; ``at_one``: its
    value at scale 1, already known): secant steps in ``x`` from 0 (the first assumes ratio proportional to the
    scale), clamped to :data:`LOG2_RANGE`, at most :data:`TRIALS` evaluations, stopping within :data:`TOLERANCE`;
    the best trial wins."""
    low, high = LOG2_RANGE
    xs, fs = [0.0], [at_one]
    x = float(np.clip(-fs[0] / np.log(2.0), low, high))
    while len(xs) < TRIALS and abs(fs[-1]) > TOLERANCE and x not in xs:
        xs.append(x)
        fs.append(objective(2.0 ** x))
        slope = (fs[-1] - fs[-2]) / (xs[-1] - xs[-2])
        if slope <= 0:  # flat or noisy: the scale does not move the statistic any more
            break
        x = float(np.clip(xs[-1] - fs[-1] / slope, low, high))
    return 2.0 ** xs[int(np.argmin(np.abs(fs)))]


def calibrate_noise(gen: Generator, contexts: list[np.ndarray], traffic: list[np.ndarray],
                    service_weights: np.ndarray, cfg: ModelConfig, seed: int) -> NoiseCalibration:
    """Choose and fold in the ``z`` scale and level shifts of the module doc, on normalised training
    ``contexts [K, H, W]`` and ``traffic [T, S, H, W]`` per city (``service_weights``: normalised -> traffic
    units, up to one constant). ``gen`` (CPU, eval mode) is modified in place."""
    gen.eval()
    noise = torch.Generator().manual_seed(derive_seed(seed, "noise calibration"))
    if len(contexts) > MAX_ENTRIES:
        pick = np.sort(np.random.default_rng(derive_seed(seed, "noise calibration", "entries"))
                       .choice(len(contexts), MAX_ENTRIES, replace=False))
        contexts, traffic = [contexts[i] for i in pick], [traffic[i] for i in pick]
    weights = np.asarray(service_weights, np.float64)
    trials = _Trials([_CityTrials(gen, c, t, weights, cfg, noise) for c, t in zip(contexts, traffic, strict=True)],
                     gen)
    _, before = trials.run(1.0)
    z_scale = _solve(trials.spread_log_ratio, trials.log_ratio(before))
    shifts, after = trials.run(z_scale)
    gen.scale_noise(z_scale)
    with torch.no_grad():
        gen.out.bias.add_(torch.as_tensor(shifts, dtype=gen.out.bias.dtype))
    real = [c.real for c in trials.cities]

    def mean(stats: list[tuple[float, float]], k: int) -> float:
        return float(np.mean([s[k] for s in stats]))

    return NoiseCalibration(z_scale=float(z_scale), level_shift=[float(s) for s in shifts],
                            real_spread=mean(real, 0), generated_spread=mean(after, 0),
                            uncalibrated_spread=mean(before, 0), real_cell_cv=mean(real, 1),
                            generated_cell_cv=mean(after, 1), uncalibrated_cell_cv=mean(before, 1))
