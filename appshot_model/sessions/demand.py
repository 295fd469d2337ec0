"""Per-minute demand from sessions: each session delivers its bytes at a constant rate over its duration.

A session starting at ``s`` seconds and lasting ``d`` contributes bytes * overlap / d to every minute
it overlaps. ``wrap=True`` folds what runs past the end of the window back to its start, i.e. the
window is one period of a stationary process (an hour expanded on its own then has the sessions
that a previous identical hour would have left running); ``wrap=False`` drops it.
"""

from __future__ import annotations

import numpy as np

from appshot_model.core.errors import AppshotInputError

SECONDS_PER_MINUTE = 60.0


def minute_demand(key: np.ndarray, start_s: np.ndarray, duration_s: np.ndarray, volume: np.ndarray,
                  n_keys: int, minutes: int, wrap: bool = True) -> np.ndarray:
    """Bytes delivered per minute ``[n_keys, minutes]`` by sessions grouped by ``key`` (0 .. n_keys - 1),
    with starts in seconds from the window start (``0 <= start < minutes * 60``)."""
    key = np.asarray(key, dtype=np.int64)
    start = np.asarray(start_s, dtype=np.float64)
    duration = np.maximum(np.asarray(duration_s, dtype=np.float64), 1e-9)
    volume = np.asarray(volume, dtype=np.float64)
    if start.size and (start.min() < 0 or start.max() >= minutes * SECONDS_PER_MINUTE):
        raise AppshotInputError(f"session starts must lie in [0, {minutes * 60}) s of the window")
    end = start + duration
    rate = volume / duration
    first = np.floor(start / SECONDS_PER_MINUTE).astype(np.int64)
    last = np.floor(end / SECONDS_PER_MINUTE).astype(np.int64)
    length = int(last.max()) + 2 if last.size else minutes + 1
    length = max(length, minutes + 1)
    single = first == last
    # Partial first and last minutes, then whole minutes in between through a difference array.
    head = np.where(single, volume, rate * ((first + 1) * SECONDS_PER_MINUTE - start))
    tail = np.where(single, 0.0, rate * (end - last * SECONDS_PER_MINUTE))
    full = np.where(last > first + 1, rate * SECONDS_PER_MINUTE, 0.0)
    base = key * length
    size = n_keys * length
    extended = (np.bincount(base + first, head, size) + np.bincount(base + last, tail, size)).reshape(n_keys, length)
    steps = (np.bincount(base + first + 1, full, size) - np.bincount(base + last, full, size)).reshape(n_keys, length)
    extended += np.cumsum(steps, axis=1)
    if not wrap:
        return extended[:, :minutes]
    periods = -(-length // minutes)
    padded = np.zeros((n_keys, periods * minutes))
    padded[:, :length] = extended
    return padded.reshape(n_keys, periods, minutes).sum(axis=1)
