"""Adversarial training of the AppShot generator (§V-C2).

Every step draws a batch of random patches (any training city, any weekday snapshot, any
patch position on the model's stride grid), updates the discriminators once and then the
generator once. Losses are the standard non-saturating GAN losses with logits:

- D1 (individual quality) sees the S service channels with the context under the patch;
- D2 (sum quality) sees the total traffic with the context. Because services are normalised
  separately, the total is rebuilt in traffic units before being judged: sum_s w_s * x_s with
  w_s = max_s / sum(max), which is total traffic divided by a constant;
- generator loss = adv(D1) + adv(D2) + lambda * L1(generated, real); adversarial terms are
  dropped with ``use_d1`` / ``use_d2`` ("L1 only" when both are off).

Optimiser (not given by the paper): Adam for G and for the discriminators, betas (0.5, 0.999),
as is usual for conditional GANs of this size. Runs are deterministic on CPU for a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf
from tqdm.auto import tqdm

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.networks import Discriminator, Generator, build_networks, crop_context
from appshot_model.model.patches import check_map_size, pad_context, patch_origins

HISTORY_KEYS = ("g_adv_d1", "g_adv_d2", "g_l1", "d1", "d2")


class PatchSampler:
    """Uniform random (city, snapshot, patch position) samples, gathered as tensors on a device."""

    def __init__(self, contexts: list[np.ndarray], traffic: list[np.ndarray], model_cfg: ModelConfig,
                 device: torch.device, seed: int) -> None:
        self.size, self.kernel = model_cfg.traffic_patch, model_cfg.first_kernel
        self.contexts, self.traffic, self.origins = [], [], []
        counts = []
        for i, (ctx, tr) in enumerate(zip(contexts, traffic, strict=True)):
            height, width = tr.shape[-2:]
            if ctx.shape[-2:] != (height, width):
                raise AppshotInputError(f"training city {i}: context is {ctx.shape[-2:]}, traffic is {(height, width)}")
            check_map_size(height, width, self.size, self.kernel, what=f"training city {i}")
            self.contexts.append(torch.from_numpy(pad_context(np.asarray(ctx, np.float32), self.kernel)).to(device))
            self.traffic.append(torch.from_numpy(np.asarray(tr, np.float32)).to(device))
            rows = patch_origins(height, self.size, model_cfg.stride)
            cols = patch_origins(width, self.size, model_cfg.stride)
            self.origins.append((rows, cols))
            counts.append(tr.shape[0] * len(rows) * len(cols))
        self.bounds = np.cumsum(counts)
        self.device = device
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context patches ``[B, K, Nc, Nc]`` and traffic patches ``[B, S, Nx, Nx]``."""
        flat = self.rng.integers(0, self.bounds[-1], size=batch)
        city = np.searchsorted(self.bounds, flat, side="right")
        contexts, targets, order = [], [], []
        for c in np.unique(city):
            members = np.nonzero(city == c)[0]
            rows, cols = self.origins[c]
            local = flat[members] - (self.bounds[c - 1] if c else 0)
            t, rest = np.divmod(local, len(rows) * len(cols))
            r, q = rows[rest // len(cols)], cols[rest % len(cols)]
            span_c = np.arange(self.size + self.kernel - 1)
            span_x = np.arange(self.size)
            rc = torch.from_numpy(r[:, None, None] + span_c[None, :, None]).to(self.device)
            cc = torch.from_numpy(q[:, None, None] + span_c[None, None, :]).to(self.device)
            contexts.append(self.contexts[c][:, rc, cc].permute(1, 0, 2, 3))             # [b, K, Nc, Nc]
            rx = torch.from_numpy(r[:, None, None] + span_x[None, :, None]).to(self.device)
            cx = torch.from_numpy(q[:, None, None] + span_x[None, None, :]).to(self.device)
            tt = torch.from_numpy(t[:, None, None]).to(self.device)
            targets.append(self.traffic[c][tt, :, rx, cx].permute(0, 3, 1, 2))             # [b, S, Nx, Nx]
            order.append(members)
        inverse = torch.from_numpy(np.argsort(np.concatenate(order))).to(self.device)
        return torch.cat(contexts)[inverse].contiguous(), torch.cat(targets)[inverse].contiguous()


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


def train_gan(contexts: list[np.ndarray], traffic: list[np.ndarray], service_weights: np.ndarray,
              model_cfg: ModelConfig, train_cfg: TrainConfig, progress: bool = False,
              log: Callable[[str], None] | None = None) -> tuple[Generator, dict[str, Discriminator],
                                                                 dict[str, list[float]]]:
    """Train on normalised ``contexts [K, H, W]`` and ``traffic [T, S, H, W]`` per city.

    Returns the generator (CPU, eval mode), the trained discriminators and the per-step loss
    history (keys :data:`HISTORY_KEYS`; a switched-off discriminator leaves its lists empty).
    """
    device = train_cfg.resolved_device()
    n_attributes, n_services = contexts[0].shape[0], traffic[0].shape[1]
    sampler = PatchSampler(contexts, traffic, model_cfg, device, derive_seed(train_cfg.seed, "patches"))
    weights = torch.as_tensor(np.asarray(service_weights, np.float32), device=device)[None, :, None, None]
    history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(train_cfg.seed)
        noise = torch.Generator(device=device).manual_seed(derive_seed(train_cfg.seed, "noise"))
        gen, d1, d2 = build_networks(n_attributes, n_services, model_cfg)
        init_output_bias(gen.out, service_mean_levels(traffic))
        discs: dict[str, nn.Module] = {name: d.to(device) for name, d in (("d1", d1), ("d2", d2)) if d is not None}
        gen.to(device).train()
        opt_g = torch.optim.Adam(gen.parameters(), lr=train_cfg.lr_g, betas=train_cfg.betas)
        opt_d = (torch.optim.Adam([p for d in discs.values() for p in d.parameters()], lr=train_cfg.lr_d,
                                  betas=train_cfg.betas) if discs else None)
        bar = tqdm(range(train_cfg.steps), desc="training AppShot", disable=not progress, leave=False)
        for step in bar:
            context, real = sampler.sample(train_cfg.batch_size)
            z = torch.randn(real.shape[0], model_cfg.nz, generator=noise, device=device)
            fake = gen(context, z)
            under = crop_context(context, model_cfg)
            views = {"d1": lambda x: x, "d2": lambda x: (x * weights).sum(dim=1, keepdim=True)}
            if opt_d is not None:
                opt_d.zero_grad(set_to_none=True)
                d_losses = {name: 0.5 * (adversarial_loss(d(views[name](real), under), True)
                                         + adversarial_loss(d(views[name](fake.detach()), under), False))
                            for name, d in discs.items()}
                sum(d_losses.values()).backward()
                opt_d.step()
                for name, value in d_losses.items():
                    history[name].append(float(value.detach()))
            opt_g.zero_grad(set_to_none=True)
            g_adv = {name: adversarial_loss(d(views[name](fake), under), True) for name, d in discs.items()}
            g_l1 = (fake - real).abs().mean()
            (sum(g_adv.values()) + model_cfg.l1_weight * g_l1).backward()
            opt_g.step()
            for name, value in g_adv.items():
                history[f"g_adv_{name}"].append(float(value.detach()))
            history["g_l1"].append(float(g_l1.detach()))
            if (step + 1) % train_cfg.log_every == 0 or step + 1 == train_cfg.steps:
                summary = ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items() if v)
                bar.set_postfix_str(summary)
                if log is not None:
                    log(f"step {step + 1}/{train_cfg.steps}: {summary}")
    return gen.cpu().eval(), {name: d.cpu().eval() for name, d in discs.items()}, history
