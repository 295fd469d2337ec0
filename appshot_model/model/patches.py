"""Patch extraction and stitching (AppShot §V-B1).

A traffic patch is ``size x size`` cells (paper: 10); its context patch adds the margin the
first convolution consumes (kernel ``k``: ``k - 1`` cells, i.e. 12 x 12 for k = 3). Patches are
taken with stride 1 ("slide by 1 pixel") for training and generation, so a 20 x 20 map yields
(20 - 10 + 1)^2 = 121 patches (§V-B1, footnote 2). Generated patches are stitched back by
averaging every cell over the patches that cover it. For the "no overlap" ablation the stride
equals the patch size and the last row/column of patches is shifted to end at the map edge.

To give every traffic cell, including those on the city border, its full context patch, the
context map is padded by edge replication: ``(k - 1) // 2`` cells before and the rest after.
"""

from __future__ import annotations

import numpy as np

from appshot_model.core.errors import AppshotInputError


def context_padding(kernel: int) -> tuple[int, int]:
    """Cells of context padding (before, after) for a first-conv kernel ``kernel``."""
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


def check_map_size(height: int, width: int, size: int = 10, kernel: int = 3, what: str = "map") -> None:
    """Raise unless a ``height x width`` map holds at least one traffic patch."""
    if height < size or width < size:
        raise AppshotInputError(
            f"{what} is {height} x {width} cells, smaller than one patch: AppShot needs at least a "
            f"{size} x {size} traffic patch with its {size + kernel - 1} x {size + kernel - 1} context patch")


def patch_origins(length: int, size: int = 10, stride: int = 1) -> np.ndarray:
    """Start offsets of patches along one axis; the last one is shifted to end at ``length``."""
    if stride < 1:
        raise AppshotInputError(f"patch stride must be >= 1, got {stride}")
    check_map_size(length, length, size, what=f"axis of length {length}")
    starts = np.arange(0, length - size + 1, stride)
    if starts[-1] != length - size:
        starts = np.append(starts, length - size)
    return starts.astype(np.int64)


def patch_grid(height: int, width: int, size: int = 10, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Row and column origins of every patch (row-major order: all columns of row 0 first)."""
    check_map_size(height, width, size)
    rows, cols = patch_origins(height, size, stride), patch_origins(width, size, stride)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return rr.ravel(), cc.ravel()


def pad_context(context: np.ndarray, kernel: int = 3) -> np.ndarray:
    """Edge-replicate ``context [..., H, W]`` so a valid ``kernel`` conv returns ``H x W``."""
    before, after = context_padding(kernel)
    widths = [(0, 0)] * (context.ndim - 2) + [(before, after), (before, after)]
    return np.pad(context, widths, mode="edge")


def extract_patches(array: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Patches ``[L, ..., size, size]`` of ``array [..., H, W]`` with top-left corners ``(rows, cols)``."""
    offsets = np.arange(size)
    r = rows[:, None, None] + offsets[None, :, None]
    c = cols[:, None, None] + offsets[None, None, :]
    patches = array[..., r, c]  # [..., L, size, size]
    return np.moveaxis(patches, -3, 0)


def map_to_patches(traffic: np.ndarray, context: np.ndarray, size: int = 10, kernel: int = 3,
                   stride: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Traffic patches ``[L, ..., size, size]`` of ``traffic [..., H, W]``, their context patches
    ``[L, K, size + kernel - 1, ...]`` from the edge-padded ``context [K, H, W]``, and the origins."""
    height, width = traffic.shape[-2:]
    if context.shape[-2:] != (height, width):
        raise AppshotInputError(f"context map is {context.shape[-2:]} but traffic map is {(height, width)}")
    rows, cols = patch_grid(height, width, size, stride)
    return (extract_patches(traffic, rows, cols, size),
            extract_patches(pad_context(context, kernel), rows, cols, size + kernel - 1), rows, cols)


def stitch(patches: np.ndarray, rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """Average overlapping patches ``[L, C, p, p]`` at origins ``(rows, cols)`` into ``[C, H, W]``."""
    n, channels, size, _ = patches.shape
    total = np.zeros((channels, height, width), dtype=np.float64)
    for i in range(n):
        total[:, rows[i]:rows[i] + size, cols[i]:cols[i] + size] += patches[i]
    count = coverage(rows, cols, size, height, width)
    if (count == 0).any():
        raise AppshotInputError("patches do not cover the whole map; cannot stitch")
    return (total / count).astype(patches.dtype)


def coverage(rows: np.ndarray, cols: np.ndarray, size: int, height: int, width: int) -> np.ndarray:
    """How many patches cover each cell, ``[H, W]``."""
    count = np.zeros((height, width), dtype=np.float64)
    for r, c in zip(rows, cols, strict=True):
        count[r:r + size, c:c + size] += 1.0
    return count
