"""Deterministic seeds derived from a base seed and names (never Python's salted ``hash``)."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(base_seed: int, *names: str | int) -> int:
    """A 31-bit seed that depends only on ``base_seed`` and ``names``."""
    words = [int(base_seed) & 0xFFFFFFFF]
    words += [zlib.crc32(str(n).encode("utf-8")) for n in names]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)
