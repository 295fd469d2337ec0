"""Noise of the generator: the non-spatial ``z`` of the paper and an optional spatial noise field.

The field has ``C`` channels of standard normal values per cell, smoothed by a Gaussian kernel of std
``sigma`` cells (the spatial correlation of day-to-day variation: a base station covers several cells) and
rescaled to unit variance per cell. Smoothing uses a margin of ``ceil(3 sigma)`` cells of extra noise around
the requested area, so cells at the edge of a tile are as noisy and as correlated as cells inside.

Training draws its noise from one running ``torch.Generator`` (:func:`draw_noise`). Generation keys it to
position instead (:func:`snapshot_z`, :func:`keyed_noise_field`): ``z`` comes from a generator seeded by
``(seed, sample)`` and the white noise of every ``NOISE_BLOCK x NOISE_BLOCK`` block of a lattice anchored at
the region's top-left cell from a generator seeded by ``(seed, sample, block row, block column)``. The field
of any area is then the same whichever part of the region is computed first, or on which machine.
"""

from __future__ import annotations

import math

import torch

from appshot_model.core.seeds import derive_seed
from appshot_model.model.config import ModelConfig

#: Side (cells) of the lattice blocks whose white noise is drawn from one seeded generator each.
NOISE_BLOCK = 64


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
    radius = smoothing_radius(sigma)
    white = torch.randn(n * channels, 1, height + 2 * radius, width + 2 * radius, generator=generator, device=device)
    return smooth_white(white, sigma).view(n, channels, height, width)


def smoothing_radius(sigma: float) -> int:
    """Margin (cells) of white noise that smoothing with std ``sigma`` needs on every side (0: none)."""
    return math.ceil(3 * sigma) if sigma > 0 else 0


def smooth_white(white: torch.Tensor, sigma: float) -> torch.Tensor:
    """White noise ``[N, 1, h + 2r, w + 2r]`` (``r``: :func:`smoothing_radius`) smoothed to ``[N, 1, h, w]``."""
    if sigma <= 0:
        return white
    kernel = gaussian_kernel(sigma).to(white.device)
    rows = _band(kernel, white.shape[-2] - len(kernel) + 1)
    cols = _band(kernel, white.shape[-1] - len(kernel) + 1)
    return rows @ white @ cols.t()


def _band(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """``[n, n + len(kernel) - 1]`` matrix whose product with a vector is its valid 1-D convolution with the
    (symmetric) ``kernel`` (two small products are much faster on CPU than a one-channel conv2d)."""
    band = torch.zeros(n, n + len(kernel) - 1, dtype=kernel.dtype, device=kernel.device)
    for i in range(n):
        band[i, i:i + len(kernel)] = kernel
    return band


def snapshot_z(seed: int, sample: int, cfg: ModelConfig) -> torch.Tensor:
    """The noise vector ``z [Nz]`` of generated snapshot ``sample``, keyed by ``(seed, sample)``."""
    return torch.randn(cfg.nz, generator=torch.Generator().manual_seed(derive_seed(seed, "z", sample)))


def white_block(seed: int, sample: int, channels: int, block_row: int, block_col: int,
                block: int = NOISE_BLOCK) -> torch.Tensor:
    """White noise ``[channels, block, block]`` of one lattice block, keyed by ``(seed, sample, row, col)``."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "field", sample, block_row, block_col))
    return torch.randn(channels, block, block, generator=generator)


def keyed_noise_field(seed: int, sample: int, channels: int, sigma: float, row: int, col: int, height: int,
                      width: int, block: int = NOISE_BLOCK) -> torch.Tensor:
    """Field ``[channels, height, width]`` of snapshot ``sample`` over the area whose top-left cell is
    ``(row, col)`` (cells from the region's top-left; the smoothing margin may reach outside the region):
    the white noise of the lattice blocks the area and its margin touch, cropped and smoothed."""
    radius = smoothing_radius(sigma)
    top, left, bottom, right = row - radius, col - radius, row + height + radius, col + width + radius
    first_row, first_col = top // block, left // block
    white = torch.cat([torch.cat([white_block(seed, sample, channels, r, c, block)
                                  for c in range(first_col, (right - 1) // block + 1)], dim=2)
                       for r in range(first_row, (bottom - 1) // block + 1)], dim=1)
    top, left = top - first_row * block, left - first_col * block
    area = white[:, top:top + height + 2 * radius, left:left + width + 2 * radius]
    return smooth_white(area[:, None].contiguous(), sigma)[:, 0]


def draw_noise(generator: torch.Generator, cfg: ModelConfig, n: int, height: int, width: int,
               device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` noise vectors ``z [n, Nz]`` and, when the model has one, their fields ``[n, C, height, width]``."""
    z = torch.randn(n, cfg.nz, generator=generator, device=device)
    if not cfg.field_channels:
        return z, None
    return z, noise_field(generator, n, cfg.field_channels, height, width, cfg.noise_correlation_cells, device)
