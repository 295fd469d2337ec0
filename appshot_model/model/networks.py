"""AppShot generator (§V-C1, Fig. 11) and the two conditional discriminators (§V-C2).

Generator, per patch: channel-wise dropout (0.02) on the ``K x Nc x Nc`` context; a
``k = Nc - Nx + 1`` convolution without padding to ``8F`` channels, BN, ReLU (``Nx x Nx``); FiLM
conditioning on a non-spatial noise vector ``z`` (``Nz = 16F``): two 1x1 convolutions of the
reshaped ``z`` give ``sigma`` (softplus) and ``mu`` and ``h' = sigma * h + mu``; then 1x1
convolutions ``8F -> 4F -> 2F -> F -> S`` with BN + ReLU between and a final sigmoid (one
channel per service). Convolutions followed by BN carry no bias (BN's shift replaces it). Fig. 11
labels the last block "BN & sigmoid"; here the last 1x1 convolution has a bias and no BN, so a
patch's output never depends on batch statistics. ``noise="concat"`` (ablation) broadcasts ``z``
over the patch and concatenates it to ``h`` instead of FiLM.

Discriminators (the paper gives no architecture): small conditional PatchGAN-style nets on the
map (D1: the ``S`` service channels; D2: one channel, the total) concatenated with the context
cropped to the traffic patch: 3x3 conv -> LeakyReLU -> 3x3 stride-2 conv -> LeakyReLU -> 3x3 conv
-> LeakyReLU -> 1x1 conv to one logit per location. See ``docs/model.md``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as nnf

from appshot_model.model.config import ModelConfig


def _widths(features: int) -> list[int]:
    """Channel widths of the 1x1 stack after the first conv: 8F, 4F, 2F, F."""
    return [8 * features, 4 * features, 2 * features, features]


class Generator(nn.Module):
    """Context tile ``[B, K, t + k - 1, t + k - 1]`` + noise ``z [B, Nz]`` (+ a spatial noise field
    ``[B, C, t, t]`` when ``noise_channels`` > 0) -> traffic tile ``[B, S, t, t]`` in [0, 1]."""

    def __init__(self, n_attributes: int, n_services: int, cfg: ModelConfig) -> None:
        super().__init__()
        widths = _widths(cfg.features)
        self.noise_mode = cfg.noise
        self.nz = cfg.nz
        self.field_channels = cfg.field_channels
        self.dropout = nn.Dropout2d(cfg.channel_dropout)
        self.conv1 = nn.Conv2d(n_attributes, widths[0], cfg.first_kernel, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        if cfg.noise == "film":
            self.film_sigma = nn.Conv2d(self.nz, widths[0], 1)
            self.film_mu = nn.Conv2d(self.nz, widths[0], 1)
            start_as_identity(self.film_sigma, self.film_mu)
            if self.field_channels:  # the spatial part of z enters the same FiLM 1x1 convolutions
                self.film_sigma_field = nn.Conv2d(self.field_channels, widths[0], 1, bias=False)
                self.film_mu_field = nn.Conv2d(self.field_channels, widths[0], 1, bias=False)
            first_in = widths[0]
        else:
            first_in = widths[0] + self.nz + self.field_channels
        ins = [first_in] + widths[1:-1]
        self.hidden = nn.ModuleList(nn.Conv2d(i, o, 1, bias=False) for i, o in zip(ins, widths[1:], strict=True))
        self.hidden_bn = nn.ModuleList(nn.BatchNorm2d(o) for o in widths[1:])
        self.out = nn.Conv2d(widths[-1], n_services, 1)

    def features(self, context: torch.Tensor) -> torch.Tensor:
        """Dropout, first conv, BN, ReLU: ``[B, 8F, Nx, Nx]`` (any spatial size in eval mode)."""
        return torch.relu(self.bn1(self.conv1(self.dropout(context))))

    def film(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigma, mu)`` of shape ``[B, 8F]`` from ``z [B, Nz]``."""
        z4 = z[:, :, None, None]
        return nnf.softplus(self.film_sigma(z4))[:, :, 0, 0], self.film_mu(z4)[:, :, 0, 0]

    def forward(self, context: torch.Tensor, z: torch.Tensor, field: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(context), z, field)

    def head(self, h: torch.Tensor, z: torch.Tensor, field: torch.Tensor | None = None,
             logit_shift: torch.Tensor | None = None) -> torch.Tensor:
        """Everything after :meth:`features`: the noise (FiLM or concatenation), the 1x1 stack and the sigmoid,
        on features ``h [B, 8F, t, t]``; ``logit_shift [S]`` is added to the output logits (an hour-conditioned
        model's per-hour levels, :func:`appshot_model.model.hours.calibrate_hour_levels`)."""
        if (field is None) != (self.field_channels == 0):
            raise ValueError(f"this generator takes a noise field of {self.field_channels} channels; got "
                             f"{None if field is None else tuple(field.shape)}")
        if self.noise_mode == "film":
            z4 = z[:, :, None, None]
            pre_sigma, mu = self.film_sigma(z4), self.film_mu(z4)
            if field is not None:
                pre_sigma = pre_sigma + self.film_sigma_field(field)
                mu = mu + self.film_mu_field(field)
            h = nnf.softplus(pre_sigma) * h + mu
        else:
            parts = [h, z[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])]
            h = torch.cat(parts if field is None else [*parts, field], dim=1)
        for conv, bn in zip(self.hidden, self.hidden_bn, strict=True):
            h = torch.relu(bn(conv(h)))
        logits = self.out(h)
        return torch.sigmoid(logits if logit_shift is None else logits + logit_shift.to(logits)[None, :, None, None])

    @torch.no_grad()
    def scale_noise(self, z_scale: float) -> None:
        """Fold ``z -> z_scale * z`` into the weights: z enters linearly (FiLM's 1x1 convolutions, or the first
        hidden convolution's input channels with ``noise="concat"``)."""
        if self.noise_mode == "film":
            self.film_sigma.weight.mul_(z_scale)
            self.film_mu.weight.mul_(z_scale)
        else:
            features = self.hidden[0].weight.shape[1] - self.nz - self.field_channels
            self.hidden[0].weight[:, features:features + self.nz].mul_(z_scale)


def start_as_identity(sigma: nn.Conv2d, mu: nn.Conv2d) -> None:
    """Start FiLM as the identity whatever ``z`` is (zero weights, ``softplus(bias) = 1``, ``mu = 0``): the
    generator begins deterministic and learns how much z should move its output from the discriminators,
    instead of starting with a random global modulation of every cell (measured: city totals then varied
    4x more than real weekdays at the default budget, docs/model.md)."""
    with torch.no_grad():
        sigma.weight.zero_()
        sigma.bias.fill_(math.log(math.e - 1.0))
        mu.weight.zero_()
        mu.bias.zero_()


def generator_parameter_count(n_attributes: int, n_services: int, features: int = 64, noise_dim: int | None = None,
                              first_kernel: int = 3, noise: str = "film", noise_channels: int = 0) -> int:
    """Trainable parameters of :class:`Generator`, counted from the architecture alone."""
    nz = noise_dim if noise_dim is not None else 16 * features
    w = _widths(features)
    count = n_attributes * w[0] * first_kernel ** 2 + 2 * w[0]          # conv1 (no bias) + BN
    if noise == "film":
        count += 2 * (nz * w[0] + w[0])                                   # sigma and mu 1x1 convs
        count += 2 * noise_channels * w[0]                                # their noise-field part (no bias)
        first_in = w[0]
    else:
        first_in = w[0] + nz + noise_channels
    for i, o in zip([first_in] + w[1:-1], w[1:], strict=True):
        count += i * o + 2 * o                                            # 1x1 conv (no bias) + BN
    return count + w[-1] * n_services + n_services                        # output conv with bias


class Discriminator(nn.Module):
    """Map ``[B, C, Nx, Nx]`` + context ``[B, K, Nx, Nx]`` -> patch logits ``[B, 1, Nx/2, Nx/2]``."""

    def __init__(self, map_channels: int, n_attributes: int, features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(map_channels + n_attributes, features, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(features, 2 * features, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * features, 2 * features, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * features, 1, 1))

    def forward(self, traffic: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([traffic, context], dim=1))


def crop_context(context: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """The part of a context tile ``[B, K, t + k - 1, t + k - 1]`` under its traffic tile ``[B, K, t, t]``."""
    before = (cfg.first_kernel - 1) // 2
    side = context.shape[-1] - cfg.first_kernel + 1
    return context[:, :, before:before + side, before:before + side]


def build_networks(n_attributes: int, n_services: int, cfg: ModelConfig) -> tuple[Generator, Discriminator | None,
                                                                                   Discriminator | None]:
    """Generator and the discriminators the config enables (``None`` when switched off)."""
    d1 = Discriminator(n_services, n_attributes, cfg.disc_features) if cfg.use_d1 else None
    d2 = Discriminator(1, n_attributes, cfg.disc_features) if cfg.use_d2 else None
    return Generator(n_attributes, n_services, cfg), d1, d2
