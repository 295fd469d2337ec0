"""How many CPU threads torch should use: the cores this process may run on, not the machine's
(two processes each using every core of a shared machine run many times slower)."""

from __future__ import annotations

import os

import torch

THREADS_ENV = "APPSHOT_TORCH_THREADS"


def available_cores() -> list[int]:
    """The cores in this process's CPU affinity mask (``os.sched_getaffinity``), or
    ``range(os.cpu_count())`` where the platform has no affinity call (macOS, Windows)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def configure_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads``, else ``$APPSHOT_TORCH_THREADS``, else the number of
    :func:`available_cores`; returns the count."""
    n = int(threads or 0) or int(os.environ.get(THREADS_ENV, 0)) or len(available_cores())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
