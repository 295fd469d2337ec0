"""CNN regression baseline (paper §VI-B): a U-Net mapping a context patch to the S-service traffic
patch, trained with a pixel loss on non-overlapping 10 x 10 patches; deterministic (the same map
for every sample), which is what the paper contrasts with stochastic generators.

Choices the paper leaves open: L1 loss by default (the loss AppShot and CartaGenie use; ``"l2"``
available), Adam (lr 1e-3, betas 0.9/0.999), batch 64, width F = 32 (:class:`UNet`), output bias
started at each service's mean normalised level. Training batches are drawn uniformly over
(city, weekday snapshot, non-overlapping patch position), as AppShot's sampler does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.baselines.common import PATCH, TrainingData, UNet, log_every, tiled_generate
from appshot_model.model.config import ModelConfig
from appshot_model.model.normalise import Normalisation
from appshot_model.model.train import PatchSampler, init_output_bias, service_mean_levels

NON_OVERLAPPING = ModelConfig(traffic_patch=PATCH, first_kernel=3, overlap=False, noise_scope="patch")


@dataclass
class PatchModel:
    """A trained patch network with what generation needs."""

    net: torch.nn.Module
    normalisation: Normalisation
    stochastic: bool
    history: dict[str, list[float]] = field(default_factory=dict)


def train_cnn(data: TrainingData, steps: int, batch_size: int, features: int, seed: int,
              loss: Literal["l1", "l2"] = "l1", lr: float = 1e-3, progress: bool = False,
              log: Callable[[str], None] | None = None) -> PatchModel:
    """Fit the U-Net regression on CPU; the same seed gives bitwise-identical weights."""
    contexts, traffic = data.normalised()
    sampler = PatchSampler(contexts, traffic, NON_OVERLAPPING, torch.device("cpu"), derive_seed(seed, "cnn", "patches"))
    history: dict[str, list[float]] = {"loss": []}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "cnn", "weights"))
        net = UNet(contexts[0].shape[0], traffic[0].shape[1], features)
        init_output_bias(net.out, service_mean_levels(traffic))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        net.train()
        for step in tqdm(range(steps), desc="training CNN", disable=not progress, leave=False):
            batch = sampler.sample(batch_size)
            context, real = batch.context, batch.real
            diff = net(context) - real
            value = diff.abs().mean() if loss == "l1" else (diff ** 2).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            history["loss"].append(float(value.detach()))
            log_every(step, steps, 50, log, lambda: f"{loss}={history['loss'][-1]:.5f}")
    return PatchModel(net.eval(), data.normalisation, stochastic=False, history=history)


def generate_cnn(model: PatchModel, context: np.ndarray, n_samples: int) -> np.ndarray:
    """``[n, S, H, W]`` in traffic units from a normalised context ``[K, H, W]`` (identical samples)."""
    model.net.eval()
    one = model.normalisation.denormalise_traffic(tiled_generate(model.net, context))
    return np.repeat(one[None], n_samples, axis=0).astype(np.float32)
