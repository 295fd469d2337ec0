"""Test maps shared by the evaluation tests."""

import numpy as np


def blobs(seed: int, height: int, width: int, n: int = 4) -> np.ndarray:
    """A positive map of ``n`` Gaussian blobs of log-normal amplitude with log-normal cell noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    out = np.full((height, width), 0.01)
    for _ in range(n):
        cy, cx, s = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(1.5, 5)
        out += rng.lognormal(0, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return out * rng.lognormal(0, 0.3, out.shape)


def days(seed: int, n: int = 6, services: int = 3, height: int = 12, width: int = 14) -> np.ndarray:
    """Snapshots that share a spatial pattern and differ by day-to-day noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.exp(-((yy - height / 2) ** 2 + (xx - width / 3) ** 2) / 18.0) + 0.05
    shares = np.array([5.0, 2.0, 1.0])[:services]
    return shares[None, :, None, None] * base[None, None] * rng.lognormal(0, 0.2, (n, services, height, width))
