"""How many CPU threads torch should use: the cores this process may run on, not the machine's."""

from __future__ import annotations

import os

import torch


def available_cores() -> int:
    """Cores in this process's CPU affinity mask (``os.sched_getaffinity``; ``os.cpu_count`` where
    the platform has no affinity call)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: :func:`available_cores`); returns it."""
    n = available_cores() if threads is None else max(1, int(threads))
    torch.set_num_threads(n)
    return n
