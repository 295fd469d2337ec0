"""Adversarial training of the AppShot generator (§V-C2), on tiles.

The generator is a ``k x k`` convolution followed by 1x1 convolutions, so applied to a context tile of
``(t + k - 1)^2`` cells it returns the ``t x t`` traffic cells of every overlapping (stride-1) patch of
the tile at once, as if each patch had been generated separately with the same noise. Every step draws
a batch of tiles (any training city, any tile position, any weekday), then

- draws ``noise_draws`` noise vectors per tile and generates the tile that many times;
- updates the discriminators once on (real tile, one generated tile):
  D1 (individual quality) sees the S service channels with the context under the tile, D2 (sum
  quality) the total traffic with the context. Services are normalised separately, so the total is
  rebuilt in traffic units before being judged: sum_s w_s x_s with w_s proportional to max_s. Both see
  traffic in units of its mean level over the training cells (each service divided by its mean
  normalised level, the total by its mean): normalised traffic is mostly far below 1 (divided by the
  largest cell), and on that scale the discriminators stayed at chance (loss ln 2) throughout training;
- updates the generator once on adv(D1) + adv(D2) + lambda * L1, where the L1 is between the
  conditional means of §V-C2: the mean of the tile's real traffic over the training weekdays (a city's
  context is the same every day, so that is the real conditional mean) and the mean of the generated
  draws (``l1_target="sample"`` keeps the per-sample L1 against one real day as an ablation).

Losses are the standard non-saturating GAN losses with logits. Optimiser (not given by the paper): Adam
for G and for the discriminators, betas (0.5, 0.999). After the last step the batch-norm running
statistics are re-estimated on the final weights. Runs are deterministic on CPU for a seed.
With ``noise_scope="patch"`` (the per-patch noise of the original implementation, and the ablations
that need it) the tile is one traffic patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf
from tqdm.auto import tqdm

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.core.threads import configure_torch_threads
from appshot_model.model.checkpoint import TrainingCheckpoint
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.networks import Discriminator, Generator, build_networks, crop_context
from appshot_model.model.noise import draw_noise
from appshot_model.model.patches import check_map_size, pad_context, patch_origins

HISTORY_KEYS = ("g_adv_d1", "g_adv_d2", "g_l1", "d1", "d2")
#: Environment variable overriding the torch thread count.
@dataclass
class TileBatch:
    """Context tiles ``[B, K, t + k - 1, t + k - 1]``, real traffic tiles of one day ``[B, S, t, t]`` and the
    real conditional mean (over the training days) under each tile ``[B, S, t, t]``."""

    context: torch.Tensor
    real: torch.Tensor
    mean: torch.Tensor


class PatchSampler:
    """Uniform random (city, snapshot, tile position) samples, gathered as tensors on a device.

    ``tile`` is the traffic side of a sample (default: the model's patch). Positions run over the
    model's patch stride grid (stride 1, or the patch size without overlap); a city narrower than the
    tile is refused."""

    def __init__(self, contexts: list[np.ndarray], traffic: list[np.ndarray], model_cfg: ModelConfig,
                 device: torch.device, seed: int, tile: int | None = None) -> None:
        self.size = int(tile or model_cfg.traffic_patch)
        self.kernel = model_cfg.first_kernel
        self.contexts, self.traffic, self.means, self.origins = [], [], [], []
        counts = []
        for i, (ctx, tr) in enumerate(zip(contexts, traffic, strict=True)):
            height, width = tr.shape[-2:]
            if ctx.shape[-2:] != (height, width):
                raise AppshotInputError(f"training city {i}: context is {ctx.shape[-2:]}, traffic is {(height, width)}")
            check_map_size(height, width, self.size, self.kernel, what=f"training city {i}")
            self.contexts.append(torch.from_numpy(pad_context(np.asarray(ctx, np.float32), self.kernel)).to(device))
            self.traffic.append(torch.from_numpy(np.asarray(tr, np.float32)).to(device))
            self.means.append(torch.from_numpy(np.asarray(tr, np.float64).mean(axis=0).astype(np.float32)).to(device))
            stride = model_cfg.stride if self.size == model_cfg.traffic_patch else 1
            rows, cols = patch_origins(height, self.size, stride), patch_origins(width, self.size, stride)
            self.origins.append((rows, cols))
            counts.append(tr.shape[0] * len(rows) * len(cols))
        self.bounds = np.cumsum(counts)
        self.device = device
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> TileBatch:
        """A batch of ``batch`` tiles (with replacement)."""
        flat = self.rng.integers(0, self.bounds[-1], size=batch)
        city = np.searchsorted(self.bounds, flat, side="right")
        parts, order = [], []
        for c in np.unique(city):
            members = np.nonzero(city == c)[0]
            rows, cols = self.origins[c]
            local = flat[members] - (self.bounds[c - 1] if c else 0)
            t, rest = np.divmod(local, len(rows) * len(cols))
            parts.append(self._gather(c, t, rows[rest // len(cols)], cols[rest % len(cols)]))
            order.append(members)
        inverse = torch.from_numpy(np.argsort(np.concatenate(order))).to(self.device)
        return TileBatch(*(torch.cat([p[i] for p in parts])[inverse].contiguous() for i in range(3)))

    def _gather(self, city: int, days: np.ndarray, r: np.ndarray, q: np.ndarray
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Context, real and mean tiles of one city at origins ``(r, q)`` on ``days``."""
        span_c, span_x = np.arange(self.size + self.kernel - 1), np.arange(self.size)
        rc = torch.from_numpy(r[:, None, None] + span_c[None, :, None]).to(self.device)
        cc = torch.from_numpy(q[:, None, None] + span_c[None, None, :]).to(self.device)
        rx = torch.from_numpy(r[:, None, None] + span_x[None, :, None]).to(self.device)
        cx = torch.from_numpy(q[:, None, None] + span_x[None, None, :]).to(self.device)
        tt = torch.from_numpy(days[:, None, None]).to(self.device)
        context = self.contexts[city][:, rc, cc].permute(1, 0, 2, 3)        # [b, K, t + k - 1, ...]
        real = self.traffic[city][tt, :, rx, cx].permute(0, 3, 1, 2)         # [b, S, t, t]
        mean = self.means[city][:, rx, cx].permute(1, 0, 2, 3)               # [b, S, t, t]
        return context, real, mean


def service_mean_levels(traffic: list[np.ndarray]) -> np.ndarray:
    """Mean normalised traffic per service over all training cells and snapshots ``[S]``."""
    sums = sum(t.sum(axis=(0, 2, 3), dtype=np.float64) for t in traffic)
    cells = sum(t.shape[0] * t.shape[2] * t.shape[3] for t in traffic)
    return (sums / cells).astype(np.float32)


def init_output_bias(layer: nn.Module, levels: np.ndarray) -> None:
    """Start a sigmoid output layer at each service's mean level ``levels [S]`` (instead of 0.5, far above
    most cells once traffic is divided by its maximum)."""
    with torch.no_grad():
        layer.bias.copy_(torch.logit(torch.as_tensor(levels).clamp(1e-4, 1 - 1e-4)))


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Non-saturating GAN loss: binary cross-entropy of discriminator logits against "real" or "fake"."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return nnf.binary_cross_entropy_with_logits(logits, target)


def tile_size(traffic: list[np.ndarray], model_cfg: ModelConfig, train_cfg: TrainConfig) -> int:
    """The training tile side: ``train_cfg.tile`` cells, no larger than the smallest training city, and the
    traffic patch itself when the noise is drawn per patch."""
    if model_cfg.noise_scope == "patch":
        return model_cfg.traffic_patch
    smallest = min(min(t.shape[-2:]) for t in traffic)
    return max(model_cfg.traffic_patch, min(train_cfg.tile, smallest))


def tiles_per_step(tile: int, model_cfg: ModelConfig, train_cfg: TrainConfig) -> int:
    """Tiles per step: ``batch_size`` tiles of ``train_cfg.tile`` cells a side, counted by area when a small
    training city shrinks the tile, so a step sees about ``batch_size * tile^2`` traffic cells whatever the
    cities' size (per-patch noise: ``batch_size`` patches). On the SpectraGAN world (3 seeds, both directions,
    three hours) AppShot's mean scores barely moved (WErr 0.155 -> 0.153, HEMD 3.18 -> 3.08) at 1.8x the CPU:
    the budget is now defined the same way for every city size, not a fidelity gain (docs/evaluation.md)."""
    if model_cfg.noise_scope == "patch" or tile >= train_cfg.tile:
        return train_cfg.batch_size
    return max(train_cfg.batch_size, round(train_cfg.batch_size * train_cfg.tile ** 2 / tile ** 2))


class GanStep:
    """One optimisation step of the generator and its discriminators (the losses of the module doc)."""

    def __init__(self, gen: Generator, discs: dict[str, Discriminator], service_weights: np.ndarray,
                 levels: np.ndarray, model_cfg: ModelConfig, train_cfg: TrainConfig, device: torch.device) -> None:
        self.gen, self.discs, self.model_cfg, self.train_cfg = gen, discs, model_cfg, train_cfg
        weights = np.asarray(service_weights, np.float64)
        levels = np.asarray(levels, np.float64)
        # the discriminators see traffic in units of its mean level (normalised traffic is mostly far below 1)
        self.level_scale = torch.as_tensor(1.0 / levels, dtype=torch.float32, device=device)[None, :, None, None]
        self.weights = torch.as_tensor(weights / float(weights @ levels), dtype=torch.float32,
                                       device=device)[None, :, None, None]
        self.opt_g = torch.optim.Adam(gen.parameters(), lr=train_cfg.lr_g, betas=train_cfg.betas)
        self.opt_d = (torch.optim.Adam([p for d in discs.values() for p in d.parameters()], lr=train_cfg.lr_d,
                                       betas=train_cfg.betas) if discs else None)

    def _freeze_discriminators(self, frozen: bool) -> None:
        for disc in self.discs.values():
            disc.requires_grad_(not frozen)

    def view(self, name: str, traffic: torch.Tensor) -> torch.Tensor:
        """What discriminator ``name`` judges: the service channels (d1) or the total (d2)."""
        if name == "d1":
            return traffic * self.level_scale
        return (traffic * self.weights).sum(dim=1, keepdim=True)

    def __call__(self, batch: TileBatch, noise: torch.Generator) -> dict[str, float]:
        draws = self.train_cfg.noise_draws if self.model_cfg.l1_target == "mean" else 1
        n, side = batch.real.shape[0], batch.real.shape[-1]
        z, field = draw_noise(noise, self.model_cfg, draws * n, side, side, batch.real.device)
        fake = self.gen(batch.context.repeat(draws, 1, 1, 1), z, field)          # draw-major [draws * B, S, t, t]
        under = crop_context(batch.context, self.model_cfg)
        losses: dict[str, float] = {}
        if self.opt_d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            d_losses = {name: 0.5 * (adversarial_loss(d(self.view(name, batch.real), under), True)
                                     + adversarial_loss(d(self.view(name, fake[:n].detach()), under), False))
                        for name, d in self.discs.items()}
            sum(d_losses.values()).backward()
            self.opt_d.step()
            losses.update({name: float(v.detach()) for name, v in d_losses.items()})
        self.opt_g.zero_grad(set_to_none=True)
        under_all = under.repeat(draws, 1, 1, 1)
        self._freeze_discriminators(True)  # the generator's loss needs no gradient of D's weights
        g_adv = {name: adversarial_loss(d(self.view(name, fake), under_all), True) for name, d in self.discs.items()}
        target = batch.mean if self.model_cfg.l1_target == "mean" else batch.real
        g_l1 = (fake.view(draws, n, *fake.shape[1:]).mean(dim=0) - target).abs()
        g_l1 = (g_l1 * self.level_scale if self.model_cfg.l1_units == "level" else g_l1).mean()
        (sum(g_adv.values()) + self.model_cfg.l1_weight * g_l1).backward()
        self._freeze_discriminators(False)
        self.opt_g.step()
        losses.update({f"g_adv_{name}": float(v.detach()) for name, v in g_adv.items()})
        losses["g_l1"] = float(g_l1.detach())
        return losses


@torch.no_grad()
def recalibrate_batch_norm(gen: Generator, sampler: PatchSampler, train_cfg: TrainConfig, model_cfg: ModelConfig,
                           noise: torch.Generator) -> None:
    """Re-estimate every batch-norm layer's running mean and variance on the final weights (cumulative
    average over ``bn_batches`` training batches; weights untouched)."""
    layers = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    if not layers or train_cfg.bn_batches == 0:
        return
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    gen.train()
    for _ in range(train_cfg.bn_batches):
        batch = sampler.sample(tiles_per_step(sampler.size, model_cfg, train_cfg))
        side = batch.real.shape[-1]
        gen(batch.context, *draw_noise(noise, model_cfg, batch.real.shape[0], side, side, batch.real.device))
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum


def _training_state(step: int, gen: Generator, discs: dict[str, Discriminator], step_fn: GanStep,
                    sampler: PatchSampler, noise: torch.Generator, history: dict[str, list[float]]) -> dict:
    """What a checkpoint holds after ``step`` steps."""
    return {"step": step, "generator": gen.state_dict(), "discriminators": {n: d.state_dict() for n, d in discs.items()},
            "opt_g": step_fn.opt_g.state_dict(), "opt_d": step_fn.opt_d.state_dict() if step_fn.opt_d else None,
            "sampler_rng": sampler.rng.bit_generator.state, "noise_rng": noise.get_state(),
            "torch_rng": torch.get_rng_state(), "history": history}


def _restore(state: dict, gen: Generator, discs: dict[str, Discriminator], step_fn: GanStep, sampler: PatchSampler,
             noise: torch.Generator, history: dict[str, list[float]]) -> int:
    """Load a checkpoint's state into the training objects; returns the step it was taken at."""
    gen.load_state_dict(state["generator"])
    for name, disc in discs.items():
        disc.load_state_dict(state["discriminators"][name])
    step_fn.opt_g.load_state_dict(state["opt_g"])
    if step_fn.opt_d is not None:
        step_fn.opt_d.load_state_dict(state["opt_d"])
    sampler.rng.bit_generator.state = state["sampler_rng"]
    noise.set_state(state["noise_rng"])
    torch.set_rng_state(state["torch_rng"])
    history.update({k: list(v) for k, v in state["history"].items()})
    return int(state["step"])


def train_gan(contexts: list[np.ndarray], traffic: list[np.ndarray], service_weights: np.ndarray,
              model_cfg: ModelConfig, train_cfg: TrainConfig, progress: bool = False,
              log: Callable[[str], None] | None = None, checkpoint: TrainingCheckpoint | None = None
              ) -> tuple[Generator, dict[str, Discriminator], dict[str, list[float]]]:
    """Train on normalised ``contexts [K, H, W]`` and ``traffic [T, S, H, W]`` per city.

    Returns the generator (CPU, eval mode), the trained discriminators and the per-step loss
    history (keys :data:`HISTORY_KEYS`; a switched-off discriminator leaves its lists empty). With a
    ``checkpoint`` the run is saved every few steps and, when a checkpoint of the same inputs exists,
    continues from it (the result equals an uninterrupted run on the same device and thread count).
    """
    device = train_cfg.resolved_device()
    if device.type == "cpu":
        configure_torch_threads()
    n_attributes, n_services = contexts[0].shape[0], traffic[0].shape[1]
    sampler = PatchSampler(contexts, traffic, model_cfg, device, derive_seed(train_cfg.seed, "patches"),
                           tile=tile_size(traffic, model_cfg, train_cfg))
    history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(train_cfg.seed)
        noise = torch.Generator(device=device).manual_seed(derive_seed(train_cfg.seed, "noise"))
        gen, d1, d2 = build_networks(n_attributes, n_services, model_cfg)
        levels = service_mean_levels(traffic)
        init_output_bias(gen.out, levels)
        discs = {name: d.to(device) for name, d in (("d1", d1), ("d2", d2)) if d is not None}
        gen.to(device).train()
        step_fn = GanStep(gen, discs, service_weights, levels, model_cfg, train_cfg, device)
        state = checkpoint.load() if checkpoint is not None else None
        start = _restore(state, gen, discs, step_fn, sampler, noise, history) if state else 0
        if start and log is not None:
            log(f"resuming from the checkpoint at step {start}/{train_cfg.steps} ({checkpoint.path})")
        tiles = tiles_per_step(sampler.size, model_cfg, train_cfg)
        bar = tqdm(range(start, train_cfg.steps), desc="training AppShot", disable=not progress, leave=False)
        for step in bar:
            for key, value in step_fn(sampler.sample(tiles), noise).items():
                history[key].append(value)
            if (step + 1) % train_cfg.log_every == 0 or step + 1 == train_cfg.steps:
                summary = ", ".join(f"{k}={np.mean(v[-train_cfg.log_every:]):.4f}" for k, v in history.items() if v)
                bar.set_postfix_str(summary)
                if log is not None:
                    log(f"step {step + 1}/{train_cfg.steps} (mean of the last {train_cfg.log_every}): {summary}")
            if checkpoint is not None and checkpoint.due(step + 1, train_cfg.steps):
                checkpoint.save(_training_state(step + 1, gen, discs, step_fn, sampler, noise, history))
        recalibrate_batch_norm(gen, sampler, train_cfg, model_cfg, noise)
    return gen.cpu().eval(), {name: d.cpu().eval() for name, d in discs.items()}, history
