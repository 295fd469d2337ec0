"""Noise of the generator: the non-spatial ``z`` of the paper and an optional spatial noise field.

The field has ``C`` channels of standard normal values per cell, smoothed by a Gaussian kernel of std
``sigma`` cells (the spatial correlation of day-to-day variation: a base station covers several cells) and
rescaled to unit variance per cell. Smoothing uses a margin of ``ceil(3 sigma)`` cells of extra noise around
the requested area, so cells at the edge of a tile are as noisy and as correlated as cells inside.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as nnf

from appshot_model.model.config import ModelConfig


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1-D Gaussian weights of std ``sigma`` cells over ``+-ceil(3 sigma)``, scaled so that a 2-D separable
    smoothing of unit-variance white noise keeps unit variance."""
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / torch.sqrt((weights ** 2).sum())).to(torch.float32)


def noise_field(generator: torch.Generator, n: int, channels: int, height: int, width: int, sigma: float,
                device: torch.device | None = None) -> torch.Tensor:
    """``[n, channels, height, width]`` unit-variance noise with spatial correlation length ``sigma`` cells."""
    if sigma <= 0:
        return torch.randn(n, channels, height, width, generator=generator, device=device)
    kernel = gaussian_kernel(sigma).to(device)
    radius = (len(kernel) - 1) // 2
    white = torch.randn(n * channels, 1, height + 2 * radius, width + 2 * radius, generator=generator, device=device)
    smooth = nnf.conv2d(nnf.conv2d(white, kernel.view(1, 1, -1, 1)), kernel.view(1, 1, 1, -1))
    return smooth.view(n, channels, height, width)


def draw_noise(generator: torch.Generator, cfg: ModelConfig, n: int, height: int, width: int,
               device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` noise vectors ``z [n, Nz]`` and, when the model has one, their fields ``[n, C, height, width]``."""
    z = torch.randn(n, cfg.nz, generator=generator, device=device)
    if not cfg.field_channels:
        return z, None
    return z, noise_field(generator, n, cfg.field_channels, height, width, cfg.noise_correlation_cells, device)
