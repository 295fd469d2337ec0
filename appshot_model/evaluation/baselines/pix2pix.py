"""Pix2Pix baseline (Isola et al., CVPR 2017; paper §VI-B) on non-overlapping patches.

Generator: the U-Net of :class:`appshot_model.evaluation.baselines.common.UNet` with dropout 0.5 on the
decoder blocks, kept active at generation time: as in pix2pix, dropout is the only source of
randomness (no ``z``). Discriminator: a conditional PatchGAN judging the S-service patch together
with the context under it (:class:`appshot_model.model.networks.Discriminator`, the same small PatchGAN
AppShot's D1 uses; pix2pix's 70 x 70 PatchGAN is larger than a 10 x 10 patch). Loss:
``BCE(D(G(c)), 1) + 100 * L1`` for G (lambda = 100 as in pix2pix; the AppShot paper gives no other
value), ``0.5 * [BCE(D(x), 1) + BCE(D(G(c)), 0)]`` for D; Adam lr 2e-4, betas (0.5, 0.999), one D then
one G step per batch (all as in pix2pix).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.baselines.cnn import NON_OVERLAPPING, PatchModel
from appshot_model.evaluation.baselines.common import TrainingData, UNet, log_every, tiled_generate
from appshot_model.model.networks import Discriminator, crop_context
from appshot_model.model.train import PatchSampler, adversarial_loss, init_output_bias, service_mean_levels

L1_WEIGHT = 100.0
DROPOUT = 0.5


def train_pix2pix(data: TrainingData, steps: int, batch_size: int, features: int, seed: int,
                  disc_features: int = 32, l1_weight: float = L1_WEIGHT, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> PatchModel:
    """Adversarial + L1 training on CPU; the same seed gives bitwise-identical weights."""
    contexts, traffic = data.normalised()
    n_attributes, n_services = contexts[0].shape[0], traffic[0].shape[1]
    sampler = PatchSampler(contexts, traffic, NON_OVERLAPPING, torch.device("cpu"),
                           derive_seed(seed, "pix2pix", "patches"))
    history: dict[str, list[float]] = {"g_adv": [], "g_l1": [], "d": []}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "pix2pix", "weights"))
        gen = UNet(n_attributes, n_services, features, dropout=DROPOUT)
        init_output_bias(gen.out, service_mean_levels(traffic))
        disc = Discriminator(n_services, n_attributes, disc_features)
        opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
        gen.train()
        disc.train()
        for step in tqdm(range(steps), desc="training Pix2Pix", disable=not progress, leave=False):
            batch = sampler.sample(batch_size)
            context, real = batch.context, batch.real
            under = crop_context(context, NON_OVERLAPPING)
            fake = gen(context)
            opt_d.zero_grad(set_to_none=True)
            d_loss = 0.5 * (adversarial_loss(disc(real, under), True) + adversarial_loss(disc(fake.detach(), under), False))
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            g_adv = adversarial_loss(disc(fake, under), True)
            g_l1 = (fake - real).abs().mean()
            (g_adv + l1_weight * g_l1).backward()
            opt_g.step()
            for key, value in (("g_adv", g_adv), ("g_l1", g_l1), ("d", d_loss)):
                history[key].append(float(value.detach()))
            log_every(step, steps, 50, log, lambda: ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items()))
    return PatchModel(gen.eval(), data.normalisation, stochastic=True, history=history)


def generate_pix2pix(model: PatchModel, context: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """``[n, S, H, W]`` in traffic units; batch norm in eval mode, decoder dropout active with a
    per-sample seed derived from ``seed`` (same seed -> identical arrays)."""
    net = model.net
    net.eval()
    net.drop1.train()
    net.drop2.train()
    height, width = context.shape[1:]
    out = np.empty((n_samples, len(model.normalisation.services), height, width), np.float32)
    try:
        with torch.random.fork_rng(devices=[]):
            for i in range(n_samples):
                torch.manual_seed(derive_seed(seed, "pix2pix", "sample", i))
                out[i] = model.normalisation.denormalise_traffic(tiled_generate(net, context))
    finally:
        net.eval()
    return out
